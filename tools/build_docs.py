"""Build the docs site offline, as `nbdev_docs` builds it with Quarto, but with smalldocs and no network.

    python tools/build_docs.py                 # build _docs/
    python tools/build_docs.py --out DIR       # build into DIR instead
    python tools/build_docs.py --force         # process every notebook again, not only the changed ones
    python tools/build_docs.py --repo URL      # link the pages to another repository (a fork); also --branch NAME

Run it from the project (any folder under the one with `settings.ini`). Users who have Quarto can still run
`nbdev_docs`; both read the same top-level `_quarto.yml` (`nbs/_quarto.yml` is a link to it).

1. nbdev prepares the notebooks: `nbs/nbdev.yml` and processed copies in `_proc/` (front matter, `show_doc`
   output, doc links), with the same functions `nbdev_docs` calls, minus Quarto. The processing is cached in `_proc/`;
   a change to this script processes every notebook again, as `--force` does.
2. smalldocs renders `_proc/` into the site. Pages are named as Quarto names them, from nbdev's `output-file`
   (`00_core.ipynb` -> `core.html`); links to the published site (`website.site-url`) become relative links;
   widget outputs become widget views, with the notebook's widget state.
   - The sidebar is `website.sidebar` in `_quarto.yml`, in reading order (nbdev's generated `sidebar.yml`, in
     file-name order, is not read); pages link to the previous and next page in that order. A page whose notebook
     is titled by its module's name only (`# importance`) takes its title from `sparseft-page-titles` in
     `_quarto.yml` ("Importance scores"). A page no sidebar lists is always warned about.
   - A heading that ends in ` -` is a notebook-only heading (nbdev's old convention): the page shows it without the
     dash and leaves it out of the table of contents.
   - The repository: `git_url` and `branch` of `settings.ini`, unless `--repo URL` / `--branch NAME` or the
     environment variables `SPARSEFT_DOCS_REPO` / `SPARSEFT_DOCS_BRANCH` say otherwise (a fork, a mirror). It is
     the navbar's repository link, the "Report an issue" link, and every `source` link, which points at
     `<repo>/blob/<branch>/<file>#L<line>` (nbdev writes them from the installed package's `_modidx.py`).
3. KaTeX, RequireJS and the Jupyter widgets' HTML manager are vendored from npm into `vendor/` (cached in
   `~/.cache/sparseft/npm`, or `$SPARSEFT_NPM_CACHE`) and every page loads them from there; the theme's web-font
   import is removed. The build fails if any page still loads a script or stylesheet from the network.
"""
from __future__ import annotations

import argparse, base64, hashlib, html, json, os, re, shutil, subprocess, sys, tarfile, tempfile, time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nbdev.processors import FilterDefaults, rm_header_dash

# npm packages copied into the site: package -> what to copy. Exact versions, checked against their npm integrity.
# Fonts: only woff2 and woff, which every browser that runs these scripts reads first (the CSS lists them before ttf/eot/svg).
@dataclass(frozen=True)
class Vendor:
    "One npm package to vendor: its pinned version and integrity, and which of its files go where under `vendor/`."
    version: str # exact version
    integrity: str # npm's `dist.integrity` of that version's tarball
    files: tuple # (glob inside the package, folder under `vendor/`) pairs
    license: str # its licence, for `vendor/VERSIONS.json`

VENDORS = {
    'katex': Vendor('0.16.11',
        'sha512-RQrI8rlHY92OLf3rho/Ts8i/XvjgguEjOkO1BEXcU3N8BqPpSzBNwV/G0Ukr+P/l3ivvJUE/Fa/CwbS6HesGNQ==',
        (('dist/katex.min.js', 'katex'), ('dist/katex.min.css', 'katex'), ('dist/contrib/auto-render.min.js', 'katex/contrib'),
         ('dist/fonts/*.woff2', 'katex/fonts'), ('dist/fonts/*.woff', 'katex/fonts'), ('LICENSE', 'katex')), 'MIT'),
    'requirejs': Vendor('2.3.8',
        'sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==',
        (('require.js', 'requirejs'),), 'MIT'),
    '@jupyter-widgets/html-manager': Vendor('1.0.15',
        'sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==',
        (('dist/embed-amd.js', 'html-manager'), ('dist/*.woff2', 'html-manager'), ('dist/*.woff', 'html-manager')), 'BSD-3-Clause'),
}
# The widget bundle's default for modules it does not bundle; each page sets `data-jupyter-widgets-cdn` to a local
# folder instead, and the vendored copy has the default blanked, so that nothing can reach for the network.
WIDGETS_CDN = '"https://cdn.jsdelivr.net/npm/"'
# Points RequireJS at the vendored bundle, so the widgets' fonts load from `vendor/html-manager/`.
WIDGETS_CONFIG_JS = """// Written by tools/build_docs.py: the widget modules and their fonts live in vendor/html-manager/ beside this file
(function () {
  var here = document.currentScript.src.replace(/[^\\/]*$/, '');
  window.requirejs.config({paths: {'@jupyter-widgets': here + 'html-manager'}});
})();
"""
CODE_COMMENT = re.compile(r'<span class="co">.*?</span>', re.S) # a comment in highlighted code
MD_LINK = re.compile(r'\[(`[^`\]]+`)\]\([^)\s]+\)') # [`name`](address)
SEARCH_RESULTS = 'class="smalldocs-search-results dropdown-menu"' # smalldocs' search results list
KATEX_MARK = '@@sparseft-katex@@' # what smalldocs writes for KaTeX's address, replaced by the vendored one on each page
WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'
WIDGET_STATE = 'application/vnd.jupyter.widget-state+json'
PAGE_SRC_EXTS = ('.ipynb', '.qmd', '.md')
REMOTE = re.compile(r'''<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^>]*>''', re.I)
CSS_REMOTE_IMPORT = re.compile(r'@import\s+url\(\s*["\']?(?:https?:)?//[^)]*\)\s*;?', re.I)
NB_ONLY_HEADING = re.compile(r'\s+-\s*$') # the end of a notebook-only heading: ` -`
SOURCE_LINK = re.compile(r'(<a\b[^>]*?\bhref=")([^"]+)("[^>]*>source</a>)') # nbdev's `show_doc` link to the code
BLOB = re.compile(r'^(?P<repo>.+?)/blob/(?P<branch>[^/]+)/(?P<path>[^#?]+)(?P<line>#L\w*)?$') # <repo>/blob/<branch>/<file>#L<n>
DATAFRAME = re.compile(r'<table\b[^>]*\bclass="dataframe"[^>]*>.*?</table>', re.S) # a pandas table in a saved output
MODULE_TITLE = re.compile(r'[a-z_][a-z0-9_]*') # a title that is only a module's name, as nbdev notebooks start: `# mask_ops`

class DocsError(Exception):
    "A docs build that cannot go on, with a message that says why."

def npm_cache() -> Path:
    "The folder where the npm tarballs and their extracted packages are kept between builds."
    return Path(os.environ.get('SPARSEFT_NPM_CACHE') or Path.home()/'.cache'/'sparseft'/'npm')

def _integrity(path:Path) -> str:
    return 'sha512-' + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()

def fetch_package(
    name:str, # npm package name, e.g. 'katex'
    spec:Vendor, # its pinned version and integrity
    cache:Path|None=None, # where to keep it; default `npm_cache()`
) -> Path: # the extracted package folder (npm's `package/`)
    "Return the extracted npm package `name@version` from the cache, running `npm pack` only when it is not there yet."
    cache = Path(cache or npm_cache())
    dest = cache/f"{name.replace('/', '__')}@{spec.version}"
    if (dest/'.complete').exists(): return dest/'package'
    npm = shutil.which('npm')
    if npm is None:
        raise DocsError(f"npm is needed once to fetch {name}@{spec.version} into {cache}, and it is not on PATH; "
                        "install Node.js (e.g. `apt-get install -y nodejs npm`) or fill the cache from a machine that has it")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix='.pack-') as tmp:
        r = subprocess.run([npm, 'pack', f'{name}@{spec.version}', '--json', '--pack-destination', tmp],
                           capture_output=True, text=True, cwd=tmp)
        tgzs = list(Path(tmp).glob('*.tgz'))
        if r.returncode or len(tgzs) != 1:
            raise DocsError(f"`npm pack {name}@{spec.version}` failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()[-800:]}")
        got = _integrity(tgzs[0])
        if got != spec.integrity:
            raise DocsError(f"{name}@{spec.version}: the tarball's integrity {got} is not the pinned {spec.integrity}")
        out = Path(tmp)/'x'
        with tarfile.open(tgzs[0]) as tf: tf.extractall(out, filter='data')
        if not (out/'package').is_dir(): raise DocsError(f"{name}@{spec.version}: the tarball has no package/ folder")
        (out/'.complete').write_text(spec.integrity)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(out, dest) # atomic: a half-extracted package is never seen as complete
    return dest/'package'

def vendor_into(
    site:Path, # the built site
    cache:Path|None=None, # the npm cache folder
) -> list[Path]: # the files written under `site/vendor`
    "Copy the pinned npm files into `site/vendor/`, write `VERSIONS.json` and the widgets' RequireJS config."
    vdir, written, versions = site/'vendor', [], {}
    for name, spec in VENDORS.items():
        pkg = fetch_package(name, spec, cache)
        for pattern, to in spec.files:
            found = sorted(p for p in pkg.glob(pattern) if p.is_file())
            if not found: raise DocsError(f"{name}@{spec.version} has no file matching {pattern!r} in {pkg}")
            for f in found:
                d = vdir/to/f.name
                d.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, d)
                written.append(d)
        versions[name] = {'version': spec.version, 'integrity': spec.integrity, 'license': spec.license}
    embed = vdir/'html-manager'/'embed-amd.js'
    src = embed.read_text(encoding='utf-8')
    if WIDGETS_CDN not in src: raise DocsError(f"{embed}: its default CDN {WIDGETS_CDN} is not where it was; check the new version")
    embed.write_text(src.replace(WIDGETS_CDN, '""'), encoding='utf-8')
    (vdir/'widgets-config.js').write_text(WIDGETS_CONFIG_JS, encoding='utf-8')
    (vdir/'VERSIONS.json').write_text(json.dumps(versions, indent=2) + '\n', encoding='utf-8')
    return written + [vdir/'widgets-config.js', vdir/'VERSIONS.json']

@dataclass(frozen=True)
class Repo:
    "The repository the site links to: the navbar's link, issues, and the `source` link of each documented name."
    url: str # e.g. https://github.com/sparseft/sparseft, without a trailing `/` or `.git`
    branch: str # the branch the `source` links read

    def blob(self, path:str) -> str:
        "The address of a file of the repository, on its branch."
        return f"{self.url}/blob/{self.branch}/{path}"

def docs_repo(
    cfg, # nbdev's config (settings.ini)
    url:str|None=None, # `--repo`: overrides $SPARSEFT_DOCS_REPO and settings.ini's `git_url`
    branch:str|None=None, # `--branch`: overrides $SPARSEFT_DOCS_BRANCH and settings.ini's `branch`
) -> Repo:
    "The repository the site links to: the arguments, else the environment variables, else `git_url` and `branch` of settings.ini."
    url = url or os.environ.get('SPARSEFT_DOCS_REPO') or cfg.get('git_url')
    branch = branch or os.environ.get('SPARSEFT_DOCS_BRANCH') or cfg.get('branch') or 'main'
    if not url: raise DocsError("no repository to link to: set git_url in settings.ini, or give --repo URL (or $SPARSEFT_DOCS_REPO)")
    if not re.match(r'https?://[^/\s]+/\S+$', url):
        raise DocsError(f"the repository {url!r} is not an http(s) address such as https://github.com/OWNER/NAME")
    url = url.rstrip('/')
    return Repo(url[:-4] if url.endswith('.git') else url, branch)

def point_source_links(
    text:str, # a page's HTML
    repo:Repo, # the repository to link to
    lib:str, # the package's folder in the repository (`lib_path`, e.g. 'sparseft')
) -> str: # the page, its `source` links into `lib/` pointing at `repo`
    "Point each `source` link of `show_doc` into the project's package at `repo`, on its branch, keeping the file and line."
    def one(m):
        b = BLOB.match(html.unescape(m.group(2)))
        if b is None or not b['path'].startswith(lib.strip('/') + '/'): return m.group(0) # another package's code
        line = b['line'] if b['line'] and b['line'][2:].isdigit() else '' # nbdev writes `#LNone` when it cannot find the file
        return m.group(1) + html.escape(repo.blob(b['path']) + line) + m.group(3)
    return SOURCE_LINK.sub(one, text)

def break_table_headers(
    text:str, # a page's HTML
) -> str: # the page, the column names of its pandas tables breakable after each `_`
    "Let the column names of pandas tables break after `_` (`sparsity_after_merge`), so that a wide table needs less room."
    def table(m):
        return re.sub(r'(<thead>.*?</thead>)', lambda h: re.sub(r'(<th\b[^>]*>)([^<]*)(</th>)',
                      lambda c: c.group(1) + c.group(2).replace('_', '_<wbr>') + c.group(3), h.group(1)), m.group(0), flags=re.S)
    return DATAFRAME.sub(table, text)

def head_tags(
    offset:str, # path from the page to the site root: '' or '../' ...
) -> tuple[str, str, str]: # (stylesheets for the head, scripts before smalldocs.js, scripts after it)
    "The tags every page gets: KaTeX before smalldocs.js (which calls its auto-render), RequireJS and the widgets after."
    v = f'{offset}vendor'
    css = f'<link rel="stylesheet" href="{v}/katex/katex.min.css">'
    before = f'<script src="{v}/katex/katex.min.js" defer></script><script src="{v}/katex/contrib/auto-render.min.js" defer></script>'
    # RequireJS last: loaded earlier, it would make the UMD scripts (KaTeX, Bootstrap) define AMD modules instead of globals
    after = (f'<script src="{v}/requirejs/require.js" defer></script><script src="{v}/widgets-config.js" defer></script>'
             f'<script src="{v}/html-manager/embed-amd.js" data-jupyter-widgets-cdn="{v}/npm/" defer></script>')
    return css, before, after

def postprocess_page(
    text:str, # a page's HTML as smalldocs wrote it
    offset:str, # path from the page to the site root
    repo:Repo|None=None, # the repository its `source` links point at; None leaves them as nbdev wrote them
    lib:str='', # the package's folder in the repository, whose `source` links go to `repo`
) -> str: # the page, loading KaTeX and the widget manager from `vendor/`
    "Point the page's KaTeX at `vendor/`, or add it, add RequireJS and the widget manager after smalldocs.js, light search results, and point `source` links at `repo`."
    css, before, after = head_tags(offset)
    text = text.replace(KATEX_MARK, f'{offset}vendor/katex')
    m = re.search(r'<script src="[^"]*site_libs/smalldocs\.js"[^>]*></script>', text)
    if m is None: raise DocsError("a page has no smalldocs.js script tag; the layout of smalldocs has changed")
    has_katex = 'vendor/katex/katex.min.js' in text
    text = (text[:m.start()] + ('' if has_katex else before) + m.group(0) + after + text[m.end():])
    if 'vendor/katex/katex.min.css' not in text: text = text.replace('</head>', css + '</head>', 1)
    # nbdev turns `name` in a signature's docments comments into a markdown link, which a code block shows as it is
    text = CODE_COMMENT.sub(lambda m: MD_LINK.sub(r'\1', m.group(0)), text)
    # the search box sits in the navbar, which is `data-bs-theme="dark"`: its results would inherit dark colours with dim text
    text = text.replace(SEARCH_RESULTS, SEARCH_RESULTS + ' data-bs-theme="light"')
    if repo is not None: text = point_source_links(text, repo, lib)
    return break_table_headers(text)

def offline_problems(
    site:Path, # the built site
) -> list[str]: # one line per page or stylesheet that would reach for the network
    "List the remote scripts and stylesheets the site's pages load, and the remote imports of its CSS."
    out = []
    for p in sorted(site.rglob('*.html')):
        out += [f"{p.relative_to(site)}: {m.group(0)[:160]}" for m in REMOTE.finditer(p.read_text(encoding='utf-8'))]
    for p in sorted(site.rglob('*.css')):
        out += [f"{p.relative_to(site)}: {m.group(0)[:160]}" for m in CSS_REMOTE_IMPORT.finditer(p.read_text(encoding='utf-8', errors='replace'))]
    return out

def _widget_state(nb_text:str) -> dict:
    "The notebook's saved widget state, `{}` when it has none."
    try: meta = json.loads(nb_text).get('metadata') or {}
    except ValueError: return {}
    st = (meta.get('widgets') or {}).get(WIDGET_STATE) or {}
    return st if st.get('state') else {}

def _script_json(obj) -> str:
    "JSON safe to put inside a `<script>` element."
    return json.dumps(obj).replace('</', '<\\/')

_models: set = set() # the widget models of the notebook being read

def notebook_only_headings(state) -> None:
    "A markdown-it core rule: a heading that ends in ` -` loses the dash and gets the class `unlisted` (out of the table of contents)."
    toks = state.tokens
    for i, t in enumerate(toks[:-1]):
        if t.type != 'heading_open' or toks[i + 1].type != 'inline': continue
        inl = toks[i + 1]
        m = NB_ONLY_HEADING.search(inl.content)
        if m is None or not inl.content[:m.start()].strip(): continue
        inl.content = inl.content[:m.start()]
        attrs = (t.meta or {}).get('attrs')
        if attrs is not None and 'unlisted' not in attrs.classes: attrs.classes.append('unlisted')

def _install_patches() -> None:
    "Point smalldocs' KaTeX at a mark `finish` replaces, render widget views, and read notebook-only headings; once per process."
    from smalldocs import layout, markdown, notebook
    layout.KATEX = KATEX_MARK
    if not getattr(markdown.heading_attrs, 'sparseft', False):
        orig_attrs = markdown.heading_attrs # `make_parser` looks it up at each page, so the rule runs right after it
        def heading_attrs(state):
            "smalldocs' `{#id .class}` rule for headings, then the notebook-only headings."
            orig_attrs(state)
            notebook_only_headings(state)
        heading_attrs.sparseft = True
        markdown.heading_attrs = heading_attrs
    if getattr(notebook.output_html, 'sparseft', False): return
    orig = notebook.output_html

    def output_html(out, opts=None, n=0):
        "smalldocs' `output_html`, and a widget view as a script element, when the notebook has the widget's state."
        view = (out.get('data') or {}).get(WIDGET_VIEW)
        if isinstance(view, dict) and view.get('model_id') in _models:
            return notebook.raw_html(f'<div class="cell-output cell-output-display">\n'
                                     f'<script type="{WIDGET_VIEW}">{_script_json(view)}</script>\n</div>')
        return orig(out, opts, n)
    output_html.sparseft = True
    notebook.output_html = output_html

PAGE_TITLES = 'sparseft-page-titles' # the key of `_quarto.yml` that titles pages by their notebook's path

def page_titles(
    config:dict, # the whole loaded config (`_quarto.yml` and its metadata files)
) -> dict[str, str]: # notebook path under nbs/ -> the page's human title
    "The human titles of pages whose notebooks are titled by their module's name only: `sparseft-page-titles` in `_quarto.yml`."
    t = config.get(PAGE_TITLES) or {}
    if not isinstance(t, dict): raise DocsError(f"{PAGE_TITLES} in _quarto.yml must map notebook paths to titles, not {t!r}")
    return {str(k).lstrip('/'): str(v) for k, v in t.items() if v}

def make_site_class():
    "A smalldocs `Site` that names pages by nbdev's `output-file`, keeps links local, and renders widget outputs."
    from smalldocs import notebook, site as sd_site
    from smalldocs.config import BuildError
    _install_patches()

    class NbdevSite(sd_site.Site):
        "smalldocs' site, with nbdev's page names, local links to the published site, and widgets."
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.owners = {} # published path -> the source that claims it
            self.titles = page_titles(self.project.config) # source path -> its human title

        def read(self, src):
            text = (self.root/src).read_text(encoding='utf-8-sig') if src.suffix == '.ipynb' else ''
            state = _widget_state(text) if text else {}
            _models.clear(); _models.update(state.get('state', {}))
            try: page = super().read(src)
            finally: _models.clear()
            of = page.front.get('output-file')
            if of: page.out = src.parent/PurePosixPath(str(of))
            title, human = page.front.get('title'), self.titles.get(str(src))
            # nbdev notebooks start with their module's name (`# mask_ops`); the page takes its human title instead
            if human and page.out.stem != 'index' and isinstance(title, str) and MODULE_TITLE.fullmatch(title.strip()):
                page.front['title'] = page.meta['title'] = human
            if state: page.body += '\n' + notebook.raw_html(f'<script type="{WIDGET_STATE}">{_script_json(state)}</script>')
            if self.owners.get(page.out, src) != src:
                raise BuildError(f"{self.owners[page.out]} and {src} are both published as {page.out}; rename one of them")
            self.owners[page.out] = src
            return page

        def find_page(self, target):
            found = super().find_page(target)
            if found is not None: return found
            for p in self.pages.values(): # a link to a page by its published name, e.g. core.html
                if p.out == target or p.out == target/'index.html': return p
            return None

        def resolve(self, href, page, record=True):
            base = str(self.project.website.get('site-url') or '').rstrip('/') + '/'
            if base != '/' and href and href.startswith(base): # a link to the published site: to this page if it has it
                local = '/' + href[len(base):]
                path = re.match(r'[^#?]*', local).group(0)
                if self.find_page(PurePosixPath(path.lstrip('/') or '.')) is not None or path == '/':
                    return super().resolve(local, page, record)
            return super().resolve(href, page, record)
    return NbdevSite

def check_quarto_yml(cfg) -> None:
    "Refuse to build when `nbs/_quarto.yml` is not the top-level `_quarto.yml`, which both builds must read."
    top, nbq = cfg.config_path/'_quarto.yml', cfg.nbs_path/'_quarto.yml'
    if top.exists() and not (nbq.exists() and nbq.resolve() == top.resolve()):
        rel = os.path.relpath(top, nbq.parent)
        raise DocsError(f"{nbq} must be a link to {top}, the one config both builds read; make it with "
                        f"`ln -sfn {rel} {nbq}`")

def prune_proc(cache:Path, nbs:Path) -> list[Path]:
    "Remove pages from nbdev's `_proc` cache whose notebook is gone, so the site does not publish them."
    gone = []
    if not cache.is_dir(): return gone
    for p in cache.rglob('*'):
        r = p.relative_to(cache)
        if not p.is_file() or p.suffix not in PAGE_SRC_EXTS or any(s.startswith(('_', '.')) for s in r.parts): continue
        if not (nbs/r).exists() and not (nbs/r.parent/(r.name + '.py')).exists():
            p.unlink(); gone.append(r)
    return gone

def skip_flagged_cells(
    flags:set, # the test flags (`tst_flags` in settings.ini): slow, gpu, cs3, ...
) -> None:
    "Make nbdev's docs processing skip cells flagged for tests (`#| cs3`, `#| gpu`, ...): they need hardware or environments a docs build has not."
    import nbdev.processors as procs
    if getattr(procs._do_eval, 'sparseft', False): return
    orig = procs._do_eval
    def _do_eval(cell):
        "nbdev's choice of the cells to run for `show_doc`, minus flagged cells."
        return None if set(cell.directives_) & flags else orig(cell)
    _do_eval.sparseft = True
    procs._do_eval = _do_eval # `exec_show_docs` looks it up in its module at each cell

class DocsFilters(FilterDefaults):
    "nbdev's processors for the docs, run without the flagged cells, keeping notebook-only headings (the page shows them unlisted); top-level, so that nbdev's worker processes (spawned) can load it."
    def base_procs(self):
        # nbdev drops a markdown cell that is only a ` -` heading; the page shows it, without the dash and the TOC entry
        return [p for p in super().base_procs() if p is not rm_header_dash]

    def __call__(self, nb):
        from nbdev.config import get_config
        skip_flagged_cells(set(str(get_config().get('tst_flags', '')).split()))
        return super().__call__(nb)

def prepare(
    force:bool=False, # process every notebook, not only those changed since the last build
    n_workers:int|None=None, # processes for nbdev's processing; default nbdev's (the CPU count)
):
    "Write nbdev.yml and process the notebooks into `_proc/`, as `nbdev_docs` does before Quarto (the sidebar is `_quarto.yml`'s)."
    from nbdev.config import get_config
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.serve import proc_nbs
    cfg = get_config()
    check_quarto_yml(cfg)
    refresh_quarto_yml() # writes nbs/nbdev.yml; writes nbs/_quarto.yml only when it is missing
    cache_dir = cfg.config_path/'_proc'
    prune_proc(cache_dir, cfg.nbs_path)
    # the processing is this script's too (`DocsFilters`): a cache older than the script is processed again
    if cache_dir.is_dir() and cache_dir.stat().st_mtime < Path(__file__).stat().st_mtime: force = True
    import importlib, nbdev.serve
    # what `proc_nbs` hands its (spawned) workers for each notebook: a class they import by name, so not this script's `__main__`
    here = sys.modules.get('build_docs') or importlib.import_module('build_docs')
    nbdev.serve.FilterDefaults = here.DocsFilters
    kw = {} if n_workers is None else {'n_workers': n_workers}
    try: cache = proc_nbs(cfg.nbs_path, force=force, **kw)
    except Exception as e:
        msg = str(e).strip() or repr(e)
        raise DocsError(f"nbdev could not process the notebooks (it runs the cells `show_doc` needs: imports and exports):\n{msg}") from e
    return cfg, Path(cache)

def point_website_at(
    website:dict, # the `website:` section of the loaded config, changed in place
    repo:Repo, # the repository to link to
) -> None:
    "Make the repository links of the site (`repo-url`, `repo-branch`, the navbar's GitHub tool) point at `repo`."
    website['repo-url'], website['repo-branch'] = repo.url, repo.branch
    nav = website.get('navbar')
    for t in (nav.get('tools') or []) if isinstance(nav, dict) else []:
        if isinstance(t, dict) and t.get('icon') in ('github', 'gitlab', 'git'): t['href'] = repo.url

def unlisted_pages(site) -> list[str]:
    "The pages of the site that no sidebar lists (they get no previous/next links and no place in the reading order)."
    from smalldocs import layout
    nav = layout.SiteNav(site)
    listed = {id(p) for sb in nav.sidebars for it in sb['items'] for p in it.pages()}
    return sorted(str(p.src) for p in site.pages.values() if id(p) not in listed)

def render(
    cache:Path, # nbdev's `_proc` folder, with `_quarto.yml`
    staging:Path, # an empty folder to build into
    repo:Repo|None=None, # the repository the site links to; None keeps the config's
):
    "Render the processed notebooks with smalldocs into `staging`; return the smalldocs site."
    from smalldocs.config import load
    Site = make_site_class()
    project = load(cache)
    if repo is not None: point_website_at(project.config.setdefault('website', {}), repo)
    site = Site(project, quiet=True)
    site.out = staging.resolve()
    site.build()
    # smalldocs says it ignores nbdev's `output-file`; this build reads it (see `NbdevSite.read`)
    site.warnings = [w for w in site.warnings if not w.endswith(': output-file is not read by smalldocs')
                     and w != f'unknown key {PAGE_TITLES}'] # this build reads it (`NbdevSite.read`)
    site.warnings += [f"{src}: not in the sidebar (website.sidebar in _quarto.yml); add it where a reader should find it"
                      for src in unlisted_pages(site)]
    return site

def finish(site, staging:Path, cache:Path|None=None, repo:Repo|None=None, lib:str='') -> int:
    "Post-process every page, vendor the JavaScript, strip remote font imports; return the number of pages."
    n = 0
    for page in site.pages.values():
        p = staging/page.out
        offset = '../' * (len(page.out.parts) - 1)
        p.write_text(postprocess_page(p.read_text(encoding='utf-8'), offset, repo, lib), encoding='utf-8')
        n += 1
    index = staging/'search.json' # the search snippets of signatures carry the same markdown links
    if index.is_file():
        entries = json.loads(index.read_text(encoding='utf-8'))
        for e in entries if isinstance(entries, list) else []:
            if isinstance(e, dict) and isinstance(e.get('text'), str): e['text'] = MD_LINK.sub(r'\1', e['text'])
        index.write_text(json.dumps(entries, ensure_ascii=False), encoding='utf-8')
    for css in (staging/'site_libs').rglob('*.css'):
        t = css.read_text(encoding='utf-8', errors='replace')
        if CSS_REMOTE_IMPORT.search(t): css.write_text(CSS_REMOTE_IMPORT.sub('', t), encoding='utf-8')
    vendor_into(staging, cache)
    problems = offline_problems(staging)
    if problems: raise DocsError("the site would load these from the network:\n  " + "\n  ".join(problems))
    return n

def _check_out(out:Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out/'site_libs').is_dir())):
        raise DocsError(f"--out {out} exists and is not a built site (it has no site_libs/); it would be replaced, so give another folder")

def build(
    out:Path|None=None, # where the site goes; default the project's doc_path (`_docs`)
    force:bool=False, # process every notebook again
    n_workers:int|None=None, # processes for nbdev's notebook processing
    repo:str|None=None, # the repository to link to (a fork); default $SPARSEFT_DOCS_REPO, else settings.ini's git_url
    branch:str|None=None, # its branch; default $SPARSEFT_DOCS_BRANCH, else settings.ini's branch
):
    "Build the whole site into `out`, replacing what was there only once the new site is complete."
    t0 = time.time()
    from nbdev.config import get_config
    out = Path(out or get_config().doc_path).resolve()
    _check_out(out)
    where = docs_repo(get_config(), repo, branch) # fail fast on a bad address, too
    for name, spec in VENDORS.items(): fetch_package(name, spec) # fail fast, before the slow notebook processing
    cfg, cache = prepare(force, n_workers)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{out.name}.building-', dir=out.parent))
    old = None
    try:
        site = render(cache, staging, where)
        n = finish(site, staging, repo=where, lib=Path(cfg.lib_path).name)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f'.{out.name}.old-', dir=out.parent))
            os.replace(out, old/'site')
        os.replace(staging, out)
    finally:
        if staging.exists(): shutil.rmtree(staging, ignore_errors=True)
        if old is not None: shutil.rmtree(old, ignore_errors=True)
    return site, n, out, time.time() - t0

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', type=Path, help="folder to build the site into (default: the project's doc_path, _docs)")
    p.add_argument('--force', action='store_true', help='process every notebook again, ignoring the _proc cache')
    p.add_argument('--n-workers', type=int, help='processes for the notebook processing (default: the CPU count)')
    p.add_argument('--repo', help="the repository the pages link to (navbar, issues, `source` links), e.g. a fork's "
                   "https://github.com/OWNER/NAME (default: $SPARSEFT_DOCS_REPO, else git_url in settings.ini)")
    p.add_argument('--branch', help='the branch the `source` links read (default: $SPARSEFT_DOCS_BRANCH, else branch in settings.ini)')
    p.add_argument('--warnings', action='store_true', help="print smalldocs' warnings (keys of _quarto.yml it ignores, ...)")
    p.add_argument('--fetch', action='store_true', help='only fill the npm cache with the vendored packages (the one step that needs the network), then exit')
    a = p.parse_args(argv)
    if a.fetch:
        try:
            for n, v in VENDORS.items(): fetch_package(n, v)
        except DocsError as e: print(f"build_docs: {e}", file=sys.stderr); return 1
        print('npm packages cached: ' + ', '.join(f'{n}@{v.version}' for n, v in VENDORS.items()) + f' in {npm_cache()}')
        return 0
    from smalldocs.config import BuildError, ConfigError
    try: site, n, out, dt = build(a.out, a.force, a.n_workers, a.repo, a.branch)
    except DocsError as e:
        print(f"build_docs: {e}", file=sys.stderr); return 1
    except (BuildError, ConfigError) as e:
        print(f"build_docs: smalldocs: {e}", file=sys.stderr); return 1
    pages = sorted(str(pg.out) for pg in site.pages.values())
    broken = [w for w in site.warnings if 'broken link' in w]
    unlisted = [w for w in site.warnings if 'not in the sidebar' in w]
    for w in site.warnings if a.warnings else broken + unlisted: print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {n} page(s) to {out} in {dt:.1f}s: {', '.join(pages)}")
    print(f"{len(site.warnings)} smalldocs warning(s), {len(broken)} broken link(s), {len(unlisted)} page(s) not in the sidebar"
          + ('' if a.warnings else '; --warnings lists them'))
    return 0

if __name__ == '__main__': sys.exit(main())
