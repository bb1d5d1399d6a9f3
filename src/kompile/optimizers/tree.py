"""Walking an optax state (nested tuples and NamedTuples): find a node, replace it.

Used by the optimizer specs to read and set the learning rate kept in the state
(``base.py``) and the weights' moving average (``averaging.py``). Imports nothing.
"""

from __future__ import annotations

from typing import Any


def find(state: Any, test: Any) -> Any:
    """The first node of a (nested tuple) optax state that passes ``test``, or None."""
    if test(state):
        return state
    for child in state if isinstance(state, tuple) else ():
        if (found := find(child, test)) is not None:
            return found
    return None


def replace(state: Any, node: Any, new: Any) -> Any:
    """``state`` with ``node`` (found by identity) replaced by ``new``."""
    if state is node:
        return new
    if not isinstance(state, tuple):
        return state
    items = [replace(child, node, new) for child in state]
    return type(state)(*items) if hasattr(state, "_fields") else tuple(items)
