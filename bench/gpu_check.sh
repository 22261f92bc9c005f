#!/usr/bin/env bash
# The GPU checks of the benchmarks, in one call on a machine with a CUDA device: each benchmark's CUDA mode under its own
# timeout, its output written to $OUT (default ./gpu_check_out). Run from the repository root:
#   OUT=/some/folder bash bench/gpu_check.sh
# It installs the project into a fresh venv first when sparseft is not importable (the device machine starts bare).
# Budget: about 12 minutes in all on an H200; every step's limit is below.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}; mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
PY=${PY:-python3}
if ! "$PY" -c "import sparseft, peft, torch; assert torch.cuda.is_available()" 2>/dev/null; then
  "$PY" -m venv .venv-gpu && . .venv-gpu/bin/activate && PY=python
  # the CUDA build of torch from the machine's default index, then the project and its benchmark peers
  timeout 240 pip install -q torch -e ".[dev]" || echo "install failed (exit $?)"
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
step() { local name=$1 limit=$2; shift 2; echo; echo "=== $name (limit ${limit}s): $*"; local t0=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1; local rc=$?; cat "$OUT/$name.txt" | tail -n 40
  echo "=== $name: exit $rc in $(( $(date +%s) - t0 )) s"; }
step gpu_cells        120 nbdev_test --path nbs --file_glob "4[01]*.ipynb" --flags gpu --do_print
step masks_7b         120 "$PY" bench/masks.py --device cuda
step masks_kthvalue   60  "$PY" bench/masks.py --device cuda --methods cat_kthvalue
step masks_1b6        90  "$PY" bench/masks.py --device cuda --preset 1b6 --methods sparseft,cat_kthvalue
step lora_step        150 "$PY" bench/lora_step.py --device cuda --rounds 2
step lora_profile     60  "$PY" bench/lora_step.py --device cuda --profile sparse_to_sparse
step semi_structured  180 "$PY" bench/semi_structured.py --device cuda
step pipeline_7b      240 "$PY" bench/pipeline.py --device cuda --json "$OUT/pipeline_7b.json"
echo; echo "gpu_check done; results in $OUT"
