"""Execute notebooks in place so their saved outputs (what the docs site shows) are current, then clean them.

    python tools/run_nbs.py nbs/00_core.ipynb nbs/01_fixtures.ipynb   # some
    python tools/run_nbs.py                                           # all numbered notebooks and index
    python tools/run_nbs.py nbs/tutorials/quickstart.ipynb            # a tutorial (not in the default list: the quickstart's runs take minutes)

The notebook's widget state (what the docs site renders widget outputs from) is saved in its metadata.
"""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
nbs = [Path(a).resolve() for a in sys.argv[1:]] or sorted((ROOT/'nbs').glob('[0-9]*.ipynb')) + [ROOT/'nbs'/'index.ipynb']
for nb in nbs:
    print('running', nb, flush=True)
    subprocess.run([sys.executable, '-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--inplace',
                    '--ExecutePreprocessor.timeout=1800', '--ExecutePreprocessor.store_widget_state=True', str(nb)], check=True, cwd=nb.parent)
subprocess.run(['nbdev_clean'], check=True, cwd=ROOT)
subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py')], check=True, cwd=ROOT)
