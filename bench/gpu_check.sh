#!/usr/bin/env bash
# The GPU checks of the benchmarks on a machine with a CUDA device:
#   OUT=/some/folder bash bench/gpu_check.sh all # everything, most wanted first, within BUDGET seconds (default 570): one call
#   OUT=/some/folder bash bench/gpu_check.sh 1   # 2:4 kernels (#15) and the LoRA step (#13): about 9 min at most
#   OUT=/some/folder bash bench/gpu_check.sh 2   # 7B masks and the 7B pipeline (#13): about 8 min at most
# Each step runs under its own timeout, cut to what is left of BUDGET (a step with under 20 s left is skipped, and says
# so), so one failure costs only its own figures; the whole log, every step's output in full, goes to
# $OUT/gpu_check_<part>.log (default OUT: ./gpu_check_out). Run from the repository root.
#
# The GPU machine reaches no package index. Its python3 holds torch, transformers, peft, safetensors, numpy, pandas and
# matplotlib; sparseft is used from this checkout (PYTHONPATH, no install), and the test runner and fastcore come from
# the wheels in .whl/, which `bash bench/gpu_wheels.sh` downloads beforehand on a machine with the index (carry .whl).
#
# DEVICE=cpu rehearses both parts on the tiny presets, to check the plumbing anywhere before spending device time:
#   DEVICE=cpu PY=/path/to/python OUT=/tmp/rehearsal bash bench/gpu_check.sh 1
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PART=${1:-all}; [[ $PART == 1 || $PART == 2 || $PART == all ]] || { echo "usage: bash bench/gpu_check.sh all|1|2" >&2; exit 2; }
DEADLINE=$(( $(date +%s) + ${BUDGET:-570} ))
OUT=${OUT:-gpu_check_out}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}
exec > >(tee "$OUT/gpu_check_$PART.log") 2>&1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
SITE=${SITE:-/tmp/sparseft-site}  # where .whl is installed (an earlier part's install is reused)
[[ -d $SITE ]] && export PYTHONPATH="$PYTHONPATH:$SITE"
if ! "$PY" -c "import fastcore, nbdev, execnb" 2>/dev/null; then
  if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --upgrade --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl || echo "wheel install failed (exit $?)"
    # PYTHONPATH comes before the image's site-packages: .whl holds only what the image lacks (gpu_wheels.sh's list)
    export PYTHONPATH="$PYTHONPATH:$SITE"
  else
    echo "fastcore, nbdev or execnb is missing and there is no .whl/: run bench/gpu_wheels.sh where the index is reachable,"
    echo "then carry .whl; the notebook step will fail, the benchmarks may still run"
  fi
fi
"$PY" - "$DEVICE" <<'EOF' || { echo "preflight failed: nothing else is run"; exit 1; }
import sys, torch, transformers, peft, sparseft
from sparseft.sparse_lora import apply_sparse_lora  # noqa: F401  (the package imports on this machine)
print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.version.cuda,
      '| transformers', transformers.__version__, '| peft', peft.__version__, '| sparseft', sparseft.__version__, sparseft.__file__)
if sys.argv[1] == 'cuda':
    assert torch.cuda.is_available(), 'no CUDA device: run with DEVICE=cpu to rehearse'
    p = torch.cuda.get_device_properties(0)
    print(p.name, f'{p.total_memory / 2**30:.1f} GiB, capability {p.major}.{p.minor}, {p.multi_processor_count} SMs')
else: print('DEVICE=cpu: a rehearsal on the tiny presets; its timings say nothing about a GPU')
EOF
step() { local name=$1 limit=$2; shift 2; local left=$(( DEADLINE - $(date +%s) - 5 ))
  if (( left < 20 )); then echo; echo "=== $name: skipped, ${left}s left of BUDGET"; return; fi
  (( limit > left )) && limit=$left
  echo; echo "=== $name (limit ${limit}s): $*"; local t0=$(date +%s)
  timeout "$limit" "$@"; local rc=$?
  echo "=== $name: exit $rc in $(( $(date +%s) - t0 )) s"; }
# the notebooks whose `gpu` cells run here need only the tiny fixtures (10_importance also needs the MiniLM package)
NBS='^(15_patterns|21_oneshot|40a_lora_kernels|41_wrapper)\.ipynb$'
if [[ $DEVICE == cuda ]]; then
  if [[ $PART == all ]]; then
    step masks_7b         90 "$PY" bench/masks.py --device cuda
    step masks_kthvalue   45 "$PY" bench/masks.py --device cuda --methods cat_kthvalue
    step lora_step       150 "$PY" bench/lora_step.py --device cuda --rounds 2
    step semi_structured 180 "$PY" bench/semi_structured.py --device cuda
    step gpu_cells       100 "$PY" -c "from nbdev.test import nbdev_test; nbdev_test(path='nbs', flags='gpu', file_re='$NBS')"
    step lora_profile     60 "$PY" bench/lora_step.py --device cuda --profile sparse_to_sparse
    step pipeline_7b     270 "$PY" bench/pipeline.py --device cuda --json "$OUT/pipeline_7b.json"
    step masks_7b_layer   90 "$PY" bench/masks.py --device cuda --scope layer
    step masks_7b_row     90 "$PY" bench/masks.py --device cuda --scope row
    step masks_1b6        75 "$PY" bench/masks.py --device cuda --preset 1b6 --methods sparseft,cat_kthvalue
    step lora_profile_peft 45 "$PY" bench/lora_step.py --device cuda --profile peft
  elif [[ $PART == 1 ]]; then
    step gpu_cells       100 "$PY" -c "from nbdev.test import nbdev_test; nbdev_test(path='nbs', flags='gpu', file_re='$NBS')"
    step semi_structured 180 "$PY" bench/semi_structured.py --device cuda
    step lora_step       150 "$PY" bench/lora_step.py --device cuda --rounds 2
    step lora_profile     60 "$PY" bench/lora_step.py --device cuda --profile sparse_to_sparse
    step lora_profile_peft 45 "$PY" bench/lora_step.py --device cuda --profile peft
  else
    step masks_7b         90 "$PY" bench/masks.py --device cuda
    step masks_kthvalue   45 "$PY" bench/masks.py --device cuda --methods cat_kthvalue
    step masks_1b6        75 "$PY" bench/masks.py --device cuda --preset 1b6 --methods sparseft,cat_kthvalue
    step pipeline_7b     270 "$PY" bench/pipeline.py --device cuda --json "$OUT/pipeline_7b.json"
  fi
else
  if [[ $PART == all ]]; then
    step masks_tiny      120 "$PY" bench/masks.py --preset tiny
    step masks_layer_tiny 120 "$PY" bench/masks.py --preset tiny --scope layer
    step masks_row_tiny  120 "$PY" bench/masks.py --preset tiny --scope row
    step lora_step       300 "$PY" bench/lora_step.py --preset tiny --rounds 1 --steps 1
    step semi_structured 300 "$PY" bench/semi_structured.py --preset tiny
    step gpu_cells       600 "$PY" -c "from nbdev.test import nbdev_test; nbdev_test(path='nbs', flags='gpu', file_re='$NBS')"
    step pipeline_tiny   300 "$PY" bench/pipeline.py --json "$OUT/pipeline_tiny.json"
  elif [[ $PART == 1 ]]; then
    step gpu_cells       600 "$PY" -c "from nbdev.test import nbdev_test; nbdev_test(path='nbs', flags='gpu', file_re='$NBS')"
    step semi_structured 300 "$PY" bench/semi_structured.py --preset tiny
    step lora_step       300 "$PY" bench/lora_step.py --preset tiny --rounds 1 --steps 1
    step lora_profile    120 "$PY" bench/lora_step.py --preset tiny --profile sparse_to_sparse
    step lora_profile_peft 120 "$PY" bench/lora_step.py --preset tiny --profile peft
  else
    step masks_tiny      120 "$PY" bench/masks.py --preset tiny
    step masks_kthvalue  120 "$PY" bench/masks.py --preset tiny --methods cat_kthvalue
    step pipeline_tiny   300 "$PY" bench/pipeline.py --json "$OUT/pipeline_tiny.json"
  fi
fi
echo; echo "gpu_check part $PART done; results in $OUT"
