"""The documentation site renders: built with mkdocs (as ``make docs`` does), its HTML has

- no ``>>>`` prompt outside a code block (a docstring example rendered as text),
- every ``Returns:`` section as one entry (not a multi-line description split into items),
- every registry name, aliases included, in the reference tables, and each callback's
  required arguments there,
- nothing loaded from the network (highlighting and search work offline).

Skipped where mkdocs is not installed (it is in the project's environment: the docs extra).
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")

ROOT = Path(__file__).resolve().parent.parent
CODE_TAGS = {"pre", "code"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                           "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


class _Page(HTMLParser):
    """Text outside code blocks, the items of each Returns section, and the table cells."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.code = 0
        self.quote = 0
        self.nested_quotes = 0  # markdown turns ">>> " lines into nested blockquotes
        self.prose: list[str] = []
        self.returns: list[int] = []  # the number of items of each Returns: section
        self._th = ""
        self._in_th = False
        self._returns_depth: int | None = None  # <ul> depth of the open Returns list
        self._ul = 0
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in CODE_TAGS:
            self.code += 1
        if tag == "blockquote":
            self.quote += 1
            self.nested_quotes += self.quote > 1
        if tag == "th":
            self._in_th, self._th = True, ""
        if tag == "ul":
            self._ul += 1
            if self._th == "Returns:" and self._returns_depth is None:
                self._returns_depth = self._ul
                self.returns.append(0)
        if tag == "li" and self._returns_depth == self._ul:
            self.returns[-1] += 1
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag in CODE_TAGS:
            self.code -= 1
        if tag == "blockquote":
            self.quote -= 1
        if tag == "th":
            self._in_th = False
        if tag == "ul":
            if self._returns_depth == self._ul:
                self._returns_depth, self._th = None, ""
            self._ul -= 1
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._in_th:
            self._th += data.strip()
        if not self.code:
            self.prose.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if p.name not in ("404.html", "search.html"))


def test_no_prompt_outside_code_blocks(site):
    bad = []
    for path in _pages(site):
        page = _parse(path)
        text = " ".join(page.prose)
        if page.nested_quotes:
            bad.append(f"{path.relative_to(site)}: {page.nested_quotes} nested blockquotes")
        if "<strong>init</strong>" in path.read_text(encoding="utf-8"):
            bad.append(f"{path.relative_to(site)}: __init__ rendered as bold 'init'")
        if ">>>" in text:
            at = text.index(">>>")
            bad.append(f"{path.relative_to(site)}: ...{text[max(0, at - 80):at + 80]!r}")
    assert not bad, "a >>> prompt rendered as text:\n" + "\n".join(bad)


def test_returns_sections_are_one_entry(site):
    api = sorted((site / "api").rglob("*.html"))
    assert api
    counts = {str(p.relative_to(site)): _parse(p).returns for p in api}
    assert any(counts.values()), "no Returns section found: the HTML layout changed"
    split = {page: c for page, c in counts.items() if any(n != 1 for n in c)}
    assert not split, f"Returns sections with several items: {split}"


def test_reference_tables_name_everything(site):
    from kompile import callbacks, losses, metrics, optimizers

    page = _parse(site / "reference-tables.html")
    text = html.unescape(" ".join(page.cells))
    names = (set(optimizers.OPTIMIZERS.names()) | set(losses.LOSSES.names())
             | set(metrics.METRICS.names()) | set(metrics.AUTO_NAMES) | {"f1_score"})
    missing = sorted(n for n in names if f'"{n}"' not in text)
    assert not missing, f"registry names missing from the reference tables: {missing}"
    import inspect

    for name in callbacks.__all__:
        cls = getattr(callbacks, name)
        if not isinstance(cls, type) or name in ("Callback", "CallbackList", "LazyLogs",
                                                 "History"):
            continue
        row = next((c for c in page.cells if f"kp.callbacks.{name}" == c.strip()), None)
        assert row is not None, f"kp.callbacks.{name} has no row"
        cells = page.cells[page.cells.index(row) + 1]
        required = [p.name for p in inspect.signature(cls.__init__).parameters.values()
                    if p.name != "self" and p.default is p.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        for arg in required:
            assert arg in cells, f"kp.callbacks.{name}'s required {arg!r} is not in its row"


def test_nothing_loaded_from_the_network(site):
    for path in _pages(site) + [site / "search.html"]:
        text = path.read_text(encoding="utf-8")
        for tag in ("<script src=\"http", "<link rel=\"stylesheet\" href=\"http"):
            assert tag not in text, f"{path.relative_to(site)} loads {tag}... from the network"
    assert (site / "search" / "search_index.js").exists()  # search from file://
    assert (site / "index.html").exists() and not (site / "reference-tables").is_dir()
