"""Execute notebooks in place so their saved outputs (what the docs site shows) are current, then clean them.

    python tools/run_nbs.py nbs/00_core.ipynb nbs/01_fixtures.ipynb   # some
    python tools/run_nbs.py                                           # all numbered notebooks and index
"""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
nbs = [Path(a).resolve() for a in sys.argv[1:]] or sorted((ROOT/'nbs').glob('[0-9]*.ipynb')) + [ROOT/'nbs'/'index.ipynb']
for nb in nbs:
    print('running', nb, flush=True)
    subprocess.run([sys.executable, '-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--inplace',
                    '--ExecutePreprocessor.timeout=1800', str(nb)], check=True, cwd=nb.parent)
subprocess.run(['nbdev_clean'], check=True, cwd=ROOT)
subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py')], check=True, cwd=ROOT)
