#!/usr/bin/env bash
# The ready GPU check: a few short real studies on one GPU, one table (at most ~8 minutes).
#   bash bench/gpu_check.sh           # on a machine with a CUDA GPU
#   bash bench/gpu_check.sh --cpu     # tiny sizes on the CPU: keeps the script working (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 RAY_ADDRESS=local HF_HUB_OFFLINE=1
exec python -m bench.gpu_check "$@"
