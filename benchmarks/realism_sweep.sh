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
# 4 5"), TOWNS (generator seeds, data.synthetic.seed, e.g. "2016 2017 2018": every variant
# once per town, run_name sweep_VARIANT_tTOWN, the report pooled over the towns; empty,
# the default: the config's town, run_name sweep_VARIANT), JOBS (trainings at once per
# run: 3), CORES (per run: the CPUs / the runs, at least 1), TRAIN_SECONDS
# (330), EXTRA_CONFIG (config files over config.yaml; the test gives the tiny one), IRRG,
# LABELS (the crop: ../shared/real_samples' Vaihingen crop by default), BASELINE (with
# TOWNS: a stored base, e.g. benchmarks/results/realism_base_towns_zen4.json, to pair a
# variant run without `base` with; the report's --baseline).
{  # one group, read whole before it runs: an edit or a `git pull` during an hour-long sweep
   # would otherwise shift the rest of the script under bash's read offset
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
TOWNS=${TOWNS:-}
runs=()  # "VARIANT TOWN" pairs; TOWN "-": the config's town
for v in $VARIANTS; do for t in ${TOWNS:--}; do runs+=("$v $t"); done; done
n_runs=${#runs[@]}
CORES=${CORES:-$(( $(nproc) / n_runs > 0 ? $(nproc) / n_runs : 1 ))}
for f in "$IRRG" "$LABELS"; do
  [ -f "$f" ] || { echo "realism_sweep: $f: real crop not found (set IRRG and LABELS)" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sweep=(benchmarks/realism_sweep.py)
$PY "${sweep[@]}" hook "$work/hook" >/dev/null || exit 2
export PYTHONPATH="$work/hook:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
t0=$SECONDS
echo "[realism_sweep] $(date -u +%FT%TZ) variants: $VARIANTS; towns: ${TOWNS:-as configured}; seeds: $SEEDS" >&2

smk() {  # smk VARIANT RUN_NAME LOGNAME SNAKEMAKE-ARGS...: the pipeline with the run's overlay
  local v=$1 rn=$2 name=$3 to=(); shift 3
  [ -n "${LIMIT:-}" ] && to=(timeout -s INT "$LIMIT")  # SIGINT: Snakemake stops its jobs and cleans up
  VAISEG_GENERATOR_VARIANT=$v "${to[@]}" $PY -m snakemake "$@" --nolock --cores "$CORES" --resources gpu="$JOBS" \
    --set-threads realism_train_fcn=1 realism=2 --rerun-triggers mtime \
    --configfile config.yaml ${EXTRA_CONFIG:-} "$work/$rn.yaml" >"$work/${rn}_$name.log" 2>&1
}
town_arg() { [ "$1" = - ] || echo "--town $1"; }
for v in $VARIANTS; do
  VAISEG_GENERATOR_VARIANT=$v $PY "${sweep[@]}" check "$v" || exit 2
done
declare -A run_names  # "VARIANT TOWN" -> its run_name
for r in "${runs[@]}"; do
  read -r v t <<<"$r"
  run_names[$r]=$($PY "${sweep[@]}" run-name "$v" $(town_arg "$t")) || exit 2
done
for r in "${runs[@]}"; do
  read -r v t <<<"$r"
  rn=${run_names[$r]}
  $PY "${sweep[@]}" config "$v" $(town_arg "$t") --seeds $SEEDS --irrg "$IRRG" --labels "$LABELS" --out "$work/$rn.yaml" || exit 2
  models=()
  for s in $SEEDS; do models+=("results/$rn/realism/fcn_irrg/seed$s/model.pt"); done
  (LIMIT=$SECS smk "$v" "$rn" train "${models[@]}" --keep-going
   echo "[realism_sweep] $rn: training rc $? at $((SECONDS - t0)) s" >&2) &
done
wait
train_s=$((SECONDS - t0))
for r in "${runs[@]}"; do
  read -r v t <<<"$r"
  rn=${run_names[$r]}
  done_seeds=$($PY "${sweep[@]}" seeds "$v" $(town_arg "$t") --seeds $SEEDS)
  echo "[realism_sweep] $rn: seeds finished: ${done_seeds:-none}" >&2
  [ -n "$done_seeds" ] || continue
  $PY "${sweep[@]}" config "$v" $(town_arg "$t") --seeds $done_seeds --irrg "$IRRG" --labels "$LABELS" --out "$work/$rn.yaml"
  (smk "$v" "$rn" realism realism; echo "[realism_sweep] $rn: realism rc $? at $((SECONDS - t0)) s" >&2) &
done
wait
meta=$($PY -c "import json, platform, sys, torch
print(json.dumps({'machine': platform.node(), 'torch': torch.__version__,
  'device': torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu',
  'train_seconds_limit': int(sys.argv[1]), 'train_wall_s': int(sys.argv[2]), 'wall_s': int(sys.argv[3]),
  'seeds_asked': [int(s) for s in sys.argv[4].split()], 'jobs_per_variant': int(sys.argv[5])}))" \
  "$SECS" "$train_s" "$((SECONDS - t0))" "$SEEDS" "$JOBS")
$PY "${sweep[@]}" report --variants $VARIANTS ${TOWNS:+--towns $TOWNS} ${BASELINE:+--baseline "$BASELINE"} --meta "$meta" \
  --out "$out/realism_sweep.json" --md "$out/realism_sweep.md"
rc=$?
cp -r "$work"/*.log "$work"/*.yaml "$out/" 2>/dev/null
for r in "${runs[@]}"; do  # logs, timings, histories and the realism files of each run
  rn=${run_names[$r]}
  mkdir -p "$out/logs_$rn"
  cp -r "logs/$rn" "$out/logs_$rn/logs" 2>/dev/null
  cp -r "results/$rn/benchmarks" "results/$rn/realism" "$out/logs_$rn/" 2>/dev/null
  rm -f "$out/logs_$rn"/realism/fcn_irrg/*/model.pt "$out/logs_$rn"/realism/fcn_irrg/*/checkpoint/*
done
tar -czf "$out/realism_sweep_logs.tar.gz" -C "$out" --remove-files $(cd "$out" && ls -d *.log *.yaml logs_* 2>/dev/null)
exit $rc
}
