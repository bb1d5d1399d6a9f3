"""Several processes must run the same thing: a check at the start of each call.

Under ``jax.distributed`` or ``torchrun`` every process runs the same script, and every
step is a collective: a process with other data (a different length, another batch size),
another model or another compile configuration would wait in a collective its peers never
enter, or silently train on something else. At the start of ``fit``/``evaluate``/
``predict`` each process describes what it is about to run (``facts``); the backend
gathers every process's description (one small collective) and every process raises the
same ``RuntimeError`` naming the first process and the first fact that differ from
process 0's (``disagreement``), instead of hanging.

The descriptions are plain strings (no object addresses), compared by their SHA-256.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .data.arrays import leaves


def _describe(value: Any) -> str:
    """A stable description of a loss/metric/optimizer entry: strings and numbers as they
    are, other objects by class name, containers recursively."""
    if value is None or isinstance(value, str | int | float | bool):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    return type(value).__name__


def facts(model: Any, source: Any) -> dict[str, str]:
    """What this process is about to run, as ``{what: description}``."""
    x = leaves(source.peek_x())
    out = {
        "the number of samples": str(getattr(source, "n", None)),
        "batch_size": str(getattr(source, "batch_size", None)),
        "the input shapes and dtypes": str([(np.shape(a)[1:], str(getattr(a, "dtype", "")))
                                            for a in x]),
        "the distribution": repr(model.distribution),
    }
    cfg = model._config
    out["the compile configuration"] = "not compiled" if cfg is None else _describe(
        [cfg.optimizer, cfg.loss, cfg.metrics, cfg.loss_weights, cfg.weighted_metrics,
         cfg.steps_per_execution, cfg.jit_compile, cfg.run_eagerly])
    return out


def digests(described: dict[str, str]) -> np.ndarray:
    """``(len(described), 16)`` uint8: each description's SHA-256 prefix, in key order."""
    rows = [np.frombuffer(hashlib.sha256(f"{k}={v}".encode()).digest()[:16], np.uint8)
            for k, v in sorted(described.items())]
    return np.stack(rows) if rows else np.zeros((0, 16), np.uint8)


def disagreement(gathered: np.ndarray, described: dict[str, str], me: int) -> str | None:
    """The error message when the processes' digests (``(processes, facts, 16)``) differ,
    else None. ``described`` and ``me`` are this process's facts and index."""
    names = sorted(described)
    for p in range(1, gathered.shape[0]):
        for i, name in enumerate(names):
            if not np.array_equal(gathered[p, i], gathered[0, i]):
                return (f"Process {p} disagrees with process 0 on {name}; every process must "
                        f"run the same script on the same data and model (this is process "
                        f"{me}: {name} = {described[name]}). Stopping every process instead "
                        "of waiting in a collective.")
    return None
