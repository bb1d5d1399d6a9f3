"""Every code example of the documentation runs: the ```python blocks of docs/*.md (each
page's blocks in order, in one namespace, as a reader would paste them) and the examples
in the docstrings of the kompile package (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import kompile

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").rglob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _modules() -> list[str]:
    names = ["kompile"]
    for info in pkgutil.walk_packages(kompile.__path__, "kompile."):
        if ".backends." in info.name or info.name.endswith(".backends"):
            continue  # no user-facing examples; importing torch_ddp needs torch.distributed
        names.append(info.name)
    return names


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch):
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict = {"__name__": "__docs__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page.name}[block {i + 1}]", "exec"), namespace)
        except Exception as err:
            raise AssertionError(f"{page.relative_to(ROOT)}, python block {i + 1} failed: "
                                 f"{type(err).__name__}: {err}") from err


@pytest.mark.parametrize("module", _modules())
def test_docstring_examples_run(module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(mod, module, globs={}):
        if test.examples and test.name.split(".")[0] == "kompile":
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module}"


def test_every_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in PAGES:
        rel = page.relative_to(ROOT / "docs").as_posix()
        if not rel.startswith("hooks/"):
            assert rel in nav, f"docs/{rel} is not in mkdocs.yml's nav"
