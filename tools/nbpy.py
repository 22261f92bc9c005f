"""Convert between notebooks and a plain-text cell format, for editing notebooks outside JupyterLab.

    python tools/nbpy.py to-nb  SRC.py  NB.ipynb   # build a notebook (outputs of unchanged cells and the notebook's metadata are kept)
    python tools/nbpy.py to-py  NB.ipynb SRC.py    # dump a notebook's sources

Cells start with a line `#%% md` (markdown) or `#%%` (code); the text below it is the cell's source, as is.
"""
import json, secrets, sys
from pathlib import Path

def read_cells(text):
    cells, cur = [], None
    for line in text.splitlines():
        if line.startswith('#%%'):
            if cur: cells.append(cur)
            cur = {'cell_type': 'markdown' if line.strip() == '#%% md' else 'code', 'lines': []}
        elif cur is not None: cur['lines'].append(line)
    if cur: cells.append(cur)
    out = []
    for c in cells:
        src = '\n'.join(c['lines']).strip('\n')
        out.append((c['cell_type'], src))
    return out

def to_nb(src, dst):
    dst = Path(dst)
    old, ids, meta = {}, {}, {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
    if dst.exists():
        prev = json.loads(dst.read_text())
        meta = prev.get('metadata') or meta  # kept as it was: the kernelspec and the saved widget state
        for c in prev['cells']:
            ids.setdefault(''.join(c['source']), c.get('id'))
            if c['cell_type'] == 'code': old[''.join(c['source'])] = c.get('outputs', [])
    cells, used = [], set()
    for kind, s in read_cells(Path(src).read_text()):
        lines = s.splitlines(keepends=True)
        cid = ids.get(s)
        if not cid or cid in used: cid = secrets.token_hex(4)  # stable ids keep nbdev_export's output stable
        used.add(cid)
        if kind == 'markdown': cells.append({'cell_type': 'markdown', 'id': cid, 'metadata': {}, 'source': lines})
        else: cells.append({'cell_type': 'code', 'execution_count': None, 'id': cid, 'metadata': {}, 'outputs': old.get(s, []), 'source': lines})
    nb = {'cells': cells, 'metadata': meta,
          'nbformat': 4, 'nbformat_minor': 5}
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

def to_py(src, dst):
    nb = json.loads(Path(src).read_text())
    parts = []
    for c in nb['cells']:
        parts.append(('#%% md' if c['cell_type'] == 'markdown' else '#%%') + '\n' + ''.join(c['source']))
    Path(dst).write_text('\n\n'.join(parts) + '\n')

if __name__ == '__main__':
    cmd, a, b = sys.argv[1:4]
    {'to-nb': to_nb, 'to-py': to_py}[cmd](a, b)
