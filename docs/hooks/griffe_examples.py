"""Griffe extension (mkdocstrings): Google-style ``Example:`` sections render as code.

Griffe parses ``Examples:`` (plural) into highlighted ``>>>`` code blocks but reads the
singular ``Example:`` as an admonition whose text is Markdown, where ``>>>`` prompts become
nested blockquotes and ``__init__`` turns bold. kompile's docstrings say ``Example:`` (as
Keras's do); this extension renames the section header before griffe parses it.

It also reads ``Args:`` on a docstring's first line (some ``__init__`` docstrings
start so): once cleaned, the entries below it are no longer indented under the header,
so griffe showed them as one paragraph.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

_HEADER = re.compile(r"^(\s*)Example:\s*$", re.M)
_FIRST_LINE_SECTION = re.compile(r"\A(Args|Arguments|Parameters):\n(?=\S)")


class ExampleSections(Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        doc = getattr(obj, "docstring", None)
        if doc is None:
            return
        if "Example:" in doc.value:
            doc.value = _HEADER.sub(r"\1Examples:", doc.value)
        match = _FIRST_LINE_SECTION.match(doc.value)
        if match:
            body = doc.value[match.end():].split("\n")
            doc.value = match.group(0) + "\n".join("    " + line if line else line
                                                   for line in body)
