"""Whole-project checks: README in sync with index.ipynb, CI running exactly the README's test command."""
import re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _readme_commands():
    return re.findall(r'```sh\n(.*?)\n```', (ROOT/'README.md').read_text(), re.S)

def test_readme_in_sync():
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

def test_readme_has_two_commands_pinning_torch():
    main, tests = _readme_commands()[:2]
    for cmd in (main, tests): assert 'torch==2.13.0' in cmd
    assert main.endswith('sparseft_quickstart')
    assert 'nbdev_test --n_workers 1 --flags slow' in tests and tests.endswith('pytest')

def test_ci_runs_the_readme_test_command():
    tests = _readme_commands()[1]
    test_part = tests[tests.index('pip install'):]  # everything after creating the venv; CI makes its own
    assert test_part in (ROOT/'.ci'/'run').read_text()

def test_requirements_use_lower_bounds():
    ini = (ROOT/'settings.ini').read_text()
    req = re.search(r'^requirements = (.*)$', ini, re.M).group(1)
    assert 'torch>=2.4' in req and '==' not in req

def test_no_cell_mixes_imports_with_code():
    "nbdev's docs build runs every cell that holds an import on its own: such a cell must hold only imports."
    import json
    imp = re.compile(r'^\s*(import |from \S+ import )')
    bad = []
    for nb in sorted((ROOT/'nbs').rglob('*.ipynb')):
        for i, c in enumerate(json.loads(nb.read_text())['cells']):
            src = ''.join(c['source'])
            if c['cell_type'] != 'code' or re.search(r'^#\|\s*(export|default_exp)', src, re.M): continue
            lines = [l for l in src.splitlines() if l.strip() and not l.startswith('#|')]
            imps = [l for l in lines if imp.match(l) and not l.startswith('import nbdev')]
            if imps and len(imps) < len(lines): bad.append(f"{nb.name} cell {i}: {imps[0].strip()}")
    assert not bad, "move these imports into an imports-only cell:\n" + '\n'.join(bad)
