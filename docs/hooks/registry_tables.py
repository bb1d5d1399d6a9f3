"""MkDocs hook: the tables of optimizers, losses, metrics and callbacks, built from kompile's
registries when the site is built, so the documentation cannot drift from the code.

A page containing ``<!-- registry-tables -->`` gets the tables in its place.
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any

# the checkout's kompile, even where another copy is installed
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

MARKER = "<!-- registry-tables -->"


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    first = doc.split("\n\n")[0].replace("\n", " ").strip()
    return first.replace("|", "\\|")


def _names(names: list[str]) -> str:
    return ", ".join(f'`"{n}"`' for n in names)


def _defaults(cls: Any, skip: tuple[str, ...] = ()) -> str:
    params = inspect.signature(cls.__init__).parameters.values()
    shown = [f"`{p.name}={p.default!r}`" for p in params
             if p.name != "self" and p.default is not inspect.Parameter.empty
             and not (p.name in skip and p.kind is inspect.Parameter.KEYWORD_ONLY)
             and not (p.name in skip and p.name in ("reduction", "name", "dtype"))]
    return ", ".join(shown)


def tables() -> str:
    import kompile as kp
    from kompile import losses, metrics, optimizers
    from kompile.optimizers.base import COMMON

    common = ", ".join(f"`{k}={optimizers.base.COMMON_DEFAULTS[k]!r}`" for k in COMMON)
    out = ["## Optimizers", "",
           "Names are case-insensitive. Defaults are Keras's. Every optimizer also takes "
           f"{common} (keyword-only; see Training options), and has the method "
           "`exclude_from_weight_decay(var_list=None, var_names=None)`. A learning rate is a "
           "float, a schedule, a function `step -> lr` or a function of no argument.", "",
           "| name | class | defaults | notes |", "|---|---|---|---|"]
    for name in optimizers.OPTIMIZERS.names():
        cls = optimizers.OPTIMIZERS.get(name)
        out.append(f"| {_names([name])} | `kp.optimizers.{cls.__name__}` | "
                   f"{_defaults(cls, COMMON)} | {_summary(cls)} |")
    out += ["", "## Learning-rate schedules", "",
            "| class | arguments | what it computes |", "|---|---|---|"]
    for name in optimizers.schedules.SCHEDULES.names():
        cls = optimizers.schedules.SCHEDULES.get(name)
        out.append(f"| `kp.optimizers.schedules.{cls.__name__}` | "
                   f"{_defaults(cls, ('name',)) or '-'} | {_summary(cls)} |")
    out += ["", "## Losses", "",
            "Names are exact; aliases are listed. Every loss class also takes `reduction` and "
            "`name`.", "",
            "| names | class | options | what it computes |", "|---|---|---|---|"]
    for cls_name, cls in losses.LOSS_CLASSES.items():
        names = [n for n in losses.LOSSES.names() if losses.LOSSES.get(n) is cls]
        names.sort(key=lambda n: (n != cls.fn.__name__, n))
        opts = _defaults(cls, ("reduction", "name"))
        out.append(f"| {_names(names)} | `kp.losses.{cls_name}` | "
                   f"{opts or '-'} | {_summary(cls)} |")
    out += ["", "## Metrics", "",
            "`\"accuracy\"`/`\"acc\"` and `\"crossentropy\"`/`\"ce\"` pick the binary, "
            "categorical or sparse variant per output (from the output's loss, else from the "
            "shapes). `\"f1_score\"` means `F1Score(average=\"macro\")`.", "",
            "| names | class | options | what it reports |", "|---|---|---|---|"]
    seen = set()
    for name in metrics.METRICS.names():
        cls = metrics.METRICS.get(name)
        if cls in seen:
            continue
        seen.add(cls)
        names = sorted(n for n in metrics.METRICS.names() if metrics.METRICS.get(n) is cls)
        opts = _defaults(cls, ("name", "dtype"))
        out.append(f"| {_names(names)} | "
                   f"`kp.metrics.{cls.__name__}` | {opts or '-'} | {_summary(cls)} |")
    exact = metrics.Accuracy  # by class only: the name "accuracy" picks a variant per output
    out.append(f"| (class only) | `kp.metrics.Accuracy` | - | {_summary(exact)} |")
    out += ["", "## Callbacks", "", "| class | arguments | what it does |", "|---|---|---|"]
    for name in kp.callbacks.__all__:
        cls = getattr(kp.callbacks, name)
        if not isinstance(cls, type) or name in ("Callback", "CallbackList", "LazyLogs",
                                                 "History"):
            continue
        out.append(f"| `kp.callbacks.{name}` | {_defaults(cls) or '-'} | {_summary(cls)} |")
    return "\n".join(out) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, tables())
    return markdown


DIFFERENCES = "<!-- keras-differences -->"
README_HEADING = "### Where kompile deliberately differs from Keras"


def differences_table(readme_path: str) -> str:
    """The README's table of deliberate differences from Keras (one source for both)."""
    with open(readme_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = lines.index(README_HEADING) + 1
    table = []
    for line in lines[start:]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    return "\n".join(table) + "\n"


def _differences_hook(markdown: str, config: Any) -> str:
    if DIFFERENCES in markdown:
        readme = os.path.join(os.path.dirname(config["config_file_path"]), "README.md")
        markdown = markdown.replace(DIFFERENCES, differences_table(readme))
    return markdown


_tables_hook = on_page_markdown


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: F811
    return _differences_hook(_tables_hook(markdown, page, config, files), config)
