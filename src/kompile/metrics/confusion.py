"""Confusion-count metrics: TP/FP/TN/FN, precision, recall and AUC.

Owns the counting of weighted (true, false) x (positive, negative) outcomes per threshold
and the metrics computed from those counts, with Keras 3's arguments and numbers. Every
state is a dict of sums, so ``merge`` is addition. Does not own mean metrics (base.py) or
the F-scores (fscores.py; re-exported here, where they were first written).

Counting sorts the predictions once instead of comparing every prediction with every
threshold, so memory is O(predictions + thresholds) rather than their product (Keras's
AUC with 200 thresholds otherwise materialises a 200 x batch x classes tensor).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device

from .. import losses, ops
from ..ops import EPSILON, namespace
from .base import Metric, State, zeros
from .fscores import F1Score, FBetaScore  # noqa: F401  (kompile.metrics.confusion.F1Score)

NEG_INF = -1e10  # the score given to predictions outside the top k (as in Keras)
COUNT_KEYS = ("true_positives", "false_positives", "true_negatives", "false_negatives")


def parse_thresholds(thresholds: Any, default: float) -> list[float]:
    if thresholds is None:
        return [float(default)]
    values = [thresholds] if isinstance(thresholds, (int, float)) else list(thresholds)
    bad = [t for t in values if t is None or not 0.0 <= t <= 1.0]
    if bad or not values:
        raise ValueError(
            f"Invalid `thresholds`: expected floats in [0, 1]; received {thresholds!r}."
        )
    return [float(t) for t in values]


def evenly_spaced(thresholds: list[float]) -> bool:
    """Keras clips predictions to [0, 1] exactly when thresholds are evenly spaced."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def top_k_mask(xp: Any, x: Any, k: int) -> Any:
    """True for the k largest entries of the last axis (ties go to the lower index)."""
    order = xp.argsort(-x, axis=-1, stable=True)
    rank = xp.argsort(order, axis=-1)
    return rank < k


def prepare(xp: Any, y_true: Any, y_pred: Any, sample_weight: Any = None, *, top_k=None,
            class_id=None, clip=False, label_weights=None,
            multi_label=False) -> tuple[Any, Any, Any]:
    """Labels (0/1), scores and weights shaped ``(N, L)``: L labels, or everything in one."""
    y_true, y_pred = losses.align(y_true, y_pred)
    y_pred = ops.as_float(xp, y_pred)
    labels = xp.broadcast_to(xp.astype(y_true != 0, y_pred.dtype), y_pred.shape)
    if sample_weight is None:
        weights = xp.ones_like(y_pred)
    else:
        weights = losses.broadcast_weight(xp, sample_weight, y_pred)
    if top_k is not None:
        y_pred = xp.where(top_k_mask(xp, y_pred, top_k), y_pred,
                          xp.full_like(y_pred, NEG_INF))
    if class_id is not None:
        if not 0 <= class_id < y_pred.shape[-1]:
            raise ValueError(f"Invalid `class_id`: {class_id} names a column of the "
                             f"predictions, which have {y_pred.shape[-1]} (shape "
                             f"{tuple(y_pred.shape)}; a rank-1 output is one column).")
        # take (not a slice): a new array, so the flattening below needs no strided view
        cut = lambda a: xp.take(a, xp.asarray([class_id], device=device(a)), axis=-1)
        labels, y_pred, weights = cut(labels), cut(y_pred), cut(weights)
    if clip:
        y_pred = xp.clip(y_pred, min=0.0, max=1.0)
    if label_weights is not None and not multi_label:
        weights = weights * xp.asarray(label_weights, dtype=weights.dtype,
                                       device=device(weights))
    if multi_label:
        if y_pred.ndim != 2:
            raise ValueError(
                "AUC(multi_label=True) expects predictions of shape (batch, labels); "
                f"received shape {tuple(y_pred.shape)}. Use multi_label=False to flatten."
            )
        return labels, y_pred, weights
    flat = lambda a: xp.reshape(a, (-1, 1))
    return flat(labels), flat(y_pred), flat(weights)


def confusion_counts(xp: Any, labels: Any, scores: Any, weights: Any,
                     thresholds: list[float]) -> dict[str, Any]:
    """Weighted TP/FP/TN/FN of ``scores > t`` for sorted thresholds: each ``(T, L)``.

    Each score falls in a bucket (how many thresholds lie below it); sorting the keys
    ``label * (T + 1) + bucket`` once lets cumulative sums and ``searchsorted`` read off
    every (threshold, label) count.
    """
    num_t, num_labels = len(thresholds), scores.shape[1]
    stride = num_t + 1
    t = xp.asarray(thresholds, dtype=scores.dtype, device=device(scores))
    bucket = xp.searchsorted(t, xp.reshape(scores, (-1,)), side="left")
    offsets = xp.arange(num_labels, dtype=bucket.dtype, device=device(bucket)) * stride
    keys = xp.reshape(xp.reshape(bucket, scores.shape) + offsets, (-1,))
    order = xp.argsort(keys)
    sorted_keys = xp.take(keys, order)
    # positions of "key <= label * stride + j" for j = -1 (label start) .. T (label end)
    steps = xp.arange(-1, num_t + 1, dtype=bucket.dtype, device=device(bucket))
    queries = xp.reshape(steps[:, None] + offsets[None, :], (-1,))
    cuts = xp.searchsorted(sorted_keys, queries, side="right")

    # one sorted cumulative sum for positives and negatives together: (M + 1, 2)
    flat = lambda a: xp.reshape(a * weights, (-1,))
    values = xp.stack([flat(labels), flat(1.0 - labels)], axis=-1)
    cum = xp.cumulative_sum(xp.take(values, order, axis=0), axis=0, include_initial=True)
    at = xp.reshape(xp.take(cum, cuts, axis=0), (num_t + 2, num_labels, 2))
    above = at[-1:, ...] - at[1:-1, ...]  # score > t
    below = at[1:-1, ...] - at[:1, ...]  # score <= t
    return {"true_positives": above[..., 0], "false_positives": above[..., 1],
            "true_negatives": below[..., 1], "false_negatives": below[..., 0]}


class _ConfusionMetric(Metric):
    """Counts of some of TP/FP/TN/FN per threshold; result is a scalar for one threshold."""

    keys: tuple[str, ...] = COUNT_KEYS

    def __init__(self, thresholds: Any = None, top_k: int | None = None,
                 class_id: int | None = None, name: str | None = None, dtype: Any = None,
                 default_threshold: float = 0.5):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        self.thresholds = parse_thresholds(thresholds, default_threshold)
        self._clip = evenly_spaced(self.thresholds)
        order = np.argsort(self.thresholds, kind="stable")
        self._unsort = None if np.all(order[:-1] <= order[1:]) else np.argsort(order)
        self._sorted = [self.thresholds[i] for i in order]

    def init(self) -> State:
        return {k: zeros(len(self.thresholds)) for k in self.keys}

    def counts(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> dict[str, Any]:
        xp = namespace(y_pred)
        prepared = prepare(xp, y_true, y_pred, sample_weight, top_k=self.top_k,
                           class_id=self.class_id, clip=self._clip)
        counts = confusion_counts(xp, *prepared, self._sorted)
        out = {}
        for k in self.keys:
            c = counts[k][:, 0]
            out[k] = c if self._unsort is None else xp.take(
                c, xp.asarray(self._unsort, device=device(c)))
        return out

    def update(self, state: State, y_true: Any, y_pred: Any, sample_weight: Any = None):
        counts = self.counts(y_true, y_pred, sample_weight)
        return {k: state[k] + counts[k] for k in self.keys}

    def _per_threshold(self, value: Any) -> Any:
        return value[0] if len(self.thresholds) == 1 else value

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "thresholds": self.init_thresholds}


class _Count(_ConfusionMetric):
    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(thresholds=thresholds, name=name, dtype=dtype)

    def result(self, state: State) -> Any:
        return self._per_threshold(state[self.keys[0]])


class TruePositives(_Count):
    """Weighted count of positives predicted above each threshold.

    Args:
        thresholds: A float in [0, 1] or a list of them: predictions above a threshold
            count as positive. A list gives one result per threshold. Default ``None``
            (0.5).
        name: The log name. Default ``None``: the class name in snake case.
        dtype: Accepted for Keras compatibility; states are float32.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.TruePositives()
        >>> metric.update_state(np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.7, 0.1]))
        >>> float(metric.result())
        1.0
    """

    keys = ("true_positives",)


class FalsePositives(_Count):
    """Weighted count of negatives predicted above each threshold.

    Args:
        thresholds: A float in [0, 1] or a list of them: predictions above a threshold
            count as positive. A list gives one result per threshold. Default ``None``
            (0.5).
        name: The log name. Default ``None``: the class name in snake case.
        dtype: Accepted for Keras compatibility; states are float32.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.FalsePositives()
        >>> metric.update_state(np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.7, 0.1]))
        >>> float(metric.result())
        1.0
    """

    keys = ("false_positives",)


class TrueNegatives(_Count):
    """Weighted count of negatives predicted at or below each threshold.

    Args:
        thresholds: A float in [0, 1] or a list of them: predictions above a threshold
            count as positive. A list gives one result per threshold. Default ``None``
            (0.5).
        name: The log name. Default ``None``: the class name in snake case.
        dtype: Accepted for Keras compatibility; states are float32.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.TrueNegatives()
        >>> metric.update_state(np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.7, 0.1]))
        >>> float(metric.result())
        1.0
    """

    keys = ("true_negatives",)


class FalseNegatives(_Count):
    """Weighted count of positives predicted at or below each threshold.

    Args:
        thresholds: A float in [0, 1] or a list of them: predictions above a threshold
            count as positive. A list gives one result per threshold. Default ``None``
            (0.5).
        name: The log name. Default ``None``: the class name in snake case.
        dtype: Accepted for Keras compatibility; states are float32.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.FalseNegatives()
        >>> metric.update_state(np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.7, 0.1]))
        >>> float(metric.result())
        1.0
    """

    keys = ("false_negatives",)


class _PrecisionRecall(_ConfusionMetric):
    def __init__(self, thresholds: Any = None, top_k: int | None = None,
                 class_id: int | None = None, name: str | None = None, dtype: Any = None):
        super().__init__(thresholds=thresholds, top_k=top_k, class_id=class_id, name=name,
                         dtype=dtype, default_threshold=0.5 if top_k is None else NEG_INF)

    def result(self, state: State) -> Any:
        tp, other = state[self.keys[0]], state[self.keys[1]]
        return self._per_threshold(losses.safe_divide(namespace(tp), tp, tp + other))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """TP / (TP + FP) per threshold, optionally over the top k or one class.

    Args:
        thresholds: A float in [0, 1] or a list of them (one result per threshold).
            Default ``None``: 0.5, or, with ``top_k``, "among the top k".
        top_k: Count a prediction as positive only if it is among the ``k`` highest of
            its row. Default ``None``.
        class_id: Compute the metric for this class (column) only. Default ``None``:
            every element counts.
        name: The log name. Default ``None``: the class name in snake case.
        dtype: Accepted for Keras compatibility; states are float32.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.Precision()
        >>> metric.update_state(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.3, 0.1]))
        >>> float(metric.result())
        0.5
    """

    keys = ("true_positives", "false_positives")


class Recall(_PrecisionRecall):
    """TP / (TP + FN) per threshold, optionally over the top k or one class.

    Args:
        thresholds: A float in [0, 1] or a list of them (one result per threshold).
            Default ``None``: 0.5, or, with ``top_k``, "among the top k".
        top_k: Count a prediction as positive only if it is among the ``k`` highest of
            its row. Default ``None``.
        class_id: Compute the metric for this class (column) only. Default ``None``:
            every element counts.
        name: The log name. Default ``None``: the class name in snake case.
        dtype: Accepted for Keras compatibility; states are float32.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.Recall()
        >>> metric.update_state(np.array([1, 0, 1, 1]), np.array([0.9, 0.8, 0.3, 0.6]))
        >>> round(float(metric.result()), 4)
        0.6667
    """

    keys = ("true_positives", "false_negatives")


CURVES = ("ROC", "PR", "PRGAIN")
SUMMATIONS = ("interpolation", "minoring", "majoring")
MAX_THRESHOLDS = 10**6  # num_thresholds and num_labels: a size from a config is bounded


def _choice(argument: str, value: Any, valid: tuple[str, ...]) -> str:
    for v in valid:
        if isinstance(value, str) and value.lower() == v.lower():
            return v
    raise ValueError(f"Invalid `{argument}`: expected one of {list(valid)}; received {value!r}.")


class AUC(_ConfusionMetric):
    """Area under the ROC or precision-recall curve, by a Riemann sum over thresholds.

    Args:
        num_thresholds: How many evenly spaced thresholds in [0, 1] discretise the curve
            (more is more accurate). Default 200.
        curve: ``"ROC"`` (default), ``"PR"`` (precision-recall) or ``"PRGAIN"``.
        summation_method: ``"interpolation"`` (default; for PR, Davis & Goadrich's
            interpolation), ``"minoring"`` or ``"majoring"`` (lower / upper Riemann sums).
        name: The log name. Default ``None``: the class name in snake case.
        dtype: Accepted for Keras compatibility; states are float32.
        thresholds: Explicit thresholds in place of ``num_thresholds`` (0 and 1 are
            added). Default ``None``.
        multi_label: Treat each column as its own binary problem and average the AUCs
            (weighted by ``label_weights``), instead of pooling all columns. Default
            ``False``.
        num_labels: The number of columns with ``multi_label=True`` (otherwise read from
            the first batch). Default ``None``.
        label_weights: Per-column weights for the ``multi_label`` average. Default
            ``None`` (equal).
        from_logits: Apply a sigmoid to the predictions first. Default ``False``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.AUC()
        >>> metric.update_state(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        >>> round(float(metric.result()), 2)
        0.75
    """

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC",
                 summation_method: str = "interpolation", name: str | None = None,
                 dtype: Any = None, thresholds: Any = None, multi_label: bool = False,
                 num_labels: int | None = None, label_weights: Any = None,
                 from_logits: bool = False):
        self.curve = _choice("curve", curve, CURVES)
        self.summation_method = _choice("summation_method", summation_method, SUMMATIONS)
        if thresholds is not None:
            inner = sorted(parse_thresholds(thresholds, 0.5))
            clip = evenly_spaced([0.0, *inner, 1.0])
        else:
            if isinstance(num_thresholds, bool) or not isinstance(
                    num_thresholds, int | np.integer) or not 1 < num_thresholds <= MAX_THRESHOLDS:
                raise ValueError(f"Invalid `num_thresholds`: expected an integer from 2 to "
                                 f"{MAX_THRESHOLDS}; received {num_thresholds!r}.")
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            clip = True
        if num_labels is not None and (isinstance(num_labels, bool) or not isinstance(
                num_labels, int | np.integer) or not 0 < num_labels <= MAX_THRESHOLDS):
            raise ValueError(f"Invalid `num_labels`: expected None or an integer from 1 to "
                             f"{MAX_THRESHOLDS}; received {num_labels!r}.")
        if num_labels and not multi_label:
            raise ValueError("`num_labels` is only used with `multi_label=True`; "
                             f"received num_labels={num_labels!r} and multi_label=False.")
        super().__init__(thresholds=None, name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = self._sorted = [-EPSILON, *inner, 1.0 + EPSILON]
        self.num_thresholds = len(self.thresholds)
        self._clip, self._unsort = clip, None
        self.multi_label = multi_label
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else [float(w) for w in
                                                                 np.ravel(label_weights)]
        self.from_logits = from_logits

    def init(self) -> State:
        # Without num_labels the label axis has size 1 and broadcasts at the first update.
        shape = (self.num_thresholds, self.num_labels or 1) if self.multi_label else (
            self.num_thresholds,)
        return {k: zeros(*shape) for k in COUNT_KEYS}

    def update(self, state: State, y_true: Any, y_pred: Any, sample_weight: Any = None):
        xp = namespace(y_pred)
        if self.from_logits:
            y_pred = ops.sigmoid(xp, ops.as_float(xp, y_pred))
        prepared = prepare(xp, y_true, y_pred, sample_weight, clip=self._clip,
                           label_weights=self.label_weights, multi_label=self.multi_label)
        counts = confusion_counts(xp, *prepared, self.thresholds)
        if not self.multi_label:
            counts = {k: v[:, 0] for k, v in counts.items()}
        return {k: state[k] + counts[k] for k in COUNT_KEYS}

    def result(self, state: State) -> Any:
        tp, fp, tn, fn = (state[k] for k in COUNT_KEYS)
        xp = namespace(tp)
        div = lambda a, b: losses.safe_divide(xp, a, b)
        if self.curve == "PR" and self.summation_method == "interpolation":
            terms = _interpolated_pr_terms(xp, tp, fp, fn)
        else:
            recall = div(tp, tp + fn)
            if self.curve == "ROC":
                x, y = div(fp, fp + tn), recall
            elif self.curve == "PR":
                x, y = recall, div(tp, tp + fp)
            else:  # PRGAIN
                scale = div(tp + fn, tn + fp)
                no_tp = tp == 0.0
                x = xp.where(no_tp, xp.zeros_like(tp), 1.0 - scale * div(fn, tp))
                x = xp.clip(x, min=0.0)
                y = xp.where(no_tp, xp.ones_like(tp), 1.0 - scale * div(fp, tp))
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2.0
            elif self.summation_method == "minoring":
                heights = xp.minimum(y[:-1], y[1:])
            else:
                heights = xp.maximum(y[:-1], y[1:])
            terms = (x[:-1] - x[1:]) * heights
        by_label = xp.sum(terms, axis=0)
        if not self.multi_label:
            return by_label
        if self.label_weights is None:
            return xp.mean(by_label)
        w = xp.asarray(self.label_weights, dtype=by_label.dtype, device=device(by_label))
        return div(xp.sum(by_label * w), xp.sum(w))

    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, "dtype": self.dtype, "num_thresholds": self.num_thresholds,
                  "curve": self.curve, "summation_method": self.summation_method,
                  "multi_label": self.multi_label, "num_labels": self.num_labels,
                  "label_weights": self.label_weights, "from_logits": self.from_logits}
        if self.init_thresholds is not None:
            config["thresholds"] = self.thresholds[1:-1]
        return config


def _interpolated_pr_terms(xp: Any, tp: Any, fp: Any, fn: Any) -> Any:
    """PR-AUC pieces interpolating TP and FP linearly between thresholds (Davis, Goadrich)."""
    div = lambda a, b: losses.safe_divide(xp, a, b)
    zero = lambda a: xp.zeros_like(a)
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    slope = div(dtp, xp.maximum(dp, zero(dp)))
    intercept = tp[1:] - slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    ratio = xp.where(both, div(p[:-1], xp.maximum(p[1:], zero(dp))), xp.ones_like(dp))
    pos = tp[1:] + fn[1:]
    return div(slope * (dtp + intercept * xp.log(ratio)), xp.maximum(pos, zero(pos)))
