#!/usr/bin/env bash
# One entry point for a fresh machine (Python >= 3.11 and nothing else needed):
#   ./run.sh pipeline [snakemake args...]   set up .venv, run the pipeline on config.yaml
#   ./run.sh tests    [pytest args...]      set up .venv, run the test suite
# The virtual environment is project-local (.venv) and reinstalled only when
# requirements.txt changes.
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
[ -n "$PY" ] || { echo "run.sh: no python3 found (need Python >= 3.11)" >&2; exit 1; }

setup() {
  local stamp=.venv/.requirements.sha256
  local want
  want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -x .venv/bin/python ]; then
    echo "run.sh: creating .venv with $($PY --version)" >&2
    "$PY" -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "run.sh: installing pinned dependencies (requirements.txt)" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements.txt
    .venv/bin/python -m pip install -q --no-deps -e .
    echo "$want" > "$stamp"
  fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  pipeline)
    setup
    # profiles/default (Snakemake's workflow profile, read automatically) supplies
    # --cores all --resources gpu=1; options and targets go straight through
    # (./run.sh pipeline realism, ./run.sh pipeline --unlock, --configfile ...)
    exec .venv/bin/snakemake "$@"
    ;;
  tests)
    setup
    exec .venv/bin/python -m pytest "$@"
    ;;
  setup)
    setup
    ;;
  *)
    echo "usage: ./run.sh pipeline [snakemake args] | ./run.sh tests [pytest args] | ./run.sh setup" >&2
    exit 2
    ;;
esac
