#!/usr/bin/env bash
# Generator variants scored by the realism target, side by side on one GPU (issue 11;
# benchmarks/README.md, "Realism sweep"). From the repository root of a machine with the
# project's packages and the real IR-R-G crop:
#   IRRG=... LABELS=... bash benchmarks/realism_sweep.sh OUTDIR    # ~5 min on one H200 (5 variants)
# writes OUTDIR/realism_sweep.json + .md (per variant: the sim-to-real OA, avg F1 and car
# F1 over the seeds that finished, mean, std and standard error, and the yardstick) and
# OUTDIR/realism_sweep_logs.tar.gz. Per variant of benchmarks/realism_sweep.py, all at
# once: the pipeline's data stage and one sim-to-real FCN per seed (run_name sweep_VARIANT,
# the variant applied by a sitecustomize hook), stopped after TRAIN_SECONDS; then the
# realism rule over the seeds that finished.
# Environment: PYTHON (python3), VARIANTS (all of realism_sweep.VARIANTS), SEEDS ("0 1 2 3
# 4 5"), JOBS (trainings at once per variant: 3), CORES (per variant: the CPUs / the
# variants, at least 1), TRAIN_SECONDS
# (330), EXTRA_CONFIG (config files over config.yaml; the test gives the tiny one), IRRG,
# LABELS (the crop: ../shared/real_samples' Vaihingen crop by default).
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:?usage: realism_sweep.sh OUTDIR}" && cd "$1" && pwd)
PY=${PYTHON:-python3}
SEEDS=${SEEDS:-0 1 2 3 4 5}
JOBS=${JOBS:-3}
SECS=${TRAIN_SECONDS:-330}
IRRG=${IRRG:-../shared/real_samples/vaihingen_area1_0_0_512_irrg.png}
LABELS=${LABELS:-../shared/real_samples/vaihingen_area1_0_0_512_label.png}
VARIANTS=${VARIANTS:-$($PY -c "import sys; sys.path.insert(0, 'benchmarks'); import realism_sweep as r; print(*r.VARIANTS)")}
n_var=$(wc -w <<<"$VARIANTS")
CORES=${CORES:-$(( $(nproc) / n_var > 0 ? $(nproc) / n_var : 1 ))}
for f in "$IRRG" "$LABELS"; do
  [ -f "$f" ] || { echo "realism_sweep: $f: real crop not found (set IRRG and LABELS)" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sweep=(benchmarks/realism_sweep.py)
$PY "${sweep[@]}" hook "$work/hook" >/dev/null || exit 2
export PYTHONPATH="$work/hook:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
t0=$SECONDS
echo "[realism_sweep] $(date -u +%FT%TZ) variants: $VARIANTS; seeds: $SEEDS" >&2

smk() {  # smk VARIANT LOGNAME SNAKEMAKE-ARGS...: the pipeline with the variant's overlay
  local v=$1 name=$2 to=(); shift 2
  [ -n "${LIMIT:-}" ] && to=(timeout -s INT "$LIMIT")  # SIGINT: Snakemake stops its jobs and cleans up
  VAISEG_GENERATOR_VARIANT=$v "${to[@]}" $PY -m snakemake "$@" --nolock --cores "$CORES" --resources gpu="$JOBS" \
    --set-threads realism_train_fcn=1 realism=2 --rerun-triggers mtime \
    --configfile config.yaml ${EXTRA_CONFIG:-} "$work/$v.yaml" >"$work/${v}_$name.log" 2>&1
}
for v in $VARIANTS; do
  VAISEG_GENERATOR_VARIANT=$v $PY "${sweep[@]}" check "$v" || exit 2
  $PY "${sweep[@]}" config "$v" --seeds $SEEDS --irrg "$IRRG" --labels "$LABELS" --out "$work/$v.yaml" || exit 2
  models=()
  for s in $SEEDS; do models+=("results/sweep_$v/realism/fcn_irrg/seed$s/model.pt"); done
  (LIMIT=$SECS smk "$v" train "${models[@]}" --keep-going
   echo "[realism_sweep] $v: training rc $? at $((SECONDS - t0)) s" >&2) &
done
wait
train_s=$((SECONDS - t0))
for v in $VARIANTS; do
  done_seeds=$($PY "${sweep[@]}" seeds "$v" --seeds $SEEDS)
  echo "[realism_sweep] $v: seeds finished: ${done_seeds:-none}" >&2
  [ -n "$done_seeds" ] || continue
  $PY "${sweep[@]}" config "$v" --seeds $done_seeds --irrg "$IRRG" --labels "$LABELS" --out "$work/$v.yaml"
  (smk "$v" realism realism; echo "[realism_sweep] $v: realism rc $? at $((SECONDS - t0)) s" >&2) &
done
wait
meta=$($PY -c "import json, platform, sys, torch
print(json.dumps({'machine': platform.node(), 'torch': torch.__version__,
  'device': torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu',
  'train_seconds_limit': int(sys.argv[1]), 'train_wall_s': int(sys.argv[2]), 'wall_s': int(sys.argv[3]),
  'seeds_asked': [int(s) for s in sys.argv[4].split()], 'jobs_per_variant': int(sys.argv[5])}))" \
  "$SECS" "$train_s" "$((SECONDS - t0))" "$SEEDS" "$JOBS")
$PY "${sweep[@]}" report --variants $VARIANTS --meta "$meta" --out "$out/realism_sweep.json" --md "$out/realism_sweep.md"
rc=$?
cp -r "$work"/*.log "$work"/*.yaml "$out/" 2>/dev/null
for v in $VARIANTS; do  # logs, timings, histories and the realism files of each variant
  mkdir -p "$out/logs_$v"
  cp -r "logs/sweep_$v" "$out/logs_$v/logs" 2>/dev/null
  cp -r "results/sweep_$v/benchmarks" "results/sweep_$v/realism" "$out/logs_$v/" 2>/dev/null
  rm -f "$out/logs_$v"/realism/fcn_irrg/*/model.pt "$out/logs_$v"/realism/fcn_irrg/*/checkpoint/*
done
tar -czf "$out/realism_sweep_logs.tar.gz" -C "$out" --remove-files $(cd "$out" && ls -d *.log *.yaml logs_* 2>/dev/null)
exit $rc
