"""The metric protocol and the mean metrics every loss and accuracy is built from.

A metric is a set of pure functions over an explicit state: ``init() -> state``,
``update(state, y_true, y_pred, sample_weight) -> state``, ``merge(a, b)`` and
``result(state)``. States are dicts of arrays (NumPy float32 from ``init``; the backends
convert them); each state declares how two of them merge (``Metric.merges``: "sum" unless
declared "max" or "min"), and every merge (of steps' increments, of torch DDP processes,
in the objective) uses ``Metric.merge``, which follows the declaration. The Keras-style
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
from ..registry import check_kwargs, custom_name, keywords_checked

State = dict[str, Any]
MERGES = ("sum", "max", "min")  # how a metric state merges with another (Metric.merges)


def merge_values(how: str, a: Any, b: Any) -> Any:
    """Two values of one state merged as declared (``"sum"``, ``"max"`` or ``"min"``)."""
    if how == "sum":
        return a + b
    if how == "max":
        return namespace(a, b).maximum(a, b)
    if how == "min":
        return namespace(a, b).minimum(a, b)
    raise ValueError(f"A metric state merges by one of {MERGES}; received {how!r}.")


class Metric:
    """Base class of metrics: pure functions over an explicit state.

    Subclasses define ``init() -> state`` (a dict of arrays), ``update(state, y_true,
    y_pred, sample_weight) -> state`` and ``result(state)``. Each state key merges by
    summing unless the class declares otherwise in ``merges`` (``{"key": "max"}``; "sum",
    "max" or "min"); ``merge`` follows the declaration, and kompile merges states only
    through it (the increments of several steps, torch DDP's processes). ``init`` must
    return the identity of each merge (0 for "sum", the lowest value for "max"). Written
    with the array API, one metric serves
    JAX (inside ``jax.jit``) and torch. ``update_state`` / ``result()`` / ``reset_state``
    give Keras's stateful use on NumPy arrays.

    Args:
        name: The log name. Default ``None``: the class name in snake case.
        dtype: Accepted for Keras compatibility; states are float32.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> class MaxError(kp.metrics.Metric):
        ...     def init(self):
        ...         return {"max": np.zeros((), np.float32)}
        ...     merges = {"max": "max"}  # processes and shards merge by max, not sum
        ...     def update(self, state, y_true, y_pred, sample_weight=None):
        ...         return {"max": np.maximum(state["max"], abs(y_pred - y_true).max())}
        ...     def result(self, state):
        ...         return state["max"]
        >>> metric = MaxError()
        >>> metric.update_state(np.zeros(3), np.array([0.5, -2.0, 1.0]))
        >>> float(metric.result())
        2.0
    """

    merges: dict[str, str] = {}  # state key -> "sum" (default), "max" or "min"

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
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

    def merge_rule(self, key: str) -> str:
        """How state ``key`` merges: ``"sum"``, ``"max"`` or ``"min"`` (``merges``)."""
        return self.merges.get(key, "sum")

    def merge(self, a: State, b: State) -> State:
        """Two states of this metric as one (as if one had seen both's data), each key as
        ``merges`` declares."""
        return {k: merge_values(self.merge_rule(k), a[k], b[k]) for k in a}

    # -- configuration
    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    # -- stateful convenience (NumPy), as in Keras
    def reset_state(self) -> None:
        self._state = self.init()

    def update_state(self, y_true: Any, y_pred: Any = None, sample_weight: Any = None) -> None:
        # y_pred is optional for Mean only: Keras's Mean.update_state(values, sample_weight)
        self._check_y_pred(y_pred)
        if self._state is None:
            self.reset_state()
        y_true, y_pred, sample_weight = (None if a is None else np.asarray(a)
                                         for a in (y_true, y_pred, sample_weight))
        self._state = self.update(self._state, y_true, y_pred, sample_weight)  # type: ignore[arg-type]

    def __call__(self, y_true: Any, y_pred: Any = None, sample_weight: Any = None) -> Any:
        self._check_y_pred(y_pred)
        if isinstance(y_true, list | tuple):  # Keras takes Python lists too
            y_true, y_pred, sample_weight = (None if a is None else np.asarray(a)
                                             for a in (y_true, y_pred, sample_weight))
        state = self.update(self.init(), y_true, y_pred, sample_weight)
        return self.result(state)

    def _check_y_pred(self, y_pred: Any) -> None:
        if y_pred is None and type(self).update is not Mean.update:
            raise TypeError(f"{type(self).__name__} needs `y_pred`: call it with (y_true, "
                            "y_pred, sample_weight=None); only Mean takes (values, "
                            "sample_weight=None).")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # ``metric.result()`` without a state reads the stateful convenience state, as in Keras.
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:  # unknown keywords: the valid names, the closest one
            cls.__init__ = keywords_checked(cls.__dict__["__init__"])  # type: ignore[method-assign]
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
    """The (weighted) mean of per-sample values: sum(w * v) / sum(w) over everything seen.

    Its stateful calls take Keras's ``Mean`` arguments: ``update_state(values,
    sample_weight=None)`` and ``metric(values, sample_weight=None)`` (a second positional
    argument is the sample weight, as in Keras, where ``update_state(y_true, y_pred)`` from
    ``compile`` weights ``y_true`` by ``y_pred``).

    Args:
        name: The log name. Default ``None``: ``"mean"``.
        dtype: Accepted for Keras compatibility.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.Mean()
        >>> metric.update_state(np.array([1.0, 2.0, 6.0]))
        >>> float(metric.result())
        3.0
        >>> metric.update_state(np.array([4.0, 0.0]), sample_weight=np.array([3.0, 0.0]))
        >>> float(metric.result())
        3.5
    """

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
        if y_pred is not None:  # Keras's Mean.update_state(values, sample_weight), positional
            if sample_weight is not None:
                raise TypeError("Mean.update_state takes (values, sample_weight=None); "
                                "received a third argument as well.")
            sample_weight = y_pred
        return self.update_values(state, y_true, sample_weight)

    def result(self, state: State) -> Any:
        xp = namespace(state["total"])
        return losses.safe_divide(xp, state["total"], state["count"])


class MeanMetricWrapper(Mean):
    """A mean metric over a per-sample function ``fn(y_true, y_pred, **options)``.

    Args:
        fn: The per-sample function. Default ``None``: the class's ``fn``.
        name: The log name. Default ``None``: ``fn.__name__``.
        dtype: Accepted for Keras compatibility.
        options: Keyword arguments passed to ``fn`` after ``y_true, y_pred``. Default
            ``None``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> def within_one(y_true, y_pred):
        ...     return (abs(y_pred - y_true) <= 1).astype("float32").mean(axis=-1)
        >>> metric = kp.metrics.MeanMetricWrapper(within_one)
        >>> metric.update_state(np.zeros((4, 1)), np.array([[0.5], [2.], [1.], [3.]]))
        >>> float(metric.result())
        0.5
    """

    fn: Callable[..., Any] | None = None

    def __init__(self, fn: Callable[..., Any] | None = None, name: str | None = None,
                 dtype: Any = None, options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        self.wrapped: Any = fn or type(self).fn
        if type(self).fn is not None:
            params = inspect.signature(type(self).fn).parameters  # type: ignore[arg-type]
            check_kwargs(type(self).__name__, options,
                         [p for p in params if p not in ("y_true", "y_pred")] + ["name", "dtype"])
        super().__init__(name=name or getattr(self.wrapped, "__name__", None), dtype=dtype)
        self.options = options

    def update(self, state: State, y_true: Any, y_pred: Any,  # type: ignore[override]
               sample_weight: Any = None):
        y_true, y_pred = losses.align(y_true, y_pred)
        values = as_values(self.wrapped(y_true, y_pred, **self.options), y_pred)
        return self.update_values(state, values, sample_weight)

    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, **self.options}
        if type(self).fn is None:
            config["fn"] = custom_name(self.wrapped) or getattr(self.wrapped, "__name__", None)
        return config


def _options(local_vars: dict[str, Any]) -> dict[str, Any]:
    """A mean metric class's own options, from its ``__init__``'s ``locals()``."""
    return {k: v for k, v in local_vars.items()
            if k not in ("self", "name", "dtype", "__class__")}


def custom_metric(name: str, fn: Callable[..., Any]) -> MeanMetricWrapper:
    """A mean metric named ``name`` over ``fn(y_true, y_pred) -> per-sample values``.

    Args:
        name: The log name (``<output>_<name>`` for several outputs).
        fn: The per-sample function: targets and predictions in, one value per sample
            out (last axis reduced), written with array-API, ``jax.numpy`` or torch ops.

    Returns:
        A ``MeanMetricWrapper`` to put in ``compile(metrics=[...])``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.custom_metric("abs_err", lambda t, p: abs(p - t).mean(axis=-1))
        >>> metric.name, float(metric(np.zeros((2, 1)), np.ones((2, 1))))
        ('abs_err', 1.0)
    """
    return MeanMetricWrapper(fn, name=name)


# ----------------------------------------------------------------------------- accuracies


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> Any:
    """How often thresholded predictions equal binary targets.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.
        threshold: Predictions above it count as 1, others as 0. Default ``0.5``.

    Returns:
        Per-sample values (1.0 for a hit, 0.0 for a miss; the mean for ``binary_accuracy``).
    """
    xp = namespace(y_pred)
    y_true = ops.as_float(xp, y_true, like=y_pred)
    hit = y_true == ops.as_float(xp, y_pred > threshold, like=y_pred)
    return xp.mean(xp.astype(hit, xp.float32), axis=-1)


def categorical_accuracy(y_true: Any, y_pred: Any) -> Any:
    """How often the predicted class (argmax) equals the one-hot target's.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values (1.0 for a hit, 0.0 for a miss; the mean for ``binary_accuracy``).
    """
    xp = namespace(y_pred)
    hit = xp.argmax(y_true, axis=-1) == xp.argmax(y_pred, axis=-1)
    return xp.astype(hit, xp.float32)


def _sparse_labels(xp, y_true, y_pred):
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return xp.astype(y_true, xp.int32)


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> Any:
    """How often the predicted class (argmax) equals the integer label.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.

    Returns:
        Per-sample values (1.0 for a hit, 0.0 for a miss; the mean for ``binary_accuracy``).
    """
    xp = namespace(y_pred)
    labels = _sparse_labels(xp, y_true, y_pred)
    return xp.astype(xp.argmax(y_pred, axis=-1) == labels, xp.float32)


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> Any:
    """How often the one-hot target's class is among the ``k`` highest predictions.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.
        k: How many of the highest-scoring classes count as a hit. Default ``5``.

    Returns:
        Per-sample values (1.0 for a hit, 0.0 for a miss; the mean for ``binary_accuracy``).
    """
    xp = namespace(y_pred)
    labels = xp.astype(xp.argmax(y_true, axis=-1), xp.int32)
    return xp.astype(ops.in_top_k(xp, y_pred, labels, k), xp.float32)


def sparse_top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> Any:
    """How often the integer label is among the ``k`` highest predictions.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.
        k: How many of the highest-scoring classes count as a hit. Default ``5``.

    Returns:
        Per-sample values (1.0 for a hit, 0.0 for a miss; the mean for ``binary_accuracy``).
    """
    xp = namespace(y_pred)
    labels = _sparse_labels(xp, y_true, y_pred)
    return xp.astype(ops.in_top_k(xp, y_pred, labels, k), xp.float32)


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Any:
    """The mean cosine similarity of targets and predictions along ``axis``.

    Args:
        y_true: Targets, an array (NumPy, JAX or torch).
        y_pred: Predictions, the same kind of array.
        axis: The axis holding the vectors. Default ``-1``.

    Returns:
        Per-sample cosine similarities.
    """
    return -losses.cosine_similarity(y_true, y_pred, axis=axis)
