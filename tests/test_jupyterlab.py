"""JupyterLab serves this project: `jupyter lab` starts headless (no browser, a free port, a token, its own runtime and
config folders), its REST API lists the notebooks in nbs/, and a kernel started through the API runs code over its
websocket, importing sparseft from the project's environment. In headless Chromium, a reader who opens the widgets
notebook sees its saved panels, drawn from the notebook's widget state, before running anything.
"""
import json, os, secrets, shutil, signal, socket, subprocess, sys, time, uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest

requests = pytest.importorskip('requests')
websocket = pytest.importorskip('websocket')  # websocket-client, a dependency of jupyter_server

ROOT = Path(__file__).resolve().parents[1]

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def lab_env(tmp_path: Path) -> dict:
    "The environment of a JupyterLab of its own: runtime, config, data (the notebook-trust database) and settings under `tmp_path`."
    return {**os.environ, 'JUPYTER_RUNTIME_DIR': str(tmp_path/'runtime'), 'JUPYTER_CONFIG_DIR': str(tmp_path/'config'),
            'JUPYTER_DATA_DIR': str(tmp_path/'data'), 'JUPYTERLAB_SETTINGS_DIR': str(tmp_path/'settings'),
            'JUPYTERLAB_WORKSPACES_DIR': str(tmp_path/'workspaces'), 'OMP_NUM_THREADS': '1'}

@contextmanager
def lab_server(tmp_path: Path, root: Path = ROOT):
    "Start `jupyter lab` on `root` (the project); yield (base URL, token); stop it and check it stopped."
    port, token = free_port(), secrets.token_hex(16)
    env = lab_env(tmp_path)
    log = open(tmp_path/'lab.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', '--port-retries=0',
                             f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}',
                             '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate', '--LabApp.news_url=',
                             '--LabApp.extension_manager=readonly', *(['--allow-root'] if os.geteuid() == 0 else [])],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    try:
        t0 = time.time()
        while True:
            if proc.poll() is not None: pytest.fail(f"jupyter lab exited ({proc.returncode}):\n{(tmp_path/'lab.log').read_text()[-3000:]}")
            try:
                if requests.get(f'{base}/api/status', headers={'Authorization': f'token {token}'}, timeout=2).status_code == 200: break
            except requests.ConnectionError: pass
            if time.time() - t0 > 60: pytest.fail(f"jupyter lab did not answer in 60 s:\n{(tmp_path/'lab.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, token
    finally:
        proc.send_signal(signal.SIGTERM)
        try: proc.wait(20)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
        log.close()

def _msg(code: str, session: str) -> dict:
    "An execute_request of the Jupyter messaging protocol, as the websocket's JSON carries it."
    return {'header': {'msg_id': uuid.uuid4().hex, 'username': 'test', 'session': session, 'msg_type': 'execute_request', 'version': '5.3',
                       'date': datetime.now(timezone.utc).isoformat()},
            'parent_header': {}, 'metadata': {}, 'channel': 'shell', 'buffers': [],
            'content': {'code': code, 'silent': False, 'store_history': False, 'user_expressions': {}, 'allow_stdin': False, 'stop_on_error': True}}

def run_code(ws, code: str, timeout: float = 60) -> tuple[str, dict]:
    "Execute `code` in the kernel behind `ws`; return (its stdout, the execute_reply's content)."
    req = _msg(code, uuid.uuid4().hex)
    ws.send(json.dumps(req))
    out, reply, idle, t0 = [], None, False, time.time()
    while time.time() - t0 < timeout:
        m = json.loads(ws.recv())
        if m.get('parent_header', {}).get('msg_id') != req['header']['msg_id']: continue
        kind = m['header']['msg_type']
        if kind == 'stream' and m['content']['name'] == 'stdout': out.append(m['content']['text'])
        if kind == 'error': out.append('\n'.join(m['content']['traceback']))
        if kind == 'execute_reply': reply = m['content']
        if kind == 'status' and m['content']['execution_state'] == 'idle': idle = True  # iopub: every output of the request was sent
        if reply is not None and idle: return ''.join(out), reply
    pytest.fail(f'no execute_reply and idle status in {timeout} s')

@pytest.mark.skipif(shutil.which('jupyter') is None and not (Path(sys.executable).parent/'jupyter').exists(), reason='jupyter is not installed')
def test_lab_lists_notebooks_and_runs_a_kernel(tmp_path):
    with lab_server(tmp_path) as (base, token):
        auth = {'Authorization': f'token {token}'}
        assert requests.get(f'{base}/api/contents/nbs', timeout=10).status_code in (401, 403)  # not without the token
        listing = requests.get(f'{base}/api/contents/nbs', headers=auth, timeout=10).json()
        served = {c['name'] for c in listing['content'] if c['type'] == 'notebook'}
        assert {p.name for p in (ROOT/'nbs').glob('*.ipynb')} == served, served
        nb = requests.get(f'{base}/api/contents/nbs/00_core.ipynb', headers=auth, timeout=10).json()
        assert nb['type'] == 'notebook' and nb['content']['cells'], 'the notebook was not read'
        lab = requests.get(f'{base}/lab', headers=auth, timeout=10)
        assert lab.status_code == 200 and 'JupyterLab' in lab.text
        specs = requests.get(f'{base}/api/kernelspecs', headers=auth, timeout=10).json()
        kernel = requests.post(f'{base}/api/kernels', headers=auth, json={'name': specs['default']}, timeout=30).json()
        try:
            ws = websocket.create_connection(f"ws://127.0.0.1:{base.rsplit(':', 1)[1]}/api/kernels/{kernel['id']}/channels?token={token}", timeout=60)
            try:
                out, reply = run_code(ws, 'import sys, sparseft\nprint(6 * 7, sparseft.__name__, sys.prefix)')
                assert reply['status'] == 'ok', out
                assert out.split()[:2] == ['42', 'sparseft'] and out.split()[2] == sys.prefix, out  # the project's environment
                out, reply = run_code(ws, '1 / 0')
                assert reply['status'] == 'error' and reply['ename'] == 'ZeroDivisionError'
            finally: ws.close()
        finally:
            assert requests.delete(f"{base}/api/kernels/{kernel['id']}", headers=auth, timeout=30).status_code == 204


# ---------------------------------------------------------------- the widgets notebook, as a reader opens it

def lab_settings(tmp_path: Path) -> None:
    "JupyterLab settings for the check: every cell drawn (no windowing, so off-screen outputs are in the page), no autosave, no news."
    for plugin, values in {'notebook-extension/tracker': {'windowingMode': 'none'}, 'docmanager-extension/plugin': {'autosave': False},
                           'apputils-extension/notification': {'fetchNews': 'false'}}.items():
        f = tmp_path/'settings'/'@jupyterlab'/f'{plugin}.jupyterlab-settings'
        f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(values))

SHOWN = """(() => { const outs = Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output'));
  return {cells: document.querySelectorAll('.jp-Notebook .jp-Cell').length,
          views: document.querySelectorAll('.jp-OutputArea-output .jupyter-widgets.widget-container, .jp-OutputArea-output > .jupyter-widgets').length,
          buttons: document.querySelectorAll('.jp-OutputArea-output .widget-button').length,
          tabs: document.querySelectorAll('.jp-OutputArea-output .widget-tab').length,
          text: outs.filter(o => o.innerText.includes('VBox(children=')).length}; })()"""

@pytest.mark.skipif(shutil.which('jupyter') is None and not (Path(sys.executable).parent/'jupyter').exists(), reason='jupyter is not installed')
def test_lab_shows_the_saved_widget_panels(tmp_path):
    """80_widgets.ipynb opened in JupyterLab: untrusted, its widget outputs are text (`VBox(children=...)`: JupyterLab draws
    widget views only for trusted cells); trusted with `tools/run_nbs.py --trust`, the panels appear from the saved state,
    with no kernel code run. A copy is served, so that nothing JupyterLab does can touch the notebook."""
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None:
        if os.environ.get('CI'): pytest.fail('Chromium is not installed (apt-get install -y chromium)')
        pytest.skip('Chromium is not installed (apt-get install -y chromium)')
    from test_docs_site import Browser
    nb = ROOT/'nbs'/'80_widgets.ipynb'
    saved = json.loads(nb.read_bytes())
    views = [o for c in saved['cells'] for o in c.get('outputs', []) if 'application/vnd.jupyter.widget-view+json' in o.get('data', {})]
    assert len(views) >= 4 and saved['metadata']['widgets']['application/vnd.jupyter.widget-state+json']['state'], \
        'the notebook lacks its widget views or state: execute it with tools/run_nbs.py'
    root = tmp_path/'root'; root.mkdir()
    copy = root/nb.name
    copy.write_bytes(original := nb.read_bytes())
    lab_settings(tmp_path)
    with lab_server(tmp_path, root) as (base, token):
        b = Browser(exe, 1280, 900)
        try:
            def opened(drawn: str = 's.text + s.views >= %d' % len(views)):
                "Open the notebook; wait (up to 60 s: a loaded machine draws the big panels late) until `drawn` holds of SHOWN's counts `s`."
                b.goto(f'{base}/lab/tree/{nb.name}?token={token}')
                b.wait_for(f"document.querySelectorAll('.jp-Notebook .jp-Cell').length >= {len(saved['cells'])}", 90)
                return b.wait_for(f"(() => {{ const s = {SHOWN}; return ({drawn} || null) && s; }})()", 60) or b.eval(SHOWN)
            shown = opened()
            assert shown['text'] == len(views) and shown['buttons'] == 0, f'untrusted, the views should fall back to their text: {shown}'
            r = subprocess.run([sys.executable, str(ROOT/'tools'/'run_nbs.py'), '--trust', str(copy)], env=lab_env(tmp_path),
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0 and 'Signing notebook' in r.stdout, r.stdout + r.stderr
            shown = opened(f's.text == 0 && s.views >= {len(views)} && s.buttons >= 4 && s.tabs >= 1')  # trusted: every panel drawn
            b.eval("(document.querySelector('.jp-OutputArea-output .widget-button') || document.body).scrollIntoView({block: 'center'})")
            time.sleep(0.5)
            shots = Path(os.environ.get('SPARSEFT_SCREENSHOTS') or tmp_path); shots.mkdir(parents=True, exist_ok=True)
            b.screenshot(shots/'lab_80_widgets.png', full=False)  # to look at: $SPARSEFT_SCREENSHOTS
        finally: b.close()
    assert shown['text'] == 0, f'widget outputs still shown as text: {shown}'
    assert shown['views'] >= len(views) and shown['buttons'] >= 4 and shown['tabs'] >= 1, shown
    assert copy.read_bytes() == original  # JupyterLab wrote nothing to the notebook
