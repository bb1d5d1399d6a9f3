"""MkDocs hook: the tables of optimizers, losses, metrics and callbacks, built from kompile's
registries when the site is built, so the documentation cannot drift from the code.

A page containing ``<!-- registry-tables -->`` gets the tables in its place.
"""

from __future__ import annotations

import html
import inspect
import os
import re
import sys
from typing import Any

# the checkout's kompile, even where another copy is installed
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

MARKER = "<!-- registry-tables -->"


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    first = doc.split("\n\n")[0].replace("\n", " ").strip().replace("``", "`")
    # a pipe ends a table cell, except inside a code span (where a backslash would show);
    # docstrings' ``double`` backticks are one code span, as Markdown reads them
    parts = first.split("`")
    return "`".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(parts))


def _code(text: str) -> str:
    """Inline code that may wrap after ``.``, ``_`` and ``=`` when its column is narrow
    (``<wbr>``: no character is added, so a copied name stays whole)."""
    body = html.escape(text, quote=False)
    return "<code>" + re.sub(r"([._=])", r"\1<wbr>", body) + "</code>"


def _names(names: list[str]) -> str:
    return ", ".join(_code(f'"{n}"') for n in names)


def _defaults(cls: Any, skip: tuple[str, ...] = ()) -> str:
    """The constructor's parameters: required ones first, in bold, then ``name=default``."""
    params = [p for p in inspect.signature(cls.__init__).parameters.values()
              if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    required = [f"<strong>{_code(p.name)}</strong> (required)" for p in params
                if p.default is p.empty]
    shown = [_code(f"{p.name}={p.default!r}") for p in params
             if p.default is not inspect.Parameter.empty
             and not (p.name in skip and p.kind is inspect.Parameter.KEYWORD_ONLY)
             and not (p.name in skip and p.name in ("reduction", "name", "dtype"))]
    return ", ".join(required + shown)


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
        out.append(f"| {_names([name])} | {_code('kp.optimizers.' + cls.__name__)} | "
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
        out.append(f"| {_names(names)} | {_code('kp.losses.' + cls_name)} | "
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
        out.append(f"| {_names(names)} | {_code('kp.metrics.' + cls.__name__)} | "
                   f"{opts or '-'} | {_summary(cls)} |")
    f1 = _code('kp.metrics.F1Score(average="macro")')
    out.append(f"| {_names(['f1_score'])} | {f1} | "
               f"{_defaults(metrics.F1Score, ('name', 'dtype'))} | {_summary(metrics.F1Score)} |")
    for kind in sorted(set(metrics.AUTO_NAMES.values())):
        names = sorted(n for n, k in metrics.AUTO_NAMES.items() if k == kind)
        out.append(f"| {_names(names)} | the binary, categorical or sparse `{kind}` metric | - "
                   "| chosen per output from the output's loss, else from the shapes |")
    for cls_name in metrics.__all__:  # classes without a name: give the class to compile
        cls = getattr(metrics, cls_name)
        if (isinstance(cls, type) and issubclass(cls, metrics.Metric) and cls not in seen
                and cls is not metrics.AutoMetric and cls is not metrics.Metric):
            opts = _defaults(cls, ("name", "dtype"))
            out.append(f"| (the class) | {_code(f'kp.metrics.{cls_name}')} | {opts or '-'} | "
                       f"{_summary(cls)} |")
    exact = metrics.Accuracy  # by class only: the name "accuracy" picks a variant per output
    out.append(f"| (class only) | {_code('kp.metrics.Accuracy')} | - | {_summary(exact)} |")
    out += ["", "## Callbacks", "", "| class | arguments | what it does |", "|---|---|---|"]
    for name in kp.callbacks.__all__:
        cls = getattr(kp.callbacks, name)
        if not isinstance(cls, type) or name in ("Callback", "CallbackList", "LazyLogs",
                                                 "History"):
            continue
        out.append(f"| {_code(f'kp.callbacks.{name}')} | {_defaults(cls) or '-'} | "
                   f"{_summary(cls)} |")
    return "\n".join(out) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, tables())
    return markdown
