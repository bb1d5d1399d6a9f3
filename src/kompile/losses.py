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
from .registry import Registry, check_kwargs, custom_name, type_error

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


def mean_squared_error(y_true, y_pred):
    xp = namespace(y_pred)
    d = y_pred - ops.as_float(xp, y_true, like=y_pred)
    return xp.mean(d * d, axis=-1)


def mean_absolute_error(y_true, y_pred):
    xp = namespace(y_pred)
    return xp.mean(xp.abs(y_pred - ops.as_float(xp, y_true, like=y_pred)), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    diff = xp.abs((y_true - y_pred) / xp.clip(xp.abs(y_true), min=EPSILON))
    return 100.0 * xp.mean(diff, axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    d = xp.log(xp.clip(y_pred, min=EPSILON) + 1.0) - xp.log(xp.clip(y_true, min=EPSILON) + 1.0)
    return xp.mean(d * d, axis=-1)


def _elementwise_bce(xp, y_true, y_pred, from_logits):
    if from_logits:
        return ops.softplus(xp, y_pred) - y_pred * y_true
    p = xp.clip(y_pred, min=EPSILON, max=1.0 - EPSILON)
    return -(y_true * xp.log(p) + (1.0 - y_true) * xp.log(1.0 - p))


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
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


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    if label_smoothing:
        n = y_pred.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / n
    return -xp.sum(y_true * _log_probs(xp, y_pred, from_logits, axis), axis=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
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


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25,
                              gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1):
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


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                   label_smoothing=0.0, axis=-1):
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


def kl_divergence(y_true, y_pred):
    xp = namespace(y_pred)
    y_true = xp.clip(ops.as_float(xp, y_true, like=y_pred), min=EPSILON, max=1.0)
    y_pred = xp.clip(y_pred, min=EPSILON, max=1.0)
    return xp.sum(y_true * xp.log(y_true / y_pred), axis=-1)


def poisson(y_true, y_pred):
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    return xp.mean(y_pred - y_true * xp.log(y_pred + EPSILON), axis=-1)


def cosine_similarity(y_true, y_pred, axis=-1):
    """The loss: minus the cosine similarity (the metric of the same name is positive)."""
    xp = namespace(y_pred)
    y_true = ops.l2_normalize(xp, ops.as_float(xp, y_true, like=y_pred), axis=axis)
    return -xp.sum(y_true * ops.l2_normalize(xp, y_pred, axis=axis), axis=axis)


def log_cosh(y_true, y_pred):
    xp = namespace(y_pred)
    x = y_pred - ops.as_float(xp, y_true, like=y_pred)
    return xp.mean(x + ops.softplus(xp, -2.0 * x) - math.log(2.0), axis=-1)


def huber(y_true, y_pred, delta=1.0):
    xp = namespace(y_pred)
    err = xp.abs(y_pred - ops.as_float(xp, y_true, like=y_pred))
    quad = 0.5 * err * err
    return xp.mean(xp.where(err <= delta, quad, delta * err - 0.5 * delta * delta), axis=-1)


def _hinge_labels(xp, y_true, like):
    y_true = ops.as_float(xp, y_true, like=like)
    is_binary = xp.all((y_true == 0) | (y_true == 1))
    return xp.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true, y_pred):
    xp = namespace(y_pred)
    margin = 1.0 - _hinge_labels(xp, y_true, y_pred) * y_pred
    return xp.mean(xp.clip(margin, min=0.0), axis=-1)


def squared_hinge(y_true, y_pred):
    xp = namespace(y_pred)
    margin = xp.clip(1.0 - _hinge_labels(xp, y_true, y_pred) * y_pred, min=0.0)
    return xp.mean(margin * margin, axis=-1)


def categorical_hinge(y_true, y_pred):
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    pos = xp.sum(y_true * y_pred, axis=-1)
    neg = xp.max((1.0 - y_true) * y_pred, axis=-1)
    return xp.clip(neg - pos + 1.0, min=0.0)


# ----------------------------------------------------------------------------- classes


class Loss:
    """A loss object: a per-sample function, its options, a reduction and a name."""

    fn: Callable[..., Any] | None = None

    def __init__(self, reduction: Any = "sum_over_batch_size", name: str | None = None,
                 **options: Any):
        fn = type(self).fn
        if fn is not None:
            params = inspect.signature(fn).parameters
            valid = [p for p in params if p not in ("y_true", "y_pred")]
            check_kwargs(type(self).__name__, options, valid + ["reduction", "name"])
        self.reduction = check_reduction(reduction)
        self.name = name or (fn.__name__ if fn is not None else type(self).__name__)
        self.options = options

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Per-sample values (last axis reduced)."""
        return type(self).fn(y_true, y_pred, **self.options)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
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
    """Wraps a plain ``fn(y_true, y_pred) -> per-sample values`` as a loss object."""

    def __init__(self, fn: Callable[..., Any], reduction: Any = "sum_over_batch_size",
                 name: str | None = None, **options: Any):
        super().__init__(reduction=reduction, name=name or getattr(fn, "__name__", "loss"))
        self.wrapped = fn
        self.options = options

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self.wrapped(y_true, y_pred, **self.options)

    def get_config(self) -> dict[str, Any]:
        name = custom_name(self.wrapped) or getattr(self.wrapped, "__name__", None)
        return {"fn": name, **super().get_config()}


LOSSES = Registry("loss")
LOSS_CLASSES: dict[str, type[Loss]] = {}


def _define(class_name: str, fn: Callable[..., Any], *aliases: str) -> type[Loss]:
    cls = type(class_name, (Loss,), {"fn": staticmethod(fn), "__doc__": fn.__doc__})
    cls.__module__ = __name__
    LOSSES.add([fn.__name__, *aliases], cls)
    LOSS_CLASSES[class_name] = cls
    globals()[class_name] = cls
    return cls


_define("MeanSquaredError", mean_squared_error, "mse")
_define("MeanAbsoluteError", mean_absolute_error, "mae")
_define("MeanAbsolutePercentageError", mean_absolute_percentage_error, "mape")
_define("MeanSquaredLogarithmicError", mean_squared_logarithmic_error, "msle")
_define("BinaryCrossentropy", binary_crossentropy, "bce")
_define("CategoricalCrossentropy", categorical_crossentropy, "cce")
_define("SparseCategoricalCrossentropy", sparse_categorical_crossentropy, "scce")
_define("BinaryFocalCrossentropy", binary_focal_crossentropy)
_define("CategoricalFocalCrossentropy", categorical_focal_crossentropy)
_define("KLDivergence", kl_divergence, "kld", "kullback_leibler_divergence")
_define("Poisson", poisson)
_define("CosineSimilarity", cosine_similarity)
_define("LogCosh", log_cosh, "logcosh")
_define("Huber", huber, "huber_loss")
_define("Hinge", hinge)
_define("SquaredHinge", squared_hinge)
_define("CategoricalHinge", categorical_hinge)

CROSSENTROPY_KIND = {  # which accuracy a crossentropy loss implies (SPEC section 2)
    "binary_crossentropy": "binary",
    "binary_focal_crossentropy": "binary",
    "categorical_crossentropy": "categorical",
    "categorical_focal_crossentropy": "categorical",
    "sparse_categorical_crossentropy": "sparse",
}


def get(identifier: Any) -> Loss:
    """Resolve a loss given as a name, a Loss class or instance, or a plain function."""
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
    from .registry import get_custom

    name, cfg = config["class_name"], dict(config["config"])
    if name == "LossFunctionWrapper":
        return LossFunctionWrapper(get_custom(cfg.pop("fn")), **cfg)
    cls = LOSS_CLASSES.get(name) or get_custom(name)
    return cls.from_config(cfg)
