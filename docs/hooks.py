"""mkdocs hooks: the course site, built to work offline and from disk (a USB stick, ``file://``).

* ``on_files``: the chapters (``tutorials/NN_*.py``, one source for scripts, notebooks and the site) become pages,
  which mkdocs-jupyter runs and renders; the downloads are added: each chapter as a notebook (``.ipynb``, written by
  jupytext, without outputs) and as its script, and the exercise stubs.
* ``on_page_content``: math becomes MathML, which browsers draw themselves: ``\\( \\)`` and ``\\[ \\]`` of the
  pages (pymdownx.arithmatex) and of the docstrings, and ``$ $``, ``$$ $$``, ``\\( \\)``, ``\\[ \\]`` in the chapters'
  text. A chapter loses the scripts nbconvert adds (MathJax and mermaid, from CDNs) and its inline copy of the
  notebook stylesheet (written once, to ``stylesheets/notebook.css``), and gains its download links.
* ``on_post_page``: the one-page course (``course.md``) gets every chapter, in the order of the navigation.
* ``on_post_build``: the search index is also written as a script, which a page opened from disk can load.
"""
from __future__ import annotations

import html
import json
import posixpath
import re
from pathlib import Path

import jupytext
from bs4 import BeautifulSoup
from latex2mathml.converter import convert
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url

CHAPTER = re.compile(r"^tutorials/(\d\d_\w+)\.py$")
COURSE_PAGE = "course.md"
COURSE_MARK = "<!-- the chapters -->"
NOTEBOOK_CSS = "stylesheets/notebook.css"
#: math in a chapter's text, as Jupyter writes it: $$..$$, \[..\], $..$ (not "$ " nor " $"), \(..\)
TEXT_MATH = re.compile(r"\$\$(?P<d1>.+?)\$\$|\\\[(?P<d2>.+?)\\\]|(?<![\\$\w])\$(?=\S)(?P<i1>[^$]+?)(?<=[^\s\\])\$(?!\w)"
                       r"|\\\((?P<i2>.+?)\\\)", re.S)
#: function names that latex2mathml runs into the next letter ("log s" would read "logs")
FUNCTIONS = re.compile(r"\\(log|exp|max|min|sin|cos|tanh|det|arg)(?=\s*[A-Za-z\\{])")

_notebook_css: list[str] = []          # the notebook stylesheet, as nbconvert inlines it in each chapter
_chapters: dict[str, str] = {}         # src_uri -> the chapter's content, for the one-page course


def tex_to_mathml(tex: str, display: bool) -> str:
    """MathML for a TeX formula (``display``: a formula on its own line)."""
    tex = re.sub(r"\\operatorname\{(\w+)\}", r"\\mathrm{\1}", tex.strip())
    tex = FUNCTIONS.sub(r"\\\1\\,", tex)
    mathml = convert(tex, display="block" if display else "inline")
    mathml = mathml.replace("\\_", "_")          # latex2mathml keeps the backslash of \_ in \text{} and \texttt{}
    mathml = mathml.replace("<math ", f'<math alttext="{html.escape(tex, quote=True)}" ', 1)
    return f'<div class="math-display">{mathml}</div>' if display else mathml


def fragment(markup: str) -> list:
    return list(BeautifulSoup(markup, "html.parser").contents)


def convert_arithmatex(soup: BeautifulSoup) -> None:
    """pymdownx.arithmatex's ``<span class="arithmatex">\\(..\\)</span>`` and ``<div ...>\\[..\\]</div>``."""
    for node in soup.select(".arithmatex"):
        tex = node.get_text()
        display = node.name == "div"
        tex = re.sub(r"^\s*(\\\[|\\\(|\$\$|\$)|(\\\]|\\\)|\$\$|\$)\s*$", "", tex)
        node.replace_with(*fragment(tex_to_mathml(tex, display)))


def convert_text_math(root) -> None:
    """``$..$`` and friends in the text of a chapter's Markdown cells (never in code)."""
    for text in list(root.find_all(string=TEXT_MATH)):
        if text.find_parent(["code", "pre", "script", "style", "math"]):
            continue
        pieces, start = [], 0
        for match in TEXT_MATH.finditer(text):
            pieces.append(html.escape(text[start:match.start()]))
            display = match.group("d1") is not None or match.group("d2") is not None
            tex = next(group for group in match.group("d1", "d2", "i1", "i2") if group is not None)
            pieces.append(tex_to_mathml(tex, display))
            start = match.end()
        pieces.append(html.escape(text[start:]))
        text.replace_with(*fragment("".join(pieces)))


def download_links(page) -> str:
    name = CHAPTER.match(page.file.src_uri).group(1)

    def url(path: str) -> str:
        return get_relative_url(path, page.url)
    return (f'<div class="admonition info downloads"><p class="admonition-title">Run this chapter yourself</p>'
            f'<p>As a notebook: <a href="{url(f"downloads/{name}.ipynb")}" download>{name}.ipynb</a>; '
            f'as a script: <a href="{url(f"downloads/{name}.py")}" download>{name}.py</a>. '
            f'The exercise stubs: <a href="{url("downloads/exercises.py")}" download>exercises.py</a>, checked by '
            f'<code>minirai check</code> (see <a href="{url("exercises.html")}">Exercises</a>).</p></div>')


def clean_chapter(soup: BeautifulSoup, page) -> None:
    """A chapter as nbconvert renders it, without what reaches for a CDN, and with one shared stylesheet."""
    for script in soup.find_all("script"):
        source, body = script.get("src"), script.string or ""
        if source is not None or script.get("type") == "text/x-mathjax-config" or "https://" in body:
            script.decompose()
    css = "\n".join(style.get_text() for style in soup.find_all("style"))
    if not _notebook_css:
        _notebook_css.append(css)
    if css == _notebook_css[0]:
        for style in soup.find_all("style"):
            style.decompose()
        link = soup.new_tag("link", rel="stylesheet", href=get_relative_url(NOTEBOOK_CSS, page.url))
        soup.insert(0, link)
    for cell in soup.select(".jp-RenderedMarkdown"):
        convert_text_math(cell)
    title = soup.find("h1")
    if title is not None:
        title.insert_after(*fragment(download_links(page)))


# -- the hooks ----------------------------------------------------------------------------------------------------
@event_priority(100)      # before mkdocs-jupyter's on_files, which turns the chapters into notebook pages
def on_files(files, config):
    root = Path(config["config_file_path"]).parent
    for chapter in sorted((root / "tutorials").glob("[0-9][0-9]_*.py")):
        files.append(File(f"tutorials/{chapter.name}", str(root), config["site_dir"], config["use_directory_urls"]))
        notebook = jupytext.writes(jupytext.read(chapter), fmt="ipynb")
        files.append(File.generated(config, f"downloads/{chapter.stem}.ipynb", content=notebook))
        # (content, not a path: a file whose path is a chapter's would become a page again)
        files.append(File.generated(config, f"downloads/{chapter.name}", content=chapter.read_text(encoding="utf-8")))
    stubs = (root / "tutorials" / "exercises.py").read_text(encoding="utf-8")
    files.append(File.generated(config, "downloads/exercises.py", content=stubs))
    return files


def on_page_content(html_text, page, config, files):
    soup = BeautifulSoup(html_text, "html.parser")
    convert_arithmatex(soup)
    if CHAPTER.match(page.file.src_uri):
        clean_chapter(soup, page)
        _chapters[page.file.src_uri] = str(soup)
    return str(soup)


def on_post_page(output, page, config):
    if page.file.src_uri != COURSE_PAGE:
        return output
    assert COURSE_MARK in output, f"{COURSE_PAGE} must hold the line {COURSE_MARK}"
    chapters = [item.file.src_uri for item in page_order(config) if CHAPTER.match(item.file.src_uri)]
    parts = []
    for src_uri in chapters:
        name = CHAPTER.match(src_uri).group(1)
        url = src_uri[:-3] + ".html"
        parts.append(f'<section class="course-chapter" id="{name}">'
                     f'{relocate(_chapters[src_uri], name, url, page.url)}</section>')
    return output.replace(COURSE_MARK, "\n".join(parts))


def on_post_build(config):
    site = Path(config["site_dir"])
    if _notebook_css:
        (site / NOTEBOOK_CSS).parent.mkdir(parents=True, exist_ok=True)
        (site / NOTEBOOK_CSS).write_text(_notebook_css[0], encoding="utf-8")
    index = site / "search" / "search_index.json"
    if index.is_file():           # material's search reads search_index.js instead when the page is a file://
        data = json.loads(index.read_text(encoding="utf-8"))
        (site / "search" / "search_index.js").write_text(f"var __index = {json.dumps(data)}", encoding="utf-8")


# -- the one-page course --------------------------------------------------------------------------------------------
_nav: list = []


def on_nav(nav, config, files):
    _nav[:] = nav.pages
    return nav


def page_order(config) -> list:
    return list(_nav)


def relocate(content: str, prefix: str, from_url: str, to_url: str) -> str:
    """A chapter's content moved into the one-page course: ids made unique, relative links still pointing where
    they pointed, and a link to a heading of the chapter kept inside the course page."""
    soup = BeautifulSoup(content, "html.parser")
    for node in soup.find_all(id=True):
        node["id"] = f"{prefix}-{node['id']}"
    for node in soup.find_all("a", href=True):
        href = node["href"]
        if href.startswith("#"):
            node["href"] = f"#{prefix}-{href[1:]}"
        elif not re.match(r"^[a-z]+:", href):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(from_url), href))
            node["href"] = get_relative_url(target, to_url)
    for node in soup.find_all("link", href=True):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(from_url), node["href"]))
        node["href"] = get_relative_url(target, to_url)
    return str(soup)
