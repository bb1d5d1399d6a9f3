"""The F-scores: FBetaScore and F1Score, per class from thresholded predictions.

Owns their counting (weighted true positives, false positives and false negatives per
class, or pooled with ``average="micro"``) and the score, with Keras 3's arguments and
numbers. Every state is a dict of sums, so ``merge`` is addition. Does not own the
per-threshold confusion counts of precision, recall and AUC (confusion.py, which
re-exports these classes).
"""

from __future__ import annotations

from typing import Any

from .. import losses, ops
from ..ops import EPSILON, namespace
from .base import Metric, State, zeros


class FBetaScore(Metric):
    """F-beta per class from thresholded predictions; averaged as ``average`` says.

    Targets and predictions are ``(N, C)`` (one-hot or multi-hot targets).

    Args:
        average: ``None`` (default: one score per class), ``"micro"`` (pool every
            class's counts), ``"macro"`` (the mean of the per-class scores) or
            ``"weighted"`` (weighted by each class's number of positives).
        beta: The weight of recall relative to precision (1 = the F1 score). Default 1.0.
        threshold: Predictions above it count as positive. Default ``None``: the
            highest prediction of each row counts as positive.
        name: The log name. Default ``None``: the class name in snake case.
        dtype: Accepted for Keras compatibility; states are float32.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.FBetaScore(average="micro", beta=2.0, threshold=0.5)
        >>> metric.update_state(np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.6], [0.2, 0.4]]))
        >>> round(float(metric.result()), 4)
        0.5
    """

    def __init__(self, average: str | None = None, beta: float = 1.0,
                 threshold: float | None = None, name: str = "fbeta_score", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError("Invalid `average`: expected one of None, 'micro', 'macro', "
                             f"'weighted'; received {average!r}.")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta <= 0:
            raise ValueError(f"Invalid `beta`: expected a float > 0; received {beta!r}.")
        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise ValueError("Invalid `threshold`: expected a float in (0, 1] or None; "
                             f"received {threshold!r}.")
        self.average, self.beta, self.threshold = average, float(beta), threshold

    def init(self) -> State:
        # Per-class sums start with one broadcastable entry: classes are known at the first batch.
        shape = () if self.average == "micro" else (1,)
        return {k: zeros(*shape) for k in
                ("true_positives", "false_positives", "false_negatives", "intermediate_weights")}

    def update(self, state: State, y_true: Any, y_pred: Any, sample_weight: Any = None):
        xp = namespace(y_pred)
        y_true, y_pred = losses.align(y_true, y_pred)
        y_pred = ops.as_float(xp, y_pred)
        y_true = ops.as_float(xp, y_true, like=y_pred)
        if self.threshold is None:
            top = xp.max(y_pred, axis=-1, keepdims=True)
            hit = (y_pred >= top) & (xp.abs(y_pred) > 1e-9)
        else:
            hit = y_pred > self.threshold
        hit = xp.astype(hit, y_pred.dtype)
        w = (xp.ones_like(y_pred) if sample_weight is None
             else losses.broadcast_weight(xp, sample_weight, y_pred))
        axes = None if self.average == "micro" else tuple(range(y_pred.ndim - 1))
        total = lambda v: xp.sum(v * w, axis=axes)
        new = {"true_positives": total(hit * y_true),
               "false_positives": total(hit * (1.0 - y_true)),
               "false_negatives": total((1.0 - hit) * y_true),
               "intermediate_weights": total(y_true)}
        return {k: state[k] + new[k] for k in new}

    def result(self, state: State) -> Any:
        tp, fp, fn = state["true_positives"], state["false_positives"], state["false_negatives"]
        xp = namespace(tp)
        precision = tp / (tp + fp + EPSILON)
        recall = tp / (tp + fn + EPSILON)
        b2 = self.beta**2
        score = (1.0 + b2) * precision * recall / (b2 * precision + recall + EPSILON)
        if self.average == "weighted":
            iw = state["intermediate_weights"]
            return xp.sum(score * (iw / (xp.sum(iw) + EPSILON)))
        if self.average is not None:
            return xp.mean(score)
        return score

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "average": self.average,
                "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """F1: the harmonic mean of precision and recall (FBetaScore with beta=1).

    The string ``"f1_score"`` in ``compile`` means ``F1Score(average="macro")`` (a scalar
    log).

    Args:
        average: ``None`` (default: one score per class), ``"micro"``, ``"macro"`` or
            ``"weighted"``, as for ``FBetaScore``.
        threshold: Predictions above it count as positive. Default ``None``: the
            highest prediction of each row counts as positive.
        name: The log name. Default ``None``: the class name in snake case.
        dtype: Accepted for Keras compatibility; states are float32.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.F1Score(average="macro")
        >>> metric.update_state(np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.1], [0.2, 0.8]]))
        >>> round(float(metric.result()), 4)
        1.0
    """

    def __init__(self, average: str | None = None, threshold: float | None = None,
                 name: str = "f1_score", dtype: Any = None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config


__all__ = ["FBetaScore", "F1Score"]
