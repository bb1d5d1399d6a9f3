"""Loss functions: pure per-sample functions and the one weighting function.

A loss function maps ``(y_true, y_pred) -> per-sample values`` with the last axis
reduced. ``weighted_reduce`` is the only place where sample weights and reductions are
applied; mean metrics use it too. Everything is written against the array API, so the
same code runs on jax.numpy, torch and NumPy (the test oracle). The loss classes, the
registry and lookup live in losses.py, which re-exports these functions.
"""

from __future__ import annotations

import math
from typing import Any

from .. import ops
from ..ops import EPSILON, namespace

REDUCTIONS = ("sum_over_batch_size", "sum", "mean_with_sample_weight", "none", None)


def check_reduction(reduction: Any) -> Any:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Invalid `reduction`: expected one of {list(REDUCTIONS)}; received {reduction!r}."
        )
    return reduction


def align(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Rank-1 outputs count as ``(N, 1)``; a target off by a trailing axis of 1 is aligned."""
    if y_pred.ndim == 1:
        y_pred = y_pred[:, None]
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true[..., None]
    elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return y_true, y_pred


def broadcast_weight(xp: Any, sample_weight: Any, values: Any) -> Any:
    """Sample weights shaped to ``values``: ``(N,)`` weights spread over temporal axes."""
    w = ops.as_float(xp, sample_weight, like=values)
    given = tuple(w.shape)  # (sample_weight may be a list or a scalar)
    while w.ndim > values.ndim and w.shape[-1] == 1:
        w = w[..., 0]
    while w.ndim < values.ndim:
        w = w[..., None]
    if w.ndim > values.ndim or any(a not in (1, b) for a, b in zip(w.shape, values.shape)):
        raise ValueError(f"`sample_weight` of shape {given} does not fit "
                         f"values of shape {tuple(values.shape)}: expected one weight per "
                         "sample, (N,), or a shape that broadcasts to the values (per "
                         "timestep or per element).")
    return xp.broadcast_to(w, values.shape)


def safe_divide(xp: Any, num: Any, den: Any) -> Any:
    ok = den != 0
    return xp.where(ok, num / xp.where(ok, den, xp.ones_like(den)), xp.zeros_like(num))


def weighted_reduce(values: Any, sample_weight: Any = None, reduction: Any = "sum_over_batch_size"):
    """Apply sample weights to per-sample ``values`` and reduce them."""
    xp = namespace(values)
    values = ops.as_float(xp, values)
    weights = None if sample_weight is None else broadcast_weight(xp, sample_weight, values)
    if weights is not None:
        values = values * weights
    if reduction in (None, "none"):
        return values
    if reduction == "sum":
        return xp.sum(values)
    if reduction == "mean_with_sample_weight" and weights is not None:
        return safe_divide(xp, xp.sum(values), xp.sum(weights))
    return xp.mean(values)  # sum over the number of elements, in one kernel


# ----------------------------------------------------------------------------- functions


def mean_squared_error(y_true: Any, y_pred: Any) -> Any:
    """Mean of the squared errors over the last axis.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    d = y_pred - ops.as_float(xp, y_true, like=y_pred)
    return xp.mean(d * d, axis=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Any:
    """Mean of the absolute errors over the last axis.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    return xp.mean(xp.abs(y_pred - ops.as_float(xp, y_true, like=y_pred)), axis=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Any:
    """Mean absolute error relative to the target, in percent.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    diff = xp.abs((y_true - y_pred) / xp.clip(xp.abs(y_true), min=EPSILON))
    return 100.0 * xp.mean(diff, axis=-1)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Any:
    """Mean squared error of ``log(1 + y)``: relative errors, for positive targets.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    d = xp.log(xp.clip(y_pred, min=EPSILON) + 1.0) - xp.log(xp.clip(y_true, min=EPSILON) + 1.0)
    return xp.mean(d * d, axis=-1)


def _elementwise_bce(xp, y_true, y_pred, from_logits):
    if from_logits:
        return ops.softplus(xp, y_pred) - y_pred * y_true
    p = xp.clip(y_pred, min=EPSILON, max=1.0 - EPSILON)
    return -(y_true * xp.log(p) + (1.0 - y_true) * xp.log(1.0 - p))


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                        label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """Crossentropy of independent yes/no labels (one sigmoid unit per label).

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        label_smoothing: In [0, 1]: move the targets toward the uniform distribution by this
            amount (0 = none). Default ``0.0``.
        axis: The axis holding the classes (or the vector). Default ``-1``.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return xp.mean(_elementwise_bce(xp, y_true, y_pred, from_logits), axis=axis)


def _log_probs(xp, y_pred, from_logits, axis):
    if from_logits:
        return ops.log_softmax(xp, y_pred, axis=axis)
    p = y_pred / xp.sum(y_pred, axis=axis, keepdims=True)
    return xp.log(xp.clip(p, min=EPSILON, max=1.0 - EPSILON))


def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """Crossentropy of one-hot (or soft) targets against a class distribution.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        label_smoothing: In [0, 1]: move the targets toward the uniform distribution by this
            amount (0 = none). Default ``0.0``.
        axis: The axis holding the classes (or the vector). Default ``-1``.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    if label_smoothing:
        n = y_pred.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / n
    return -xp.sum(y_true * _log_probs(xp, y_pred, from_logits, axis), axis=axis)


def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                                    ignore_class: int | None = None, axis: int = -1) -> Any:
    """Crossentropy of integer class labels against a class distribution.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        ignore_class: A label whose samples contribute 0 (e.g. padding); ``None`` = every
            label counts. Default ``None``.
        axis: The axis holding the classes (or the vector). Default ``-1``.

    Returns:
        Per-sample values: ``y_pred``'s shape without its class axis (``axis``).
    """
    xp = namespace(y_pred)
    if axis not in (-1, y_pred.ndim - 1):
        # classes on another axis (torch's channels-first (N, C, H, W)): move them last;
        # labels keep a singleton class axis there, or none
        if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
            y_true = xp.squeeze(y_true, axis=axis)
        y_pred, axis = xp.moveaxis(y_pred, axis, -1), -1
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    labels = xp.astype(y_true, xp.int32)
    valid = None
    if ignore_class is not None:
        valid = labels != ignore_class
        labels = xp.where(valid, labels, xp.zeros_like(labels))
    if from_logits and axis in (-1, y_pred.ndim - 1):
        # logsumexp - picked logit: no full log-softmax, a cheaper backward pass
        values = ops.logsumexp(xp, y_pred, axis=-1) - ops.take_along_last(xp, y_pred, labels)
    else:
        values = -ops.take_along_last(xp, _log_probs(xp, y_pred, from_logits, axis), labels)
    if valid is not None:
        values = values * xp.astype(valid, values.dtype)
    return values


def binary_focal_crossentropy(y_true: Any, y_pred: Any, apply_class_balancing: bool = False,
                              alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                              label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """Binary crossentropy down-weighting easy examples by ``(1 - p_t) ** gamma`` (focal loss).

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.
        apply_class_balancing: Weigh positives by ``alpha`` and negatives by ``1 - alpha``.
            Default ``False``.
        alpha: The class-balancing weight. Default ``0.25``.
        gamma: The focusing exponent: larger values down-weight easy examples more. Default
            ``2.0``.
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        label_smoothing: In [0, 1]: move the targets toward the uniform distribution by this
            amount (0 = none). Default ``0.0``.
        axis: The axis holding the classes (or the vector). Default ``-1``.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = ops.sigmoid(xp, y_pred)
    bce = _elementwise_bce(xp, y_true, y_pred, False)
    p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
    focal = (1.0 - p_t) ** gamma * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return xp.mean(focal, axis=axis)


def categorical_focal_crossentropy(y_true: Any, y_pred: Any, alpha: float = 0.25,
                                   gamma: float = 2.0, from_logits: bool = False,
                                   label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """Categorical crossentropy down-weighting easy examples by ``alpha * (1 - p) ** gamma``.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.
        alpha: The class-balancing weight. Default ``0.25``.
        gamma: The focusing exponent: larger values down-weight easy examples more. Default
            ``2.0``.
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        label_smoothing: In [0, 1]: move the targets toward the uniform distribution by this
            amount (0 = none). Default ``0.0``.
        axis: The axis holding the classes (or the vector). Default ``-1``.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    if label_smoothing:
        n = y_pred.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / n
    if from_logits:
        y_pred = ops.softmax(xp, y_pred, axis=axis)
    p = y_pred / xp.sum(y_pred, axis=axis, keepdims=True)
    p = xp.clip(p, min=EPSILON, max=1.0 - EPSILON)
    focal = alpha * (1.0 - p) ** gamma * (-y_true * xp.log(p))
    return xp.sum(focal, axis=axis)


def kl_divergence(y_true: Any, y_pred: Any) -> Any:
    """Kullback-Leibler divergence of the predicted distribution from the target one.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    y_true = xp.clip(ops.as_float(xp, y_true, like=y_pred), min=EPSILON, max=1.0)
    y_pred = xp.clip(y_pred, min=EPSILON, max=1.0)
    return xp.sum(y_true * xp.log(y_true / y_pred), axis=-1)


def poisson(y_true: Any, y_pred: Any) -> Any:
    """Poisson negative log-likelihood, for count targets.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    return xp.mean(y_pred - y_true * xp.log(y_pred + EPSILON), axis=-1)


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Any:
    """The loss: minus the cosine similarity (the metric of the same name is positive).

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.
        axis: The axis holding the classes (or the vector). Default ``-1``.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    y_true = ops.l2_normalize(xp, ops.as_float(xp, y_true, like=y_pred), axis=axis)
    return -xp.sum(y_true * ops.l2_normalize(xp, y_pred, axis=axis), axis=axis)


def log_cosh(y_true: Any, y_pred: Any) -> Any:
    """Mean of ``log(cosh(error))``: squared error for small errors, absolute error for large ones.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    x = y_pred - ops.as_float(xp, y_true, like=y_pred)
    return xp.mean(x + ops.softplus(xp, -2.0 * x) - math.log(2.0), axis=-1)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Any:
    """Huber loss: quadratic for errors up to ``delta``, linear beyond (robust to outliers).

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.
        delta: Where the loss turns from quadratic to linear. Default ``1.0``.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    err = xp.abs(y_pred - ops.as_float(xp, y_true, like=y_pred))
    quad = 0.5 * err * err
    return xp.mean(xp.where(err <= delta, quad, delta * err - 0.5 * delta * delta), axis=-1)


def _hinge_labels(xp, y_true, like):
    y_true = ops.as_float(xp, y_true, like=like)
    is_binary = xp.all((y_true == 0) | (y_true == 1))
    return xp.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true: Any, y_pred: Any) -> Any:
    """Hinge loss of labels -1/1 (0/1 labels are converted).

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    margin = 1.0 - _hinge_labels(xp, y_true, y_pred) * y_pred
    return xp.mean(xp.clip(margin, min=0.0), axis=-1)


def squared_hinge(y_true: Any, y_pred: Any) -> Any:
    """Squared hinge loss of labels -1/1 (0/1 labels are converted).

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    margin = xp.clip(1.0 - _hinge_labels(xp, y_true, y_pred) * y_pred, min=0.0)
    return xp.mean(margin * margin, axis=-1)


def categorical_hinge(y_true: Any, y_pred: Any) -> Any:
    """Categorical hinge of one-hot targets.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    pos = xp.sum(y_true * y_pred, axis=-1)
    neg = xp.max((1.0 - y_true) * y_pred, axis=-1)
    return xp.clip(neg - pos + 1.0, min=0.0)
