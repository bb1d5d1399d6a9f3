"""Griffe extension (mkdocstrings): Google-style ``Example:`` sections render as code.

Griffe parses ``Examples:`` (plural) into highlighted ``>>>`` code blocks but reads the
singular ``Example:`` as an admonition whose text is Markdown, where ``>>>`` prompts become
nested blockquotes and ``__init__`` turns bold. kompile's docstrings say ``Example:`` (as
Keras's do); this extension renames the section header before griffe parses it.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

_HEADER = re.compile(r"^(\s*)Example:\s*$", re.M)


class ExampleSections(Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        doc = getattr(obj, "docstring", None)
        if doc is not None and "Example:" in doc.value:
            doc.value = _HEADER.sub(r"\1Examples:", doc.value)
