#!/usr/bin/env bash
# GPU pilot at the paper's widths (issue 13; benchmarks/README.md, "GPU pilot"). From the
# repository root of a machine with a GPU and the project's packages:
#   bash benchmarks/gpu_pilot.sh OUTDIR          # about 7 minutes on one H200
# writes OUTDIR/gpu_pilot.json (every section and the extrapolated run time of
# config/vaihingen.yaml) and OUTDIR/gpu_pilot_logs.tar.gz. Steps:
#   1. the pilot's data (benchmarks/gpu_pilot.yaml over config/vaihingen.yaml) by the
#      pipeline's own rules, in the background on the CPUs, while
#   2. ceilings and training-step variants run alone on the GPU;
#   3. the three CNNs train for PILOT_SECONDS each, concurrently, while the tiny config's
#      DAG (and its lr_range target) runs through Snakemake with device auto, bf16 autocast
#      and loader workers on, and training is killed after one epoch and resumed;
#   4. MC inference of a whole pilot area per CNN and precision, with the pilot weights;
#   5. PB and the FCN alone on the GPU for SOLO_SECONDS each with the config's loader
#      workers (train.workers: the pipeline's training rate), and the FCN again with its
#      loss read back at history rows only instead of every step;
#   6. the report, its extrapolation at the solo rates.
# Environment: PYTHON (python3), PILOT_SECONDS (90), SOLO_SECONDS (30), CORES (all), TINY=1
# (CPU sizes: the test), DAG=0 (skip step 3's DAG), SOLO=0 (skip step 5), EXTRA_CONFIG
# (more config files over the pilot's).
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:?usage: gpu_pilot.sh OUTDIR}" && cd "$1" && pwd)
PY=${PYTHON:-python3}
CORES=${CORES:-$(nproc)}
SECS=${PILOT_SECONDS:-90}
SOLO_SECS=${SOLO_SECONDS:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT  # everything in it but the weights goes into the logs tarball
tiny=()
extra=(${EXTRA_CONFIG:-})
if [ "${TINY:-0}" = 1 ]; then
  tiny=(--tiny --device cpu)
  extra=(tests/config/gpu_pilot_tiny.yaml "${extra[@]}")
fi
cfgs=(config/vaihingen.yaml benchmarks/gpu_pilot.yaml "${extra[@]}")
read -r run_name val_area workers < <($PY -c "import sys; sys.path.insert(0, 'benchmarks'); from gpu_pilot import merged_config
c = merged_config(*sys.argv[1:]); print(c['run_name'], c['data']['areas']['val'][0], c['train']['workers'])" "${cfgs[@]}")
res=results/$run_name
step() {  # step NAME CMD...: run, keep its log and exit status in $work
  local name=$1; shift
  local t0=$SECONDS
  "$@" >"$work/$name.log" 2>&1
  local rc=$?
  echo "$rc $((SECONDS - t0))" >"$work/$name.rc"
  echo "[gpu_pilot] $name: rc $rc, $((SECONDS - t0)) s" >&2
  return $rc
}
pilot=(benchmarks/gpu_pilot.py)
echo "[gpu_pilot] $(date -u +%FT%TZ) $($PY -c 'import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())')" >&2

# 1 + 2
step data $PY -m snakemake --configfile "${cfgs[@]}" --cores "$CORES" --nolock --rerun-incomplete \
  "$res/patches/pb.npz" "$res/patches/fcn.npz" "$res/models/mfb_weights.json" \
  "$res/data/$val_area/image.tif" "$res/data/$val_area/labels_eroded.tif" &
data_pid=$!
step bench $PY "${pilot[@]}" bench --dir "$work" --config "${extra[@]}" "${tiny[@]}"
wait $data_pid

# 3
for m in PB FCN FCN-MFB; do
  step "pilot_$m" $PY "${pilot[@]}" pilot --dir "$work" --model $m --seconds "$SECS" --workers 4 \
    --config "${extra[@]}" "${tiny[@]}" &
done
if [ "${DAG:-1}" = 1 ]; then
  dag_cfgs=(tests/config/tiny.yaml "$work/dag_cuda.yaml")
  printf 'train:\n  amp: true\n  workers: 2\nlr_range:\n  steps: 20\n  seeds: [0]\n' >"${dag_cfgs[1]}"
  t0=$SECONDS
  step dag_run $PY -m snakemake --configfile "${dag_cfgs[@]}" --config run_name=tiny_cuda device=auto \
    --cores "$CORES" --resources gpu=1 --nolock all lr_range
  dag_rc=$?
  step dag $PY "${pilot[@]}" dag --dir "$work" --results results/tiny_cuda --logs logs/tiny_cuda \
    --rc $dag_rc --wall $((SECONDS - t0))
  step resume $PY "${pilot[@]}" resume --dir "$work" --results results/tiny_cuda --config "${dag_cfgs[@]}" "${tiny[@]}"
fi
wait

# 4
step mc $PY "${pilot[@]}" mc --dir "$work" --config "${extra[@]}" "${tiny[@]}"

# 5 + 6
solo=()
if [ "${SOLO:-1}" = 1 ]; then
  mkdir -p "$work/solo"
  for v in PB:step FCN:step FCN:row; do
    step "solo_${v/:/_}" $PY "${pilot[@]}" pilot --dir "$work/solo" --model "${v%:*}" --loss-readback "${v#*:}" \
      --seconds "$SOLO_SECS" --eval-every 10 --workers "$workers" --config "${extra[@]}" "${tiny[@]}"
  done
  solo=(--solo "$work/solo")
fi
step report $PY "${pilot[@]}" report --dir "$work" --out "$out/gpu_pilot.json" "${solo[@]}"
cat "$work/report.log"
tar -czf "$out/gpu_pilot_logs.tar.gz" -C "$work" --exclude='*.pt' .
echo "[gpu_pilot] done: $out/gpu_pilot.json" >&2
