"""Print the lowest versions pyproject.toml declares for the JAX backend and the core
dependencies, one ``name==version`` a line (``make test-min`` installs exactly these).

jaxlib is not declared (jax requires it); it gets jax's version.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lowest() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = []
    for spec in project["dependencies"] + project["optional-dependencies"]["jax"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)", spec.replace(" ", ""))
        if match is None:
            raise SystemExit(f"{spec!r} in pyproject.toml has no '>=' lower bound")
        name, version = match.groups()
        pins.append(f"{name}=={version}")
        if name == "jax":
            pins.append(f"jaxlib=={version}")
    return pins


if __name__ == "__main__":
    print("\n".join(lowest()))
