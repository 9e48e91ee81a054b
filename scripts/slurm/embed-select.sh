#!/usr/bin/env bash
# Embed a dataset in N parts as a Slurm job array, then pick from all the parts in one job that starts once every
# part has finished (afterok). Each task runs `medpick embed --shard auto`, which takes its part from
# $SLURM_ARRAY_TASK_ID / $SLURM_ARRAY_TASK_COUNT and resumes from the feature cache; a failed task can be re-run
# alone (`sbatch --array=I ...` with the same command) and the select job re-submitted.
#
#   scripts/slurm/embed-select.sh DATASET OUTDIR PARTS BUDGET [medpick select options...]
#
# Environment: MEDPICK (the binary; default `medpick` on PATH), MEDPICK_EMBED_ARGS (e.g. "--model litemedsam"),
# SBATCH_ARGS (partition, time, --gres, ... for both jobs), WAIT=1 to return only when the select job has ended.
# Writes OUTDIR/parts/part_I.safetensors, OUTDIR/picks.csv and OUTDIR/logs/.
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
data=$(realpath "$1") out=$(realpath -m "$2") n=$3 budget=$4
shift 4
bin=$(realpath "${MEDPICK:-$(command -v medpick)}")
mkdir -p "$out/parts" "$out/logs"
# shellcheck disable=SC2086  # SBATCH_ARGS and MEDPICK_EMBED_ARGS are word lists
embed=$(sbatch --parsable --array="0-$((n - 1))" ${SBATCH_ARGS:-} -J medpick-embed -o "$out/logs/embed-%a.out" \
  --wrap "'$bin' embed '$data' --shard auto ${MEDPICK_EMBED_ARGS:-} --force --out '$out/parts/part_'\$SLURM_ARRAY_TASK_ID.safetensors")
embed=${embed%%;*}
wait_flag=()
[ "${WAIT:-0}" = 1 ] && wait_flag=(--wait)
echo "embed: job array $embed ($n tasks) -> $out/parts/"
# shellcheck disable=SC2086
sel=$(sbatch --parsable ${wait_flag[@]+"${wait_flag[@]}"} --dependency="afterok:$embed" --kill-on-invalid-dep=yes ${SBATCH_ARGS:-} \
  -J medpick-select -o "$out/logs/select.out" \
  --wrap "'$bin' select '$out/parts' --budget $budget --force --out '$out/picks.csv' $*")
echo "select: job ${sel%%;*} after every part -> $out/picks.csv (log: $out/logs/select.out)"
