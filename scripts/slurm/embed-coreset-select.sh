#!/usr/bin/env bash
# Selection beyond one machine in three Slurm jobs: embed N parts (a job array), a weighted local coreset of each
# part (a second array: task I starts as soon as embed task I has finished, `aftercorr`), then one select job
# on the union of the coresets (afterok). Each coreset task reads only its own part. `coreset` on the union
# covers the whole pool within the radius it prints; other strategies approximate the one-machine picks.
#
#   scripts/slurm/embed-coreset-select.sh DATASET OUTDIR PARTS BUDGET [medpick select options...]
#
# Environment: MEDPICK (the binary; default `medpick` on PATH), MEDPICK_EMBED_ARGS (e.g. "--model litemedsam"),
# CORESET_FACTOR (rows per part = factor × BUDGET; default 4), CORESET_KIND (k-center, the default, for coreset,
# probcover and diversity; k-means for alps, typiclust, typiclust-knn, kmeans-centroid, whose picks then count
# each row by its weight), SBATCH_ARGS (for every job), WAIT=1 to return only when the select job has ended. Writes OUTDIR/parts/,
# OUTDIR/coresets/, OUTDIR/picks.csv and OUTDIR/logs/.
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
data=$(realpath "$1") out=$(realpath -m "$2") n=$3 budget=$4
shift 4
bin=$(realpath "${MEDPICK:-$(command -v medpick)}")
mkdir -p "$out/parts" "$out/coresets" "$out/logs"
# Paths and extra options quoted for the job shell (%q), the task number left for it to expand.
q() { printf '%q' "$1"; }
extra=""
[ $# -gt 0 ] && extra=$(printf ' %q' "$@")
task='$SLURM_ARRAY_TASK_ID'
# shellcheck disable=SC2086  # SBATCH_ARGS and MEDPICK_EMBED_ARGS are word lists
embed=$(sbatch --parsable --array="0-$((n - 1))" ${SBATCH_ARGS:-} -J medpick-embed -o "$out/logs/embed-%a.out" \
  --wrap "$(q "$bin") embed $(q "$data") --shard auto ${MEDPICK_EMBED_ARGS:-} --force --out $(q "$out/parts")/part_$task.safetensors")
embed=${embed%%;*}
# shellcheck disable=SC2086
cores=$(sbatch --parsable --array="0-$((n - 1))" --dependency="aftercorr:$embed" --kill-on-invalid-dep=yes \
  ${SBATCH_ARGS:-} -J medpick-coreset -o "$out/logs/coreset-%a.out" \
  --wrap "$(q "$bin") select $(q "$out/parts")/part_$task.safetensors --shard auto --budget $budget \
--coreset-factor ${CORESET_FACTOR:-4} --coreset-kind $(q "${CORESET_KIND:-k-center}") --force --coreset-out $(q "$out/coresets")/coreset_$task.safetensors")
cores=${cores%%;*}
wait_flag=()
[ "${WAIT:-0}" = 1 ] && wait_flag=(--wait)
echo "embed: job array $embed ($n tasks) -> $out/parts/; local coresets: job array $cores -> $out/coresets/"
# shellcheck disable=SC2086
sel=$(sbatch --parsable ${wait_flag[@]+"${wait_flag[@]}"} --dependency="afterok:$cores" --kill-on-invalid-dep=yes \
  ${SBATCH_ARGS:-} -J medpick-select -o "$out/logs/select.out" \
  --wrap "$(q "$bin") select $(q "$out/coresets") --budget $budget --force --out $(q "$out/picks.csv")$extra")
echo "select: job ${sel%%;*} on the union of the coresets -> $out/picks.csv (log: $out/logs/select.out)"
