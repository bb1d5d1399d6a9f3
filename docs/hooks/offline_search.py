"""MkDocs hook: search that works from the file system.

The search plugin's page loads ``search_index.json`` in a web worker, which browsers refuse
for ``file://`` pages. After the build this hook writes the same index as a script,
``search/search_index.js`` (``window.KOMPILE_SEARCH_INDEX = {...}``), which
``js/file-search.js`` loads with a ``<script>`` tag when the site is opened from the disk.
"""

from __future__ import annotations

import os
from typing import Any


def on_post_build(config: Any, **kwargs: Any) -> None:
    folder = os.path.join(config["site_dir"], "search")
    source = os.path.join(folder, "search_index.json")
    if not os.path.exists(source):
        return
    with open(source, encoding="utf-8") as f:
        index = f.read()
    with open(os.path.join(folder, "search_index.js"), "w", encoding="utf-8") as f:
        f.write("window.KOMPILE_SEARCH_INDEX = " + index + ";\n")
