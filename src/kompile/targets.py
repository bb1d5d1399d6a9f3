"""Targets, sample weights and class weights per output, on the host.

Each goes through ``structures.place`` (nested like the outputs, flat by output name, by
position, or once for a subtree). Two shortcuts of Keras's live here: a one-output model
takes a bare ``y`` whatever container it returns (the placement rule gives it), and when
some outputs have no loss, ``y`` may hold targets for exactly the outputs that have one, in
output order (a bare array when there is one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .structures import OutputSpec, describe, is_array, per_output, place


def _for_loss_outputs(y: Any, spec: OutputSpec, loss_outputs: Sequence[int]) -> list[Any] | None:
    """``y`` read as targets for the outputs with a loss only, or None when it is not that."""
    if not loss_outputs or len(loss_outputs) == len(spec.names):
        return None
    if is_array(y):
        entries = [y]
    elif isinstance(y, list | tuple) and all(v is None or is_array(v) for v in y):
        entries = list(y)
    else:
        return None
    if len(entries) != len(loss_outputs):
        return None
    out: list[Any] = [None] * len(spec.names)
    for i, v in zip(loss_outputs, entries):
        out[i] = v
    return out


def flatten_targets(y: Any, spec: OutputSpec, argument: str = "y",
                    loss_outputs: Sequence[int] | None = None) -> list[Any]:
    """Targets as one array (or None) per output.

    ``loss_outputs``: the indices of the outputs that have a loss, for the shortcut of
    targets given for exactly those.
    """
    if y is None:
        return [None] * len(spec.names)
    try:
        return per_output(y, spec, argument, broadcast=False, is_leaf=is_array)
    except ValueError as err:
        alt = _for_loss_outputs(y, spec, loss_outputs or ())
        if alt is not None:
            return alt
        with_loss = [spec.names[i] for i in loss_outputs or ()]
        extra = (f" Targets may also be given for exactly the outputs with a loss, "
                 f"{with_loss}, in that order.") if 0 < len(with_loss) < len(spec.names) else ""
        if is_array(y):
            raise ValueError(
                f"`{argument}` is a single array {describe(y)} but the model has outputs "
                f"{list(spec.names)}; give a list (by position) or a dict (by output name)."
                + extra) from None
        raise ValueError(str(err) + extra) from None


def flatten_weights(sample_weight: Any, spec: OutputSpec) -> list[Any]:
    """Sample weights per output: one array applies to every output below where it is."""
    if sample_weight is None:
        return [None] * len(spec.names)
    return per_output(sample_weight, spec, "sample_weight", is_leaf=is_array)


def _class_labels(y: np.ndarray, pred_shape: tuple[int, ...]) -> np.ndarray:
    """Class labels of targets: argmax of one-hot rows, a trailing axis of 1 squeezed,
    sparse labels (rank below the prediction's) as they are."""
    per = y.shape[1:]
    if per and per[-1] > 1 and len(per) >= len(pred_shape):
        return np.argmax(y, axis=-1)
    if per and per[-1] == 1 and len(per) >= len(pred_shape):
        return y[..., 0]
    return y


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two weight arrays of shapes (N,) and (N, T): the shorter spread over trailing axes."""
    if a.ndim < b.ndim:
        a = a.reshape(a.shape + (1,) * (b.ndim - a.ndim))
    elif b.ndim < a.ndim:
        b = b.reshape(b.shape + (1,) * (a.ndim - b.ndim))
    return a * b


def _is_class_map(v: Any) -> bool:
    return isinstance(v, Mapping) and not any(isinstance(x, Mapping) for x in v.values())


def class_weights_to_sample_weights(class_weight: Any, ys: list[Any], spec: OutputSpec,
                                    sample_weights: list[Any]) -> list[Any]:
    """Turn ``class_weight`` into per-sample weights, multiplied into ``sample_weights``."""
    if class_weight is None:
        return sample_weights
    names = list(spec.names)
    if not isinstance(class_weight, Mapping | list | tuple):
        raise TypeError(
            f"`class_weight` must be a dict mapping class index -> weight (a dict of such dicts "
            f"keyed by output name for outputs {names}); received {describe(class_weight)}."
        )
    placement = place(class_weight, spec, "class_weight", is_leaf=_is_class_map)
    for node, _ in placement.items:
        if node is spec.root and spec.multi:
            raise ValueError(
                f"`class_weight` for a model with outputs {names} must be a dict of dicts "
                f"keyed by output name; received class_weight={describe(class_weight)}."
            )
    out = list(sample_weights)
    for i, cw in enumerate(placement.per_output(spec)):
        if cw is None:
            continue
        if not isinstance(cw, Mapping):
            raise TypeError(
                f"`class_weight` must be a dict mapping class index -> weight (a dict of such "
                f"dicts keyed by output name for outputs {names}); received "
                f"{describe(class_weight)}."
            )
        bad = [k for k in cw if isinstance(k, bool) or not isinstance(k, int | np.integer)]
        if bad:
            raise ValueError(
                f"`class_weight` for output '{names[i]}' must map integer class indices to "
                f"weights; received keys {bad} in class_weight={describe(class_weight)}."
            )
        if ys[i] is None:
            raise ValueError(f"`class_weight` for output '{names[i]}' needs targets `y` "
                             f"for that output; the model's outputs are {names}.")
        labels = _class_labels(np.asarray(ys[i]), spec.shapes[i]).astype(np.int64)
        size = int(max([*map(int, cw), int(labels.max(initial=0))])) + 1
        table = np.ones(size, np.float32)
        for k, w in cw.items():
            if int(k) >= 0:
                table[int(k)] = float(w)
        w = table[np.clip(labels, 0, None)]
        if out[i] is not None:
            w = _multiply(np.asarray(out[i], dtype=np.float32), w)
        out[i] = w.astype(np.float32)
    return out
