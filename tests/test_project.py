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


# ---------------------------------------------------------------- the package's structure

def _import_graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    "Module -> the sparseft modules it imports (at the top or inside a function), and every (importer, module, name) of a private name."
    import ast
    graph, private = {}, []
    mods = {p.stem for p in (ROOT/'sparseft').glob('*.py')}
    for p in sorted((ROOT/'sparseft').glob('*.py')):
        if p.stem == '_modidx': continue
        deps = graph.setdefault(p.stem, set())
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom):
                base = n.module or ''
                if n.level == 1: base = base
                elif base.startswith('sparseft.'): base = base[len('sparseft.'):]
                elif base == 'sparseft': base = ''
                else: continue
                targets = [base] if base else [a.name for a in n.names if a.name in mods]
                deps.update(t for t in targets if t in mods and t != p.stem)
                if base: private += [(p.stem, base, a.name) for a in n.names if a.name.startswith('_') and not a.name.startswith('__')]
            elif isinstance(n, ast.Import):
                deps.update(a.name.split('.')[1] for a in n.names if a.name.startswith('sparseft.') and a.name.split('.')[1] in mods)
    return graph, private

def test_no_import_cycle():
    "The modules' imports (top-level and inside functions) form no cycle: each module can be read after the ones it imports."
    graph, _ = _import_graph()
    state, stack = {}, []
    def visit(m):
        state[m] = 'open'; stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 'open': raise AssertionError('import cycle: ' + ' -> '.join(stack[stack.index(d):] + [d]))
            if d not in state: visit(d)
        state[m] = 'done'; stack.pop()
    for m in sorted(graph):
        if m not in state: visit(m)

def test_no_module_imports_a_private_name_of_another():
    "A name another module needs is public (documented, with an example); a leading underscore means this module only."
    _, private = _import_graph()
    assert not private, private

def test_modules_at_most_about_600_lines():
    sizes = {p.stem: len(p.read_text().splitlines()) for p in (ROOT/'sparseft').glob('*.py') if p.stem != '_modidx'}
    assert max(sizes.values()) <= 640, {m: n for m, n in sizes.items() if n > 640}

def test_floors_print():
    "The structure drawn as floors: a module sits one floor above the highest module it imports."
    graph, _ = _import_graph()
    floor = {}
    def f(m):
        if m not in floor: floor[m] = 1 + max((f(d) for d in graph.get(m, ())), default=-1)
        return floor[m]
    for m in graph: f(m)
    assert floor['core'] == 0 and floor['train'] > floor['lifecycle'] > floor['prepare'] > floor['config']
    assert floor['local'] > floor['lifecycle'] and floor['cs3_backend'] > floor['lifecycle']
    for k in sorted(set(floor.values())): print(k, ' '.join(sorted(m for m, v in floor.items() if v == k)))
