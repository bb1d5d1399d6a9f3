"""Data of the torch backend: one batch gathered from a feed by index rows, detached
values for metric updates, tensors brought back to NumPy (a host sync), and the refusal of
a module whose variables hold no data (the ``meta`` device).
"""

from __future__ import annotations

from typing import Any

import torch

from ..data.arrays import map_arrays
from . import torch_state


def take(tree: Any, row: torch.Tensor) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.index_select(0, row)
    return map_arrays(lambda a: a.index_select(0, row), tree)


def gather(feed: Any, row: torch.Tensor) -> Any:
    """One batch ``(x, ys, sws)`` from a feed: the samples of one index row."""
    x, ys, sws = feed
    return (take(x, row), [None if y is None else y.index_select(0, row) for y in ys],
            [None if w is None else w.index_select(0, row) for w in sws])


def detach(values: list[Any]) -> list[Any]:
    return [None if v is None else v.detach() for v in values]


def to_numpy(a: Any) -> Any:
    if not isinstance(a, torch.Tensor):
        return a
    a = torch_state.full(a.detach())  # (FSDP: a sharded DTensor gathered whole)
    if a.dtype == torch.bfloat16:  # NumPy has no bfloat16
        a = a.float()
    return a.cpu().numpy()


def refuse_meta(module: torch.nn.Module) -> None:
    """A module on the ``meta`` device has shapes but no values: nothing to train."""
    tensors = [*module.named_parameters(), *module.named_buffers()]
    meta = [name for name, t in tensors if t.device.type == "meta"]
    if meta:
        raise ValueError(
            f"The module's {len(meta)} variable(s) {meta[:3]} are on the 'meta' device: "
            "they have shapes but no values, so there is nothing to train or run. "
            "Materialise the module first, e.g. module.to_empty(device='cpu') and then "
            "initialise or load its weights (module.load_state_dict(...)).")
