#!/usr/bin/env bash
# The job-array pipeline on a real Slurm, on this one machine (issue 26): starts munged (if not running),
# slurmctld and slurmd with a private configuration (SLURM_CONF; /etc/slurm is not touched), runs
# scripts/slurm/embed-select.sh on the bundled DSB2018 sample (4 tasks) and on the whole DSB2018 from ../shared
# (8 tasks), and checks that the parts equal one single-process embedding: `select --strategy all` on the parts
# writes, for every strategy, the same picks as on the whole. Stops the daemons it started. Needs root and Debian's
# slurm-wlm + munge (scripts/setup.sh installs them).
#   scripts/slurm/test-local.sh [path/to/medpick]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-target/debug/medpick}")
work=$(mktemp -d /tmp/medpick-slurm.XXXXXX)
state="$work/state"
mkdir -p "$state/spool"
started=()
cleanup() {
  local rc=$?
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0
    for pid in "${started[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  if [ $rc -ne 0 ]; then
    echo "slurm test failed; daemon logs:" >&2
    tail -n 20 "$state"/*.log >&2 2>/dev/null || true
    tail -n 20 "$work"/run*/logs/*.out >&2 2>/dev/null || true
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

# munge: the key and the daemon (one already running is used as it is).
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
  [ -f /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  chmod 400 /etc/munge/munge.key
  /usr/sbin/munged --force
  started+=("$(cat /run/munge/munged.pid)")
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

host=$(hostname -s)
mem=$(slurmd -C | grep -o 'RealMemory=[0-9]*' | cut -d= -f2)
port=$((20000 + RANDOM % 20000))
export SLURM_CONF="$state/slurm.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=medpicktest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$state
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=$host CPUs=$(nproc) RealMemory=$((mem / 2)) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
/usr/sbin/slurmctld -D -f "$SLURM_CONF" > "$state/ctld.log" 2>&1 &
started+=($!)
sleep 2
/usr/sbin/slurmd -D -f "$SLURM_CONF" > "$state/d.log" 2>&1 &
started+=($!)
for _ in $(seq 60); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 0.5; done
sinfo -h -o '%P %t %N' | grep -q idle || { echo "slurm test: the node did not come up" >&2; exit 1; }

# One dataset: N parts through Slurm, then the same pool in one process; every strategy's picks must agree.
check() {
  local name=$1 data=$2 n=$3 budget=$4
  local run="$work/run-$name"
  MEDPICK="$bin" MEDPICK_EMBED_ARGS="--model pixels --cache none" WAIT=1 \
    timeout 600 scripts/slurm/embed-select.sh "$data" "$run" "$n" "$budget" --strategy all --seed 1 >/dev/null
  local parts
  parts=$(find "$run/parts" -name 'part_*.safetensors' | wc -l)
  [ "$parts" -eq "$n" ] || { echo "slurm test ($name): $parts of $n parts written" >&2; exit 1; }
  "$bin" embed "$data" --model pixels --cache none --out "$run/whole.safetensors" >/dev/null 2>&1
  "$bin" select "$run/whole.safetensors" --budget "$budget" --strategy all --seed 1 --out "$run/whole.csv" >/dev/null 2>&1
  local same=0 total=0
  for f in "$run"/picks.*.csv; do
    total=$((total + 1))
    s=${f#"$run"/picks.}
    cmp -s "$f" "$run/whole.$s" && same=$((same + 1)) || echo "slurm test ($name): ${s%.csv} picks differ" >&2
  done
  [ "$total" -gt 10 ] && [ "$same" -eq "$total" ] || { echo "slurm test ($name): $same of $total strategies agree" >&2; exit 1; }
  echo "slurm: $name in $n parts through a job array: every one of the $total strategies picks what one process picks"
}
check sample samples/dsb2018/images 4 6

# Embed -> local coresets -> select on their union, three jobs chained by aftercorr/afterok: coreset's picks must
# come with the radius that covers the whole pool, and every part's coreset must have been written.
run="$work/run-coreset"
MEDPICK="$bin" MEDPICK_EMBED_ARGS="--model pixels --cache none" CORESET_FACTOR=2 WAIT=1 \
  timeout 600 scripts/slurm/embed-coreset-select.sh samples/dsb2018/images "$run" 4 3 --strategy coreset >/dev/null
cores=$(find "$run/coresets" -name 'coreset_*.safetensors' | wc -l)
[ "$cores" -eq 4 ] || { echo "slurm test (coresets): $cores of 4 local coresets written" >&2; exit 1; }
grep -q "every one of the pool's 24 rows is within" "$run/logs/select.out" \
  || { echo "slurm test (coresets): no covering radius in the select log:" >&2; cat "$run/logs/select.out" >&2; exit 1; }
[ "$(wc -l < "$run/picks.csv")" -eq 4 ] || { echo "slurm test (coresets): picks.csv is not 3 picks" >&2; exit 1; }
echo "slurm: embed -> 4 local coresets -> coreset on their union, chained by aftercorr/afterok"
# The same chain with k-means coresets and a k-means strategy: its picks count each union row by its weight.
run="$work/run-kmeans"
MEDPICK="$bin" MEDPICK_EMBED_ARGS="--model pixels --cache none" CORESET_FACTOR=1 CORESET_KIND=k-means WAIT=1 \
  timeout 600 scripts/slurm/embed-coreset-select.sh samples/dsb2018/images "$run" 4 3 --strategy alps --json >/dev/null
grep -q "local k-means coresets" "$run/logs/select.out" && grep -q "rows weighted by the pool rows" "$run/picks.json" \
  || { echo "slurm test (k-means coresets): not picked with the weights:" >&2; cat "$run/logs/select.out" >&2; exit 1; }
[ "$(wc -l < "$run/picks.csv")" -eq 4 ] || { echo "slurm test (k-means coresets): picks.csv is not 3 picks" >&2; exit 1; }
echo "slurm: embed -> 4 local k-means coresets -> alps on their union with the weights"
if [ -d ../shared/data/dsb2018/images ]; then
  check dsb2018 ../shared/data/dsb2018/images 8 46
elif [ "${REQUIRE_SHARED:-0}" = 1 ]; then
  echo "slurm test: ../shared/data/dsb2018 not found" >&2
  exit 1
fi
