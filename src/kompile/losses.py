"""Losses: pure per-sample functions, their classes, and the one weighting function.

A loss function maps ``(y_true, y_pred) -> per-sample values`` with the last axis
reduced. ``weighted_reduce`` is the only place where sample weights and reductions are
applied; mean metrics use it too. Everything is written against the array API, so the
same code runs on jax.numpy, torch and NumPy (the test oracle).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

from . import ops
from .ops import EPSILON, namespace
from .registry import Registry, check_kwargs, custom_name, keywords_checked, type_error

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
    while w.ndim > values.ndim and w.shape[-1] == 1:
        w = w[..., 0]
    while w.ndim < values.ndim:
        w = w[..., None]
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
        Per-sample values: ``y_pred``'s shape without its last axis.
    """
    xp = namespace(y_pred)
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


# ----------------------------------------------------------------------------- classes


class Loss:
    """A loss object: a per-sample function, its options, a reduction and a name.

    Subclass it to write a loss with options: set ``fn`` (a function
    ``fn(y_true, y_pred, **options) -> per-sample values``) or override ``call``. Calling
    the object applies sample weights and the reduction.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> class Quartic(kp.losses.Loss):
        ...     def call(self, y_true, y_pred):
        ...         return ((y_pred - y_true) ** 4).mean(axis=-1)
        >>> float(Quartic()(np.zeros((2, 1)), np.ones((2, 1))))
        1.0
    """

    fn: Callable[..., Any] | None = None

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = None,
                 options: dict[str, Any] | None = None) -> None:
        """Args:
            reduction: How ``__call__`` reduces the per-sample values:
                ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean_with_sample_weight"``
                or ``"none"``/``None``.
            name: The log name. Default ``None``: the function's name (or the class name).
            options: Keyword arguments passed to ``fn`` after ``y_true, y_pred``.
        """
        fn = type(self).fn
        options = dict(options or {})
        if fn is not None:
            params = inspect.signature(fn).parameters
            valid = [p for p in params if p not in ("y_true", "y_pred")]
            check_kwargs(type(self).__name__, options, valid)
        self.reduction = check_reduction(reduction)
        self.name = name or (fn.__name__ if fn is not None else type(self).__name__)
        self.options = options

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "__init__" in cls.__dict__:  # unknown keywords: the valid names, the closest one
            cls.__init__ = keywords_checked(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Per-sample values (last axis reduced).

        Args:
            y_true: Targets.
            y_pred: Predictions.

        Returns:
            ``fn(y_true, y_pred, **options)``.
        """
        return type(self).fn(y_true, y_pred, **self.options)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The reduced, weighted loss of a batch.

        Args:
            y_true: Targets.
            y_pred: Predictions (a rank-1 ``(N,)`` output counts as ``(N, 1)``).
            sample_weight: Optional per-sample weights ``(N,)`` or ``(N, T)``.

        Returns:
            A scalar, or the per-sample values when ``reduction`` is ``"none"``.
        """
        y_true, y_pred = align(y_true, y_pred)
        return weighted_reduce(self.call(y_true, y_pred), sample_weight, self.reduction)

    def get_config(self) -> dict[str, Any]:
        return {"reduction": self.reduction, "name": self.name, **self.options}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class LossFunctionWrapper(Loss):
    """Wraps a plain ``fn(y_true, y_pred) -> per-sample values`` as a loss object.

    Args:
        fn: The per-sample function (last axis reduced).
        reduction: As for ``Loss``. Default ``"sum_over_batch_size"``.
        name: The log name. Default ``None``: ``fn.__name__``.
        options: Keyword arguments passed to ``fn`` after ``y_true, y_pred``. Default
            ``None``.
    """

    def __init__(self, fn: Callable[..., Any], reduction: str | None = "sum_over_batch_size",
                 name: str | None = None, options: dict[str, Any] | None = None) -> None:
        super().__init__(reduction=reduction, name=name or getattr(fn, "__name__", "loss"))
        self.wrapped = fn
        self.options = dict(options or {})

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self.wrapped(y_true, y_pred, **self.options)

    def get_config(self) -> dict[str, Any]:
        name = custom_name(self.wrapped) or getattr(self.wrapped, "__name__", None)
        return {"fn": name, **super().get_config()}


LOSSES = Registry("loss")
LOSS_CLASSES: dict[str, type[Loss]] = {}


def _options(local_vars: dict[str, Any]) -> dict[str, Any]:
    """A loss class's own options, from its ``__init__``'s ``locals()``."""
    return {k: v for k, v in local_vars.items()
            if k not in ("self", "reduction", "name", "__class__")}


# the loss classes (one per function, with explicit signatures) live in loss_classes.py,
# imported at the end of this module and registered there
CROSSENTROPY_KIND = {  # which accuracy a crossentropy loss implies (SPEC section 2)
    "binary_crossentropy": "binary",
    "binary_focal_crossentropy": "binary",
    "categorical_crossentropy": "categorical",
    "categorical_focal_crossentropy": "categorical",
    "sparse_categorical_crossentropy": "sparse",
}


def get(identifier: Any) -> Loss:
    """Resolve a loss given as a name, a Loss class or instance, or a plain function.

    Args:
        identifier: A loss name or alias (exact spelling), a ``Loss`` class or object, or
            a function ``fn(y_true, y_pred) -> per-sample values``.

    Returns:
        A ``Loss`` object.

    Raises:
        ValueError: An unknown name (the message lists the valid ones and the closest).
        TypeError: Something that is not a loss.

    Example:
        >>> import kompile as kp
        >>> kp.losses.get("mse")
        MeanSquaredError({'reduction': 'sum_over_batch_size', 'name': 'mse'})
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = LOSSES.get(identifier)
        loss = cls()
        loss.name = identifier
        return loss
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        for cls in LOSS_CLASSES.values():
            if cls.fn is identifier:
                return cls()
        return LossFunctionWrapper(identifier)
    raise type_error("loss", "a loss name, a kp.losses.Loss, or a callable", identifier)


def crossentropy_kind(loss: Loss | None) -> str | None:
    """'binary', 'categorical' or 'sparse' when ``loss`` is a crossentropy, else None."""
    fn = type(loss).fn if loss is not None else None
    return CROSSENTROPY_KIND.get(getattr(fn, "__name__", ""))


def serialize(loss: Loss) -> dict[str, Any]:
    """``{"class_name", "config"}`` for a loss (custom ones must be registered).

    Args:
        loss: A ``Loss`` object.

    Returns:
        A JSON-serialisable dict.
    """
    if isinstance(loss, LossFunctionWrapper):
        name = custom_name(loss.wrapped)
        if name is None:
            raise ValueError(
                f"Cannot serialise the loss function {loss.wrapped!r}: it is not registered. "
                "Register it with kp.register(fn) (or @kp.register) before get_compile_config()."
            )
        return {"class_name": "LossFunctionWrapper", "config": {**loss.get_config(), "fn": name}}
    cls_name = custom_name(type(loss)) or type(loss).__name__  # the name it is registered under
    if cls_name not in LOSS_CLASSES and custom_name(type(loss)) is None:
        raise ValueError(
            f"Cannot serialise the loss {loss!r}: its class is not registered. "
            "Register it with kp.register(cls) before get_compile_config()."
        )
    return {"class_name": cls_name, "config": loss.get_config()}


def deserialize(config: dict[str, Any]) -> Loss:
    """A loss from the dict ``serialize`` made.

    Args:
        config: ``{"class_name": ..., "config": ...}``.

    Returns:
        The ``Loss`` object.
    """
    from .registry import get_custom

    name, cfg = config["class_name"], dict(config["config"])
    if name == "LossFunctionWrapper":
        fn = get_custom(cfg.pop("fn"))
        return LossFunctionWrapper(fn, cfg.pop("reduction", "sum_over_batch_size"),
                                   cfg.pop("name", None), cfg)
    cls = LOSS_CLASSES.get(name) or get_custom(name)
    return cls.from_config(cfg)


from .loss_classes import (  # noqa: E402  (the classes subclass Loss, defined above)
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)

__all__ = [
    "Loss", "LossFunctionWrapper", "deserialize", "get", "serialize", "REDUCTIONS",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalFocalCrossentropy",
    "KLDivergence",
    "Poisson",
    "CosineSimilarity",
    "LogCosh",
    "Huber",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "kl_divergence",
    "poisson",
    "cosine_similarity",
    "log_cosh",
    "huber",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
]
