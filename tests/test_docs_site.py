"""The offline docs site: `tools/build_docs.py` builds it, a local server serves it, headless Chromium renders it.

Two sites are built once per session, each into a temporary folder: this project's, and a small demo project whose
notebooks have a widget (with its saved state), maths, and a tutorial in `nbs/tutorials/` — what the project's own
notebooks may not have yet. The browser checks need Chromium (`apt-get install -y chromium`): without it they are
skipped, or fail when the environment variable `CI` is set.
"""
import html.parser, http.server, importlib.util, json, os, re, shutil, subprocess, sys, tempfile, threading, time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT/'tools'/'build_docs.py'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run']
CDN_HOSTS = ('cdn.jsdelivr.net', 'unpkg.com', 'cdnjs.cloudflare.com', 'fonts.googleapis.com', 'fonts.gstatic.com',
             'code.jquery.com', 'cdn.mathjax.org', 'polyfill.io')
REMOTE_TAG = re.compile(r'<(script|link)\b[^>]*?\b(src|href)\s*=\s*["\']?\s*(https?:)?//', re.I)
CSS_REMOTE = re.compile(r'(@import|url\()\s*["\']?\s*(https?:)?//', re.I)
JS_CDN_LITERAL = re.compile(r'["\'`](https?:)?//(' + '|'.join(re.escape(h) for h in CDN_HOSTS[:3]) + ')', re.I)

def published(nb:Path, nbs:Path) -> str:
    "The page nbdev publishes a notebook as: its path under nbs/, numeric prefix dropped (nbdev's `_nbpath2html`)."
    rel = nb.relative_to(nbs)
    return (rel.parent/(re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name.lower()))).with_suffix('.html').as_posix()

def notebooks(nbs:Path) -> list[Path]:
    "The notebooks nbdev puts in the docs: none in, or named with, a leading `_` or `.`."
    return sorted(p for p in nbs.rglob('*.ipynb') if not any(s.startswith(('_', '.')) for s in p.relative_to(nbs).parts))

def build(project:Path, out:Path, env:dict|None=None) -> dict:
    "Run the build script in `project`; return its output and time, failing with its messages if it fails."
    t = time.time()
    r = subprocess.run([sys.executable, str(BUILD), '--out', str(out)], cwd=project, capture_output=True, text=True,
                       timeout=900, env=env)
    assert r.returncode == 0, f"build_docs.py failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    return {'out': out, 'seconds': time.time() - t, 'stdout': r.stdout, 'stderr': r.stderr}

class Links(html.parser.HTMLParser):
    "Collect the sidebar's page links (a section's toggle has none), the title, the headings' ids and the elements' classes of a page."
    def __init__(self, text:str):
        super().__init__()
        self.sidebar, self.classes, self.ids, self.title, self._in_title = [], [], set(), '', False
        self.feed(text)
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.classes += (a.get('class') or '').split()
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and 'sidebar-link' in (a.get('class') or '').split() and a.get('href'): self.sidebar.append(a['href'])
        self._in_title = tag == 'title'
    def handle_endtag(self, tag): self._in_title = False
    def handle_data(self, data):
        if self._in_title: self.title += data

# ---------------------------------------------------------------- the sites

@pytest.fixture(scope='session')
def project_site(tmp_path_factory):
    nbs = ROOT/'nbs'
    expected = [published(p, nbs) for p in notebooks(nbs)]
    res = build(ROOT, tmp_path_factory.mktemp('docs')/'site')
    return {**res, 'expected': expected}

def _nb(cells, **meta):
    return {'cells': cells, 'nbformat': 4, 'nbformat_minor': 5,
            'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}, **meta}}
def _md(s): return {'cell_type': 'markdown', 'metadata': {}, 'source': s}
def _code(s, outs=()): return {'cell_type': 'code', 'execution_count': None, 'metadata': {}, 'outputs': list(outs), 'source': s}
def _view(w, text):
    return {'output_type': 'display_data', 'metadata': {}, 'data': {'text/plain': text,
            'application/vnd.jupyter.widget-view+json': {'version_major': 2, 'version_minor': 0, 'model_id': w.model_id}}}

@pytest.fixture(scope='session')
def demo_site(tmp_path_factory):
    "A demo project laid out as this one (top-level `_quarto.yml` and `styles.css`, linked from nbs/) with a widget and maths."
    import ipywidgets as W
    d = tmp_path_factory.mktemp('demo')
    (d/'nbs'/'tutorials').mkdir(parents=True)
    ini = re.sub(r'^repo = .*$', 'repo = demosite', (ROOT/'settings.ini').read_text(), flags=re.M)
    (d/'settings.ini').write_text(ini)
    for f in ('_quarto.yml', 'styles.css'):
        shutil.copy(ROOT/f, d/f)
        (d/'nbs'/f).symlink_to(Path('..')/f)
    slider, button = W.IntSlider(value=3, min=0, max=10, description='k'), W.Button(description='prune', icon='scissors')
    state = W.Widget.get_manager_state(drop_defaults=True)
    nbs = {'index.ipynb': _nb([_md('# demosite\n\n> Widgets and maths, offline.'),
                               _md('See [the widgets](00_widgets.ipynb) and [the maths](tutorials/01_maths.ipynb).')]),
           '00_widgets.ipynb': _nb([_md('# Widgets\n\n> A slider and a button from the saved widget state.'),
                                    _code("W.IntSlider(value=3, min=0, max=10, description='k')", [_view(slider, 'IntSlider(value=3)')]),
                                    _code("W.Button(description='prune', icon='scissors')", [_view(button, 'Button()')])],
                                   widgets={'application/vnd.jupyter.widget-state+json': state}),
           'tutorials/01_maths.ipynb': _nb([_md('# Maths\n\n> Inline and display maths.'),
                                            _md('The density is $d = 1 - s$, and\n\n$$\\sum_i m_i = (1 - s)\\,n$$\n\n'
                                                'Back to [the widgets](../00_widgets.ipynb).')])}
    for name, nb in nbs.items(): (d/'nbs'/name).write_text(json.dumps(nb))
    # Quarto, and what nbdev would run to install it, first on PATH: each notes that it ran, which must not happen
    fake, ran = d/'fakebin', d/'ran.txt'
    fake.mkdir()
    for cmd in ('quarto', 'pip', 'curl', 'sudo'):
        (fake/cmd).write_text(f'#!/bin/sh\necho {cmd} "$@" >> "{ran}"\nexit 1\n'); (fake/cmd).chmod(0o755)
    res = build(d, d/'site', env={**os.environ, 'PATH': f"{fake}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert not ran.exists(), f"the build ran {ran.read_text()}"
    return {**res, 'expected': ['index.html', 'widgets.html', 'tutorials/maths.html'], 'models': (slider.model_id, button.model_id)}

@contextmanager
def serve(folder:Path):
    "Serve `folder` on 127.0.0.1 at a free port; yield (base URL, the (path, status) of every request)."
    log = []
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code='-', size='-'): log.append((self.path.split('?')[0], int(code)))
        def log_message(self, *args): pass
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), partial(Handler, directory=str(folder)))
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try: yield f'http://127.0.0.1:{srv.server_address[1]}/', log
    finally:
        srv.shutdown(); srv.server_close()

@pytest.fixture(scope='session')
def project_server(project_site):
    with serve(project_site['out']) as s: yield s

@pytest.fixture(scope='session')
def demo_server(demo_site):
    with serve(demo_site['out']) as s: yield s

@pytest.fixture(scope='session')
def chromium():
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None:
        msg = 'Chromium is not installed (apt-get install -y chromium), so the docs site is not checked in a browser'
        if os.environ.get('CI'): pytest.fail(msg)
        pytest.skip(msg)
    return exe

def browse(exe:str, url:str, *args:str) -> str:
    "Run headless Chromium on `url` with a fresh profile; return what it prints (the DOM with `--dump-dom`)."
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([exe, *FLAGS, f'--user-data-dir={profile}', '--virtual-time-budget=5000', *args, url],
                           capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, f"chromium failed on {url}: {r.stderr[-2000:]}"
    return r.stdout

# ---------------------------------------------------------------- the files

@pytest.mark.parametrize('which', ['project_site', 'demo_site'])
def test_pages_named_as_quarto_names_them(which, request):
    site = request.getfixturevalue(which)
    out = site['out']
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob('*.html'))
    assert sorted(site['expected']) == pages, site['stdout']
    assert 'index.html' in pages and f"wrote {len(pages)} page(s)" in site['stdout']

@pytest.mark.parametrize('which', ['project_site', 'demo_site'])
def test_vendored_files_exist(which, request):
    v = request.getfixturevalue(which)['out']/'vendor'
    for f in ('katex/katex.min.js', 'katex/katex.min.css', 'katex/contrib/auto-render.min.js', 'requirejs/require.js',
              'html-manager/embed-amd.js', 'widgets-config.js', 'VERSIONS.json'):
        assert (v/f).is_file() and (v/f).stat().st_size > 0, f
    assert len(list((v/'katex'/'fonts').glob('KaTeX_Main-Regular.woff*'))) == 2
    assert list((v/'html-manager').glob('*.woff2'))
    versions = json.loads((v/'VERSIONS.json').read_text())
    assert {k: x['version'] for k, x in versions.items()} == {'katex': '0.16.11', 'requirejs': '2.3.8', '@jupyter-widgets/html-manager': '1.0.15'}

@pytest.mark.parametrize('which', ['project_site', 'demo_site'])
def test_nothing_remote(which, request):
    "No page loads a remote script or stylesheet, no CSS imports one, and no CDN is named anywhere it could be used."
    out = request.getfixturevalue(which)['out']
    bad = []
    for p in out.rglob('*'):
        if not p.is_file() or p.suffix not in ('.html', '.css', '.js', '.json', '.xml'): continue
        t, rel = p.read_text(encoding='utf-8', errors='replace'), p.relative_to(out).as_posix()
        if p.suffix == '.html': bad += [f"{rel}: {m.group(0)}" for m in REMOTE_TAG.finditer(t)]
        if p.suffix == '.css': bad += [f"{rel}: {m.group(0)}" for m in CSS_REMOTE.finditer(t)]
        if p.suffix == '.js': bad += [f"{rel}: {m.group(0)}" for m in JS_CDN_LITERAL.finditer(t)]
        else: bad += [f"{rel}: {h}" for h in CDN_HOSTS if h in t]
    assert not bad, bad

def test_every_page_loads_the_vendored_scripts(demo_site):
    out = demo_site['out']
    for page in demo_site['expected']:
        t, off = (out/page).read_text(), '../' * page.count('/')
        for src in ('katex/katex.min.js', 'katex/contrib/auto-render.min.js', 'requirejs/require.js', 'widgets-config.js', 'html-manager/embed-amd.js'):
            assert f'src="{off}vendor/{src}"' in t, (page, src)
        assert f'href="{off}vendor/katex/katex.min.css"' in t
        # KaTeX before smalldocs.js (which runs its auto-render), RequireJS after it (else KaTeX would define an AMD module)
        order = [t.index(s) for s in ('vendor/katex/katex.min.js', 'site_libs/smalldocs.js', 'vendor/requirejs/require.js', 'vendor/html-manager/embed-amd.js')]
        assert order == sorted(order), page

def test_widget_state_and_views_in_page(demo_site):
    t = (demo_site['out']/'widgets.html').read_text()
    state = re.findall(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', t, re.S)
    assert len(state) == 1 and set(demo_site['models']) <= set(json.loads(state[0])['state'])
    views = [json.loads(v)['model_id'] for v in re.findall(r'<script type="application/vnd.jupyter.widget-view\+json">(.*?)</script>', t, re.S)]
    assert views == list(demo_site['models'])

def test_links_between_pages_resolve(demo_site, project_site):
    "Links to notebooks, across folders and to the published site, point at pages that exist."
    maths = (demo_site['out']/'tutorials'/'maths.html').read_text()
    assert 'href="../widgets.html"' in maths
    assert 'href="widgets.html"' in (demo_site['out']/'index.html').read_text()
    for site in (demo_site, project_site):
        out = site['out']
        for p in out.rglob('*.html'):
            for href in re.findall(r'href="([^"#?]+\.html)', p.read_text()):
                if not re.match(r'\w+:', href): assert (p.parent/href).resolve().is_file(), (p.relative_to(out), href)

# ---------------------------------------------------------------- the script's own checks

@pytest.fixture(scope='module')
def bd():
    "tools/build_docs.py as a module."
    spec = importlib.util.spec_from_file_location('build_docs', BUILD)
    m = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = m  # its dataclass looks itself up there
    try: spec.loader.exec_module(m)
    except BaseException: sys.modules.pop(spec.name, None); raise
    yield m
    sys.modules.pop(spec.name, None)

def test_missing_npm_is_a_clear_error(bd, tmp_path, monkeypatch):
    monkeypatch.setattr(bd.shutil, 'which', lambda name: None)
    with pytest.raises(bd.DocsError, match=r'npm is needed once to fetch katex@0\.16\.11 into .*not on PATH'):
        bd.fetch_package('katex', bd.VENDORS['katex'], cache=tmp_path)

def test_cached_packages_need_no_npm(bd, project_site, monkeypatch):
    "Once a build has filled the cache, builds fetch nothing: npm is not even looked for."
    monkeypatch.setattr(bd.shutil, 'which', lambda name: pytest.fail('npm was looked for'))
    for name, spec in bd.VENDORS.items():
        assert (bd.fetch_package(name, spec)/'package.json').is_file()

def test_out_must_be_a_site_or_empty(bd, tmp_path):
    (tmp_path/'notes.txt').write_text('mine')
    with pytest.raises(bd.DocsError, match='is not a built site'): bd._check_out(tmp_path)
    bd._check_out(tmp_path/'new')  # a folder that does not exist yet is fine

def test_quarto_yml_must_be_the_top_level_one(bd, tmp_path):
    from types import SimpleNamespace
    (tmp_path/'nbs').mkdir(); (tmp_path/'_quarto.yml').write_text('project:\n  type: website\n')
    cfg = SimpleNamespace(config_path=tmp_path, nbs_path=tmp_path/'nbs')
    with pytest.raises(bd.DocsError, match='must be a link to'): bd.check_quarto_yml(cfg)  # missing
    (tmp_path/'nbs'/'_quarto.yml').write_text('project:\n  type: website\n')
    with pytest.raises(bd.DocsError, match=r'ln -sfn \.\./_quarto\.yml'): bd.check_quarto_yml(cfg)  # a copy
    (tmp_path/'nbs'/'_quarto.yml').unlink(); (tmp_path/'nbs'/'_quarto.yml').symlink_to('../_quarto.yml')
    bd.check_quarto_yml(cfg)

def test_two_pages_published_under_one_name(bd, tmp_path):
    (tmp_path/'_quarto.yml').write_text('project:\n  type: website\n')
    for n in ('00_core.md', 'core.md'): (tmp_path/n).write_text('---\ntitle: core\noutput-file: core.html\n---\n\nText.\n')
    with pytest.raises(Exception, match='00_core.md and core.md are both published as core.html'):
        bd.render(tmp_path, tmp_path/'out')

# ---------------------------------------------------------------- in the browser

def test_home_page(chromium, project_site, project_server):
    url, log = project_server
    dom = Links(browse(chromium, url + 'index.html', '--dump-dom'))
    assert dom.title.strip() == 'sparseft'
    assert 'title' in dom.classes and 'sidebar-navigation' in dom.classes
    assert sorted(set(dom.sidebar)) == sorted(project_site['expected']), dom.sidebar
    assert {'core.html', 'fixtures.html'} <= set(dom.sidebar)
    assert not [x for x in log if x[1] >= 400 and x[0] != '/favicon.ico'], log

def test_api_page(chromium, project_server):
    url, log = project_server
    text = browse(chromium, url + 'core.html', '--dump-dom')
    dom = Links(text)
    assert dom.title.strip() == 'core – sparseft'
    assert 'core.html' in dom.sidebar and 'index.html' in dom.sidebar
    assert 'prunable_params' in dom.ids
    sig = re.search(r'id="prunable_params".*?<pre[^>]*>(.*?)</pre>', text, re.S)
    assert sig, 'no signature under the prunable_params heading'
    code = re.sub(r'<[^>]+>', '', sig.group(1))
    assert 'def prunable_params(' in code
    for param in ('model:', 'include:', 'exclude:', 'default_exclude:'): assert param in code, param
    assert '# globs: keep only these names' in code # the docments comment of `include`

def test_home_page_screenshot(chromium, project_server, tmp_path):
    url, _ = project_server
    png = tmp_path/'index.png'
    browse(chromium, url + 'index.html', f'--screenshot={png}', '--window-size=1280,900')
    assert png.stat().st_size > 20_000
    try: from PIL import Image
    except ImportError: return
    im = Image.open(png).convert('RGB')
    r, g, b = im.getpixel((640, 10)) # the navbar: the cosmo theme's primary blue, so the theme's CSS loaded
    assert b > 180 and r < 90, (r, g, b)

def test_widgets_render(chromium, demo_server):
    url, log = demo_server
    dom = Links(browse(chromium, url + 'widgets.html', '--dump-dom'))
    assert dom.classes.count('widget-slider') == 1 and dom.classes.count('widget-button') == 1, 'the widgets did not render'
    assert dom.classes.count('widget-subarea') == 2
    assert any(p.startswith('/vendor/html-manager/') and p.endswith('.woff2') and c == 200 for p, c in log), 'icon font not loaded'
    assert not [x for x in log if x[1] >= 400 and x[0] != '/favicon.ico'], log

def test_maths_render(chromium, demo_server):
    url, log = demo_server
    dom = Links(browse(chromium, url + 'tutorials/maths.html', '--dump-dom'))
    assert dom.classes.count('katex') == 2 and dom.classes.count('katex-display') == 1, 'the maths did not render'
    assert dom.title.strip() == 'Maths – demosite'
    assert set(dom.sidebar) == {'../index.html', '../widgets.html', 'maths.html'}
    assert any(p.startswith('/vendor/katex/fonts/') and c == 200 for p, c in log)
    assert not [x for x in log if x[1] >= 400 and x[0] != '/favicon.ico'], log

def test_signature_comments_show_names_not_markdown(project_site):
    "A docments comment that names a function in backticks reads as the source does, not as a markdown link inside a code block."
    bad = []
    for p in project_site['out'].rglob('*.html'):
        for m in re.finditer(r'<span class="co">(.*?)</span>', p.read_text(), re.S):
            if re.search(r'\]\((https?:|[\w./-]+\.html)', m.group(1)): bad.append(f"{p.name}: {m.group(1)[:100]}")
    assert not bad, bad[:5]

# ---------------------------------------------------------------- the project's pages, in a browser driven over DevTools

class Browser:
    "Headless Chromium driven over the DevTools protocol: open pages, run JavaScript in them, take screenshots."
    def __init__(self, exe:str, width:int=1280, height:int=900):
        import websocket  # websocket-client, a dependency of jupyter_server
        self.profile = Path(tempfile.mkdtemp(prefix='chromium-'))
        self.proc = subprocess.Popen([exe, *FLAGS, f'--user-data-dir={self.profile}', '--remote-debugging-port=0', '--remote-allow-origins=*',
                                      f'--window-size={width},{height}', '--hide-scrollbars', 'about:blank'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, t0 = self.profile/'DevToolsActivePort', time.time()
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.time() - t0 > 60: self.close(); raise RuntimeError('chromium did not start')
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        import urllib.request
        pages = [t for t in json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/json')) if t['type'] == 'page']
        self.ws = websocket.create_connection(pages[0]['webSocketDebuggerUrl'], timeout=60, suppress_origin=True)
        self.n, self.events = 0, []
        self.send('Page.enable')

    def send(self, method:str, **params) -> dict:
        "Call a DevTools method; return its result (events that arrive meanwhile are kept in `events`)."
        self.n += 1
        self.ws.send(json.dumps({'id': self.n, 'method': method, 'params': params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get('id') == self.n:
                if 'error' in msg: raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get('result', {})
            self.events.append(msg)

    def goto(self, url:str, timeout:float=60):
        "Open `url` and wait for its load event."
        self.events.clear()
        self.send('Page.navigate', url=url)
        t0 = time.time()
        while not any(e.get('method') == 'Page.loadEventFired' for e in self.events):
            if time.time() - t0 > timeout: raise TimeoutError(f'{url} did not load in {timeout} s')
            self.events.append(json.loads(self.ws.recv()))

    def eval(self, js:str):
        "The value of a JavaScript expression in the page (a promise is awaited)."
        r = self.send('Runtime.evaluate', expression=js, awaitPromise=True, returnByValue=True)
        if 'exceptionDetails' in r: raise RuntimeError(f"{js[:80]}: {r['exceptionDetails']}")
        return r['result'].get('value')

    def wait_for(self, js:str, timeout:float=30):
        "Poll a JavaScript expression until it is truthy; return its last value."
        t0 = time.time()
        while True:
            v = self.eval(js)
            if v or time.time() - t0 > timeout: return v
            time.sleep(0.2)

    def screenshot(self, path:Path, full:bool=True) -> Path:
        "Save a PNG of the page, all of it when `full`."
        r = self.send('Page.captureScreenshot', format='png', captureBeyondViewport=full)
        path.write_bytes(__import__('base64').b64decode(r['data']))
        return path

    def close(self):
        try: self.ws.close()
        except Exception: pass
        self.proc.terminate()
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

@pytest.fixture(scope='module')
def browser(chromium):
    b = Browser(chromium)
    yield b
    b.close()

def saved_outputs(nb:Path) -> list[dict]:
    "The outputs saved in a notebook, in order."
    return [o for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]

IMAGES = """(async () => { const imgs = Array.from(document.querySelectorAll('main img, #quarto-document-content img, .content img'));
  for (let k = 0; k < 100 && !imgs.every(i => i.complete); k++) await new Promise(r => setTimeout(r, 100));
  return imgs.map(i => i.naturalWidth); })()"""

def test_analysis_page_shows_its_plots(browser, project_server):
    "Every figure the analysis notebook saved is an image on its page, and every image loaded."
    url, log = project_server
    want = sum('image/png' in o.get('data', {}) for o in saved_outputs(ROOT/'nbs'/'70_analysis.ipynb'))
    browser.goto(url + 'analysis.html')
    widths = browser.eval(IMAGES.replace("'main img, #quarto-document-content img, .content img'", "'img'"))
    assert want >= 4 and len(widths) == want, (want, widths)
    assert all(w > 0 for w in widths), widths

def test_widgets_page_renders_the_panels(browser, project_server):
    "The widgets notebook's saved widget views render from its saved state with the vendored manager: panels, buttons, tabs, figures."
    url, log = project_server
    nb = ROOT/'nbs'/'80_widgets.ipynb'
    views = [o['data']['application/vnd.jupyter.widget-view+json']['model_id'] for o in saved_outputs(nb)
             if 'application/vnd.jupyter.widget-view+json' in o.get('data', {})]
    state = json.loads(nb.read_text())['metadata']['widgets']['application/vnd.jupyter.widget-state+json']['state']
    assert len(views) >= 4 and set(views) <= set(state), 'the notebook lacks its widget state: execute it with tools/run_nbs.py'
    shown, todo = set(), list(views)  # the models the views show: the views and what they refer to, recursively
    while todo:
        m = todo.pop()
        if m in shown or m not in state: continue
        shown.add(m); todo += re.findall(r'IPY_MODEL_(\w+)', json.dumps(state[m]['state']))
    figures = sum(len([x for x in state[m]['state'].get('outputs', []) if 'image/png' in x.get('data', {})])
                  for m in shown if state[m]['model_name'] == 'OutputModel')
    browser.goto(url + 'widgets.html')
    n = browser.wait_for(f"document.querySelectorAll('.widget-subarea').length >= {len(views)} && document.querySelectorAll('.widget-subarea').length")
    assert n == len(views), f'{n} of {len(views)} widget views rendered'
    counts = browser.eval("""Object.fromEntries(['widget-button', 'widget-dropdown', 'widget-select-multiple', 'widget-toggle-buttons', 'widget-tab',
                                                  'widget-html', 'widget-output'].map(c => [c, document.querySelectorAll('.' + c).length]))""")
    assert counts['widget-button'] >= 4 and counts['widget-select-multiple'] >= 4 and counts['widget-tab'] >= 1, counts
    assert counts['widget-toggle-buttons'] >= 2 and counts['widget-output'] >= 3, counts
    widths = browser.wait_for(f"""(() => {{ const w = Array.from(document.querySelectorAll('.widget-output img')).map(i => i.complete ? i.naturalWidth : 0);
                                   return w.length >= {figures} && w.every(x => x > 0) && w; }})()""")
    assert figures >= 2 and widths and len(widths) == figures, (figures, widths)
    table = browser.eval("Array.from(document.querySelectorAll('.widget-html table')).map(t => t.querySelectorAll('tbody tr').length)")
    assert table and max(table) >= 3, table  # the monitor's run table
    assert not [x for x in log if x[1] >= 400 and x[0] != '/favicon.ico'], log

def test_search_finds_apply_sparse_lora(browser, project_server):
    "The search box finds a function from any page, offline, and lists its page first, in readable (light) colours."
    url, log = project_server
    browser.goto(url + 'core.html')
    hits = browser.eval("""(async () => { const box = document.querySelector('.smalldocs-search'), input = box.querySelector('input');
        input.focus(); input.value = 'apply_sparse_lora'; input.dispatchEvent(new Event('input'));
        for (let k = 0; k < 100 && !box.querySelector('.search-result'); k++) await new Promise(r => setTimeout(r, 100));
        const res = box.querySelector('.smalldocs-search-results');
        return {hrefs: Array.from(box.querySelectorAll('.search-result')).map(a => a.getAttribute('href')),
                bg: getComputedStyle(res).backgroundColor}; })()""")
    assert hits['hrefs'] and hits['hrefs'][0].endswith('sparse_lora.html#apply_sparse_lora'), hits
    r, g, b = (int(x) for x in re.findall(r'\d+', hits['bg'])[:3])
    assert min(r, g, b) > 200, hits['bg']  # a light background
    browser.eval("document.querySelector('.search-result').click()")
    assert browser.wait_for("location.pathname.endsWith('/sparse_lora.html') && location.hash") == '#apply_sparse_lora'
    assert ('/search.json', 200) in log

def test_quickstart_tutorial_shows_table_and_plots(browser, project_server):
    "The quickstart tutorial shows the 9-run results table and its analysis plots."
    url, log = project_server
    browser.goto(url + 'tutorials/quickstart.html')
    assert browser.eval("document.title").startswith('Quickstart')
    rows = browser.eval("""Array.from(document.querySelectorAll('table')).map(t => [t.querySelectorAll('tbody tr').length, t.innerText.includes('sparse_to_sparse')])""")
    assert [9, True] in rows, rows
    widths = browser.eval(IMAGES.replace("'main img, #quarto-document-content img, .content img'", "'img'"))
    assert len(widths) >= 5 and all(w > 0 for w in widths), widths

def test_screenshots(browser, project_site, project_server, tmp_path):
    "Screenshots of the analysis, widgets and tutorial pages: into $SPARSEFT_SCREENSHOTS when set (to look at), else a temporary folder."
    from PIL import Image, ImageStat
    url, _ = project_server
    out = Path(os.environ.get('SPARSEFT_SCREENSHOTS') or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    site = project_site['out']
    pages = ['analysis.html', 'widgets.html', *sorted(p.relative_to(site).as_posix() for p in (site/'tutorials').glob('*.html'))]
    assert len(pages) >= 3, pages
    for page in pages:
        browser.goto(url + page)
        browser.wait_for("Array.from(document.images).every(i => i.complete)")
        png = browser.screenshot(out/(page.replace('/', '_').replace('.html', '.png')))
        im = Image.open(png).convert('L')
        assert im.size[0] >= 1000 and im.size[1] > 1500, (page, im.size)
        assert ImageStat.Stat(im).stddev[0] > 20, f'{page}: the screenshot is nearly blank'

# ---------------------------------------------------------------- documented signatures

# Public functions and classes whose parameters lack docments comments (none left; add one here only with a reason).
KNOWN_UNDOCUMENTED: dict[str, set[str]] = {}

def undocumented(obj) -> tuple[bool, set[str]]:
    "Whether `obj` has a docstring, and its parameters (a dataclass's fields, a class's `__init__`'s) without a docments comment or `Param` help."
    import dataclasses, inspect
    from fastcore.docments import docments
    from fastcore.script import Param
    has_doc = bool((obj.__doc__ or '').strip())
    if inspect.isclass(obj) and not dataclasses.is_dataclass(obj):
        if '__init__' not in vars(obj): return has_doc, set()  # an inherited constructor (exceptions, autograd functions)
        target = obj.__init__
    else: target = obj if inspect.isclass(obj) else getattr(obj, '__wrapped__', obj)
    params = ([f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else
              [n for n, p in inspect.signature(target).parameters.items() if n not in ('self', 'cls') and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)])
    docs = docments(target)
    def help_of(n):  # a command's `Param("help", ...)` annotation documents its parameter
        ann = inspect.signature(target).parameters[n].annotation
        if isinstance(ann, str):
            try: ann = eval(ann, getattr(target, '__globals__', {}))
            except Exception: return None
        return ann.help if isinstance(ann, Param) else None
    def documented(n): return bool(docs.get(n)) or (not dataclasses.is_dataclass(obj) and bool(help_of(n)))
    return has_doc, {n for n in params if not documented(n)}

def public_objects():
    "Every function and class a module of sparseft exports (its `__all__`), defined there."
    import importlib, inspect
    for f in sorted((ROOT/'sparseft').glob('*.py')):
        if f.stem.startswith('_'): continue
        mod = importlib.import_module(f'sparseft.{f.stem}')
        for name in getattr(mod, '__all__', []):
            obj = getattr(mod, name, None)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__: yield f'{mod.__name__}.{name}', obj

def test_public_api_is_documented():
    "Each exported function and class has a docstring and a docments comment on each parameter (nbdev shows both on the docs site)."
    pytest.importorskip('ipywidgets')  # sparseft.widgets needs it
    problems, seen = [], 0
    for name, obj in public_objects():
        seen += 1
        has_doc, missing = undocumented(obj)
        if not has_doc: problems.append(f'{name}: no docstring')
        if missing - KNOWN_UNDOCUMENTED.get(name, set()): problems.append(f"{name}: no comment on {', '.join(sorted(missing))}")
    assert seen > 100, seen
    assert not problems, '\n'.join(problems)


# ---------------------------------------------------------------- examples with saved outputs

def _notebook_of(module_file: Path) -> Path | None:
    "The notebook a module is exported from (nbdev's header line)."
    m = re.search(r'File to edit: \.\./(nbs/\S+\.ipynb)', module_file.read_text())
    return ROOT/m.group(1) if m else None

def test_public_api_has_examples_with_saved_outputs():
    "Each exported function and class is used in a (non-export) cell of its notebook, and one such cell has a saved output: the site shows it."
    import json
    pytest.importorskip('ipywidgets')
    problems, seen = [], 0
    by_module: dict[str, list] = {}
    for name, obj in public_objects(): by_module.setdefault(name.rpartition('.')[0], []).append(name.rpartition('.')[2])
    for mod, names in by_module.items():
        nb = _notebook_of(ROOT/'sparseft'/f"{mod.split('.')[-1]}.py")
        assert nb is not None and nb.is_file(), mod
        cells = [c for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code' and not re.match(r'\s*#\|\s*export', ''.join(c['source']))]
        for name in names:
            seen += 1
            used = [c for c in cells if re.search(rf'\b{re.escape(name)}\b', ''.join(c['source']))]
            if not used: problems.append(f'{mod}.{name}: no example in {nb.name}')
            elif not any(c.get('outputs') for c in used): problems.append(f'{mod}.{name}: examples in {nb.name} have no saved output')
    assert seen > 100, seen
    assert not problems, '\n'.join(problems)
