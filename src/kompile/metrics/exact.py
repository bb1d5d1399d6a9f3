"""Keras's ``Accuracy``: how often predictions equal targets exactly.

Unlike ``"accuracy"`` in ``compile(metrics=[...])`` (resolved per output to binary,
categorical or sparse accuracy from the loss and shapes), this compares the values as they
are: it suits integer class predictions or already-thresholded outputs.
"""

from __future__ import annotations

from typing import Any

from .. import ops
from ..ops import namespace
from .base import MeanMetricWrapper


def accuracy(y_true: Any, y_pred: Any) -> Any:
    """How often ``y_pred`` equals ``y_true`` exactly (Keras's ``keras.metrics.accuracy``).

    A trailing axis of size 1 on one side only is dropped first (Keras's
    ``squeeze_or_expand_to_same_rank``).

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        1.0 where equal, else 0.0, per element (a mean metric averages them per sample,
        weighting by element weights where those are given).
    """
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    y_pred = ops.as_float(xp, y_pred, like=y_pred)
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        y_pred = y_pred[..., 0]
    return xp.astype(y_true == y_pred, xp.float32)


class Accuracy(MeanMetricWrapper):
    """How often predictions equal targets exactly (Keras's ``keras.metrics.Accuracy``).

    The string ``"accuracy"`` in ``compile(metrics=...)`` is not this class: it picks
    binary, categorical or sparse categorical accuracy per output. Use this class for
    outputs that already are class ids or 0/1 values. Sample weights apply when it is given
    in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"accuracy"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.Accuracy()
        >>> metric.update_state(np.array([[1], [2], [3], [4]]), np.array([[0], [2], [3], [4]]))
        >>> float(metric.result())
        0.75
    """

    fn = staticmethod(accuracy)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, {})


__all__ = ["Accuracy", "accuracy"]
