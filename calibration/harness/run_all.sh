#!/usr/bin/env bash
# The standard device job: Llama-3.1-8B tp1 and Llama-3.1-70B tp 2/4/8 on this machine's GPU,
# one measurements CSV per (model, tp) under $OUT (default out/measurements).
# Estimated ~1 minute on an H100 (python -m calibration.harness --all --estimate h100-sxm);
# --time-budget-s trims repeats so it stays under 7 minutes, start-up included.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # sim and calibration from this checkout
OUT="${OUT:-out/measurements}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
python3 -m calibration.harness --all --device cuda --out "$OUT" --time-budget-s 420 "$@"
ls -l "$OUT"
