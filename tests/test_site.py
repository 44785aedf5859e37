"""The course site, built and read in a real browser from disk, as a student with a copy on a USB stick would.

The site is built as CI builds it (``mkdocs build --strict``, the chapters run in quick mode), or taken from
``MINIRAI_SITE_DIR`` when a build is already there (``.ci/run`` builds it once). Every page is opened from
``file://`` in headless Chromium with its scripts running, and the test fails on

* a docstring's Sphinx role left as text (``:func:`fit```) instead of a link;
* raw TeX in the rendered text outside code (``\\frac``, ``\\sum``, ``$$``, ``\\(``, a ``$..$`` left over, ...);
* a link, stylesheet, script or image that resolves to a folder or to a missing file, or an anchor that is not there;
* any request to another host (script, stylesheet, font, image, search index): they are all refused and listed;
* a path of the machine that built the site, in the text or in an output (the repository, the build folder,
  Python's ``site-packages``, the home folder);
* a chapter's code or output that wraps (inside a number) instead of scrolling, or a stray ``Out[n]`` text;
* search that finds nothing when the site is opened from disk.

It saves screenshots of a chapter and of a concept page at 1280 and 390 px, in a folder it prints.

Without Chromium (Debian's ``chromium``) or the ``playwright`` package (the ``docs`` extra) the test is skipped,
saying why; ``.ci/run`` sets ``MINIRAI_REQUIRE_BROWSER=1``, which turns that skip into a failure.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = os.environ.get("MINIRAI_REQUIRE_BROWSER") == "1"
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: TeX a reader must never see: commands, and the delimiters around formulas
RAW_TEX = re.compile(r"\\(?:frac|sum|partial|lambda|mathrm|mathbb|text|texttt|begin|end|left|right|hat|sqrt|"
                     r"cdot|leftarrow|operatorname|tfrac|top|lVert|rVert|underbrace|alpha|beta|eta|mu|sigma|"
                     r"varepsilon|Delta|theta|odot|qquad|in)\b|\$\$|\\\(|\\\)|\\\[|\\\]|(?<![\w$])\$[^$\s][^$\n]{0,80}\$")

#: a Sphinx role of a docstring, left as text instead of a link or code
RAW_ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|exc|obj):`")


def machine_paths(site: Path) -> re.Pattern:
    """Paths of the machine that built the site: the repository, the build folder, Python's own, the home."""
    places = {str(ROOT), str(site.parent), sys.prefix, sys.base_prefix, str(Path.home()),
              os.environ.get("MINIRAI_TUTORIAL_OUT", str(ROOT))}
    places = sorted((place for place in places if len(place) > 4), key=len, reverse=True)
    return re.compile("|".join([*(re.escape(place) for place in places), r"site-packages", r"dist-packages"]))
WIDTHS = (1280, 390)
#: page -> anchor (empty: the top) of the screenshots: chapter 4's table of update rules, the RAI concept page's
#: gradients (a ``cases`` formula, the widest), the API entry of ``Linear`` (its docstring's formulas)
SCREENSHOTS = {"tutorials/04_optimizers.html": "",
               "concepts/rai.html": "#the-gradients",
               "api.html": "#minirai.layers.Linear"}


def browser_or_skip():
    """playwright's sync API, or a skip (a failure in CI) saying what is missing."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is not installed (pip install -e '.[docs]')"
    if reason is None and CHROMIUM is None:
        reason = "no Chromium on this machine (apt-get install chromium)"
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"MINIRAI_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    browser_or_skip()
    given = os.environ.get("MINIRAI_SITE_DIR")
    if given:
        assert (Path(given) / "index.html").is_file(), f"MINIRAI_SITE_DIR={given} holds no built site"
        return Path(given)
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, MINIRAI_TUTORIAL_QUICK="1", MINIRAI_TUTORIAL_OUT=str(out / "tutorial-out"),
               NO_MKDOCS_2_WARNING="1", MINIRAI_DOCS_CACHE="false")
    env.pop("MPLBACKEND", None)                  # the chapters' notebooks choose their own (inline) backend
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out / "site")], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-5000:]
    return out / "site"


@pytest.fixture(scope="module")
def screenshot_dir(request) -> Path:
    folder = Path(os.environ.get("MINIRAI_SITE_SCREENSHOTS") or tempfile.mkdtemp(prefix="minirai-site-"))
    folder.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\nsite screenshots: {folder}")
    return folder


def local_path(url: str) -> Path | None:
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


#: run in each page: what the checks read (text outside code, links, code blocks' layout, stray outputs)
READ_PAGE = r"""() => {
  const article = document.querySelector("article") || document.body;
  const prose = article.cloneNode(true);
  prose.querySelectorAll("pre, code, .highlight, .jp-InputArea, .jp-OutputArea, .clipboard-copy-txt, script, style")
       .forEach((node) => node.remove());
  const wraps = [];
  for (const pre of document.querySelectorAll(".jupyter-wrapper pre")) {
    const style = getComputedStyle(pre);
    if (style.whiteSpace !== "pre") wraps.push(`white-space ${style.whiteSpace}: ${pre.textContent.slice(0, 60)}`);
    if (pre.scrollWidth > pre.clientWidth + 1) {
      let node = pre, scrolls = false;
      while (node && node !== document.body) {
        if (["auto", "scroll"].includes(getComputedStyle(node).overflowX)) { scrolls = true; break; }
        node = node.parentElement;
      }
      if (!scrolls) wraps.push(`cut, no scrolling: ${pre.textContent.slice(0, 60)}`);
    }
  }
  const stray = [...document.querySelectorAll(".jp-OutputArea-child")]
    .filter((child) => /Out\[\d+\]/.test((child.querySelector(".jp-OutputPrompt") || {}).textContent || "")
                       && child.querySelector('[data-mime-type="text/plain"]'))
    .map((child) => child.textContent.trim().slice(0, 120));
  return {
    prose: prose.textContent,
    text: document.body.textContent,
    links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
    resources: [...document.querySelectorAll("link[href], script[src], img[src]")]
      .map((node) => node.href || node.src),
    ids: [...document.querySelectorAll("[id]")].map((node) => node.id),
    math: document.querySelectorAll("math").length,
    wraps: wraps,
    stray: stray,
  };
}"""


def test_every_page_works_from_disk(site, screenshot_dir):
    sync_playwright = browser_or_skip()
    # (404.html is for a web server, which links it from the site's root: from disk there is no server to show it)
    pages = sorted(path for path in site.rglob("*.html") if path.name != "404.html")
    machine_path = machine_paths(site)
    assert len(pages) >= 20, pages
    problems: list[str] = []
    outside: list[str] = []
    found: dict[Path, dict] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def refuse(route):           # nothing leaves the machine; every request to a host is a failure
            outside.append(route.request.url)
            route.abort()
        context.route(re.compile(r"^(https?|wss?|ftp)://"), refuse)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        for path in pages:
            name = path.relative_to(site).as_posix()
            errors.clear()
            page.goto(path.as_uri(), wait_until="load")
            seen = found[path] = page.evaluate(READ_PAGE)
            for match in RAW_TEX.finditer(seen["prose"]):
                problems.append(f"{name}: raw TeX {seen['prose'][max(0, match.start() - 40):match.end() + 40]!r}")
            for match in RAW_ROLE.finditer(seen["text"]):        # a docstring's :func:`fit`, not resolved
                problems.append(f"{name}: raw role {seen['text'][max(0, match.start() - 40):match.end() + 40]!r}")
            for match in machine_path.finditer(seen["text"]):
                problems.append(f"{name}: machine path {seen['text'][max(0, match.start() - 60):match.end() + 60]!r}")
            problems += [f"{name}: {wrap}" for wrap in seen["wraps"]]
            problems += [f"{name}: stray output {stray!r}" for stray in seen["stray"]]
            problems += [f"{name}: script error {error}" for error in errors]
        # links: every local target is a file (not a folder), and its anchor exists
        for path, seen in found.items():
            name = path.relative_to(site).as_posix()
            for url in seen["links"] + seen["resources"]:
                target = local_path(url)
                if target is None:
                    continue
                if not target.is_file():
                    problems.append(f"{name}: link to {'a folder' if target.is_dir() else 'nothing'}: {url}")
                    continue
                anchor = unquote(urlsplit(url).fragment)
                if anchor and target.suffix == ".html":
                    ids = found[target]["ids"] if target in found else []
                    if anchor not in ids:
                        problems.append(f"{name}: link to a missing anchor: {url}")
        # math is drawn as MathML where the pages write formulas
        for name in ("concepts/rai.html", "concepts/backward.html", "tutorials/04_optimizers.html",
                     "tutorials/05_softmax_multiclass.html", "course.html"):
            if found[site / name]["math"] < 3:
                problems.append(f"{name}: {found[site / name]['math']} formulas drawn")
        # search, from disk
        page.goto((site / "index.html").as_uri(), wait_until="load")
        try:
            page.locator("input.md-search__input").fill("Rprop", timeout=5_000)
            page.locator(".md-search-result__item").first.wait_for(timeout=15_000)
        except Exception as error:  # noqa: BLE001 - playwright's TimeoutError, said as a problem
            problems.append(f"search from disk found nothing for 'Rprop': {error}")
        # screenshots, as a reader sees the page
        problems += [f"{name}: no {anchor} to take a screenshot of" for name, anchor in SCREENSHOTS.items()
                     if anchor and anchor[1:] not in found[site / name]["ids"]]
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for name, anchor in SCREENSHOTS.items():
                page.goto((site / name).as_uri() + anchor, wait_until="load")
                page.wait_for_timeout(400)           # the header's title fades to the page's on scrolling
                label = anchor[1:].replace(".", "-") or "top"
                page.screenshot(path=str(screenshot_dir / f"{Path(name).stem}-{label}-{width}.png"))
        browser.close()
    problems += [f"request to another host: {url}" for url in sorted(set(outside))]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:80])


def test_the_search_index_holds_no_source_code(site):
    index = (site / "search" / "search_index.json").read_text(encoding="utf-8")
    assert "def forward(self, x" not in index and "self.grads[\"W\"][...]" not in index
    assert (site / "search" / "search_index.js").is_file()


def test_each_chapter_offers_its_notebook_and_the_stubs(site):
    import json
    for chapter in sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py")):
        page = (site / "tutorials" / f"{chapter.stem}.html").read_text(encoding="utf-8")
        for download in (f"{chapter.stem}.ipynb", chapter.name, "exercises.py"):
            assert f'href="../downloads/{download}"' in page, (chapter.name, download)
        notebook = json.loads((site / "downloads" / f"{chapter.stem}.ipynb").read_text(encoding="utf-8"))
        assert notebook["nbformat"] == 4 and len(notebook["cells"]) > 5
    assert (site / "downloads" / "exercises.py").read_text(encoding="utf-8") == \
        (ROOT / "tutorials" / "exercises.py").read_text(encoding="utf-8")
    course = (site / "course.html").read_text(encoding="utf-8")
    assert course.count('class="course-chapter"') == len(list((ROOT / "tutorials").glob("[0-9][0-9]_*.py")))


def test_the_page_checks_find_what_they_look_for():
    """The patterns above, on text a broken page would show (no browser needed)."""
    for raw in (r"\[ L = L_y(o_K, y) + \lambda \sum_{s=1}^{K} \]", r"$$p \leftarrow p$$", r"the gap \(o_{s-1}\)",
                r"with \frac{2}{N}", "mean $o_{s-1} - Z_s$ at a cut"):
        assert RAW_TEX.search(raw), raw
    for fine in ("∂L/∂Z_s = grad_tables_as_input + grad_tables_as_target", "costs 5 $ a month", "p ← p − η g"):
        assert not RAW_TEX.search(fine), fine
    assert RAW_ROLE.search("see :func:`minirai.train.fit`") and not RAW_ROLE.search("see fit")
    paths = machine_paths(Path("/tmp/some-build/site"))
    assert paths.search(f"figures written to {ROOT}/tutorial-out") and paths.search("/usr/lib/python3/site-packages/x")
    assert not paths.search("figures written: 01_landscape.png, in tutorial-out")


def test_docstrings_keep_their_layout_in_the_api_reference():
    """docs/griffe_roles.py: an indented block under a line of text stays a block (its ``literal`` marks dropped),
    a list starts where the docstring starts one, and a reST title becomes a bold line."""
    pytest.importorskip("griffe")
    import importlib.util
    spec = importlib.util.spec_from_file_location("griffe_roles", ROOT / "docs" / "griffe_roles.py")
    roles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(roles)
    text = ("Backward, with dy = dL/dy of shape (N, D_out):\n"
            "    dW = x^T @ dy          (D_in, D_out)\n"
            "    b = -``input_mean`` · Σ_rows W\n"
            "Options:\n"
            "- one\n"
            "- two\n"
            "Conventions\n"
            "-----------\n"
            "Text.")
    out = roles.markdown_layout(text).splitlines()
    assert out[:4] == ["Backward, with dy = dL/dy of shape (N, D_out):", "", "    dW = x^T @ dy          (D_in, D_out)",
                       "    b = -input_mean · Σ_rows W"]
    assert out[out.index("Options:") + 1] == "" and "- one" in out and "**Conventions**" in out
