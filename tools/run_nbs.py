"""Execute notebooks in place so their saved outputs (what the docs site shows) are current, clean them, and trust them.

    python tools/run_nbs.py nbs/00_core.ipynb nbs/01_fixtures.ipynb   # some
    python tools/run_nbs.py                                           # all numbered notebooks and index
    python tools/run_nbs.py nbs/tutorials/quickstart.ipynb            # a tutorial (not in the default list: the quickstart's runs take minutes)
    python tools/run_nbs.py --trust [NB ...]                          # only trust them (default: every notebook under nbs/)

The notebook's widget state (what the docs site renders widget outputs from) is saved in its metadata.

Trust: JupyterLab draws a saved widget output (the panels of `80_widgets.ipynb`) only when the notebook is trusted;
otherwise it shows the output's text, `VBox(children=...)`. Trust is not in the file: it is the notebook's signature
in the reader's own Jupyter database (`jupyter trust`, keyed by a local secret), so it is given on each machine, and
again after each change of the notebook. This script trusts every notebook it runs, after cleaning (cleaning changes
the signature); a reader who has just cloned or pulled runs `python tools/run_nbs.py --trust` (or
`jupyter trust nbs/80_widgets.ipynb`) once, before opening the notebooks.
"""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def trust(nbs:list[Path]) -> None:
    "Sign the notebooks in this user's Jupyter database, so that JupyterLab renders their saved widget (and other rich) outputs."
    subprocess.run([sys.executable, '-m', 'jupyter', 'trust', *map(str, nbs)], check=True, cwd=ROOT)

def main(args:list[str]) -> None:
    only_trust = '--trust' in args
    paths = [Path(a).resolve() for a in args if a != '--trust']
    if only_trust:
        trust(paths or sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts))
        return
    nbs = paths or sorted((ROOT/'nbs').glob('[0-9]*.ipynb')) + [ROOT/'nbs'/'index.ipynb']
    for nb in nbs:
        print('running', nb, flush=True)
        subprocess.run([sys.executable, '-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--inplace',
                        '--ExecutePreprocessor.timeout=1800', '--ExecutePreprocessor.store_widget_state=True', str(nb)], check=True, cwd=nb.parent)
    for nb in nbs: subprocess.run(['nbdev_clean', '--fname', str(nb)], check=True, cwd=ROOT) # only the notebooks run: others may be mid-edit
    if ROOT/'nbs'/'index.ipynb' in nbs: subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py')], check=True, cwd=ROOT)
    trust(nbs)

if __name__ == '__main__': main(sys.argv[1:])
