#!/usr/bin/env bash
# Downloads, on a machine that reaches the package index, the wheels that bench/gpu_check.sh needs on a GPU machine that
# reaches nothing. That machine's image already holds torch, transformers, peft, safetensors, numpy, pandas, matplotlib,
# pyyaml, tqdm and filelock; it lacks the test runner (nbdev, execnb, IPython) and fastcore, which sparseft imports.
# Run from the repository root:
#   bash bench/gpu_wheels.sh            # wheels for the GPU machine's Python (3.12) into .whl/
#   PYVER=3.11 WHL=/tmp/whl bash bench/gpu_wheels.sh   # the same set for this machine's Python, to rehearse
# .whl/ is git-ignored; carry it to the GPU machine, where gpu_check.sh installs it without any index (--no-index).
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}; WHL=${WHL:-.whl}
# pinned to the dev environment's versions: the closure of nbdev, execnb, fastcore and ghapi less what the image holds
WHEELS="asttokens==3.0.2 astunparse==1.6.3 execnb==0.1.18 executing==2.3.0 fastcore==1.14.5 fastgit==0.1.4 ghapi==1.1.1
ipython==9.19.1 ipython-pygments-lexers==1.1.1 jedi==0.20.1 matplotlib-inline==0.2.2 nbdev==2.4.14 parso==0.8.7
pexpect==4.9.0 prompt-toolkit==3.0.53 ptyprocess==0.7.0 pure-eval==0.2.4 stack-data==0.6.3 traitlets==5.16.1
watchdog==7.1.1 wcwidth==0.9.5"
mkdir -p "$WHL"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 --platform any -d "$WHL" $WHEELS
echo "$(ls "$WHL"/*.whl | wc -l) wheels, $(du -sh "$WHL" | cut -f1), in $WHL"
