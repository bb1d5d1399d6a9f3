"""The metric protocol and the mean metrics every loss and accuracy is built from.

A metric is a set of pure functions over an explicit state: ``init() -> state``,
``update(state, y_true, y_pred, sample_weight) -> state``, ``merge(a, b)`` and
``result(state)``. States are dicts of sums (NumPy float32 arrays from ``init``; the
backends convert them), so merging batches or devices is addition. The Keras-style
stateful calls (``update_state``/``result``/``reset_state``) are a thin convenience on
top, for standalone use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import losses, ops
from ..ops import namespace
from ..registry import check_kwargs, custom_name

State = dict[str, Any]


class Metric:
    """Base class. Subclasses define ``init``, ``update`` and ``result``."""

    def __init__(self, name: str | None = None, dtype: Any = None):
        self.name = name or _snake(type(self).__name__)
        self.dtype = dtype
        self._state: State | None = None

    # -- the pure protocol
    def init(self) -> State:
        raise NotImplementedError

    def update(self, state: State, y_true: Any, y_pred: Any, sample_weight: Any = None) -> State:
        raise NotImplementedError

    def result(self, state: State) -> Any:
        raise NotImplementedError

    def merge(self, a: State, b: State) -> State:
        return {k: a[k] + b[k] for k in a}

    # -- configuration
    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    # -- stateful convenience (NumPy), as in Keras
    def reset_state(self) -> None:
        self._state = self.init()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if self._state is None:
            self.reset_state()
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        sw = None if sample_weight is None else np.asarray(sample_weight)
        self._state = self.update(self._state, y_true, y_pred, sw)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        state = self.update(self.init(), y_true, y_pred, sample_weight)
        return self.result(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # ``metric.result()`` without a state reads the stateful convenience state, as in Keras.
        super().__init_subclass__(**kwargs)
        pure = cls.__dict__.get("result")
        if pure is None:
            return

        def result(self: Metric, state: State | None = None) -> Any:
            if state is None:
                if self._state is None:
                    self.reset_state()
                return np.asarray(pure(self, self._state))
            return pure(self, state)

        result.__doc__ = pure.__doc__
        cls.result = result  # type: ignore[method-assign]


def _snake(name: str) -> str:
    out = [name[0].lower()]
    for prev, ch in zip(name, name[1:]):
        if ch.isupper() and not prev.isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def as_values(values: Any, like: Any) -> Any:
    """What a loss or metric function returned, as per-sample values in ``like``'s namespace:
    a Python float or a 0-d array counts as that value for every sample of the batch."""
    xp = namespace(like)
    if not hasattr(values, "shape"):
        values = xp.asarray(values, dtype=xp.float32, device=ops.device(like))
    if values.ndim == 0:
        values = xp.broadcast_to(values, (like.shape[0],))
    return values


def zeros(*shape: int) -> np.ndarray:
    return np.zeros(shape, dtype=np.float32)


class Mean(Metric):
    """The (weighted) mean of per-sample values: sum(w * v) / sum(w) over everything seen."""

    def init(self) -> State:
        return {"total": zeros(), "count": zeros()}

    def update_values(self, state: State, values: Any, sample_weight: Any = None) -> State:
        xp = namespace(values)
        values = ops.as_float(xp, values)
        if sample_weight is None:
            total, count = xp.sum(values), float(ops.size(values))
        else:
            w = losses.broadcast_weight(xp, sample_weight, values)
            total, count = xp.sum(values * w), xp.sum(w)
        return {"total": state["total"] + total, "count": state["count"] + count}

    def update(self, state: State, y_true: Any, y_pred: Any = None, sample_weight: Any = None):
        return self.update_values(state, y_true, sample_weight)

    def result(self, state: State) -> Any:
        xp = namespace(state["total"])
        return losses.safe_divide(xp, state["total"], state["count"])


class MeanMetricWrapper(Mean):
    """A mean metric over a per-sample function ``fn(y_true, y_pred, **options)``."""

    fn: Callable[..., Any] | None = None

    def __init__(self, fn: Callable[..., Any] | None = None, name: str | None = None,
                 dtype: Any = None, **options: Any):
        self.wrapped = fn or type(self).fn
        if type(self).fn is not None:
            params = inspect.signature(type(self).fn).parameters
            check_kwargs(type(self).__name__, options,
                         [p for p in params if p not in ("y_true", "y_pred")] + ["name", "dtype"])
        super().__init__(name=name or getattr(self.wrapped, "__name__", None), dtype=dtype)
        self.options = options

    def update(self, state: State, y_true: Any, y_pred: Any, sample_weight: Any = None):
        y_true, y_pred = losses.align(y_true, y_pred)
        values = as_values(self.wrapped(y_true, y_pred, **self.options), y_pred)
        return self.update_values(state, values, sample_weight)

    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, **self.options}
        if type(self).fn is None:
            config["fn"] = custom_name(self.wrapped) or getattr(self.wrapped, "__name__", None)
        return config


def custom_metric(name: str, fn: Callable[..., Any]) -> MeanMetricWrapper:
    """A mean metric named ``name`` over ``fn(y_true, y_pred) -> per-sample values``."""
    return MeanMetricWrapper(fn, name=name)


# ----------------------------------------------------------------------------- accuracies


def binary_accuracy(y_true, y_pred, threshold=0.5):
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    hit = y_true == ops.as_float(xp, y_pred > threshold, like=y_pred)
    return xp.mean(xp.astype(hit, xp.float32), axis=-1)


def categorical_accuracy(y_true, y_pred):
    xp = namespace(y_pred)
    hit = xp.argmax(y_true, axis=-1) == xp.argmax(y_pred, axis=-1)
    return xp.astype(hit, xp.float32)


def _sparse_labels(xp, y_true, y_pred):
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return xp.astype(y_true, xp.int32)


def sparse_categorical_accuracy(y_true, y_pred):
    xp = namespace(y_pred)
    labels = _sparse_labels(xp, y_true, y_pred)
    return xp.astype(xp.argmax(y_pred, axis=-1) == labels, xp.float32)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    xp = namespace(y_pred)
    labels = xp.astype(xp.argmax(y_true, axis=-1), xp.int32)
    return xp.astype(ops.in_top_k(xp, y_pred, labels, k), xp.float32)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    xp = namespace(y_pred)
    labels = _sparse_labels(xp, y_true, y_pred)
    return xp.astype(ops.in_top_k(xp, y_pred, labels, k), xp.float32)


def cosine_similarity(y_true, y_pred, axis=-1):
    """The metric: the (positive) cosine similarity of the last axis."""
    return -losses.cosine_similarity(y_true, y_pred, axis=axis)
