"""Keras's metric subclassing protocol on ``kp.metrics.Metric``.

A subclass that defines ``update_state`` (and not kompile's pure ``update``) is written
as in Keras: it creates its state with ``self.add_variable(...)`` in ``__init__``, changes
it in ``update_state(y_true, y_pred, sample_weight=None)`` with ``variable.assign(...)``,
``assign_add`` or ``assign_sub``, reads it in ``result()`` and may override
``reset_state()``. The keras-io guide's ``CategoricalTruePositives`` ports by changing
only its base class.

Inside kompile's compiled steps the same methods run as pure functions: the variables are
bound to the step's metric state for the duration of one call (``update``/``result`` of
the pure protocol, made here from the Keras-style methods), so they trace under
``jax.jit`` and run on torch tensors alike; the state is a dict of the variables' values,
named by the variables, and merged across devices by each variable's ``aggregation``
(``"sum"``: added, the default; ``"mean"``, ``"only_first_replica"`` and ``"none"``:
the first replica's value is kept). Outside a step (``metric.update_state(...)`` by hand)
the variables hold their own values, as in Keras.

This module also converts Keras metric and loss objects given to ``compile``
(``keras.metrics.SparseCategoricalAccuracy()``) into kompile's by class name and config.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

State = dict[str, Any]

_INITIALIZERS: dict[str, Callable[[tuple[int, ...], Any], np.ndarray]] = {
    "zeros": lambda shape, dtype: np.zeros(shape, dtype),
    "ones": lambda shape, dtype: np.ones(shape, dtype),
}
AGGREGATIONS = ("sum", "mean", "only_first_replica", "none")


class MetricVariable:
    """One piece of a Keras-style metric's state, made by ``Metric.add_variable``.

    Holds an array (NumPy outside steps; the step's JAX or torch array while a step runs).
    ``assign``, ``assign_add`` and ``assign_sub`` replace it; arithmetic, ``numpy()`` and
    ``np.asarray`` read it, as a Keras variable does.
    """

    def __init__(self, name: str, shape: tuple[int, ...], dtype: Any, initial: np.ndarray,
                 aggregation: str):
        self.name, self.shape, self.dtype = name, shape, dtype
        self.initial, self.aggregation = initial, aggregation
        self.value: Any = np.array(initial, copy=True)

    def assign(self, value: Any) -> MetricVariable:
        self.value = _as_like(value, self.value)
        return self

    def assign_add(self, value: Any) -> MetricVariable:
        return self.assign(self.value + self._operand(value))

    def assign_sub(self, value: Any) -> MetricVariable:
        return self.assign(self.value - self._operand(value))

    def _operand(self, value: Any) -> Any:
        """``value`` as NumPy when the variable holds NumPy (use outside a step, where
        update_state may compute with torch or JAX arrays)."""
        value = _raw(value)
        if isinstance(self.value, np.ndarray) and hasattr(value, "dtype") and not isinstance(
                value, np.ndarray | np.generic):
            value = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        return value

    def numpy(self) -> np.ndarray:
        return np.asarray(self.value)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.value, dtype=dtype)

    def __repr__(self) -> str:
        return f"<MetricVariable {self.name} shape={self.shape} dtype={self.dtype}>"

    # arithmetic reads the value (``self.total / self.count`` in ``result``)
    def __add__(self, o): return self.value + _raw(o)  # noqa: E704
    def __radd__(self, o): return _raw(o) + self.value  # noqa: E704
    def __sub__(self, o): return self.value - _raw(o)  # noqa: E704
    def __rsub__(self, o): return _raw(o) - self.value  # noqa: E704
    def __mul__(self, o): return self.value * _raw(o)  # noqa: E704
    def __rmul__(self, o): return _raw(o) * self.value  # noqa: E704
    def __truediv__(self, o): return self.value / _raw(o)  # noqa: E704
    def __rtruediv__(self, o): return _raw(o) / self.value  # noqa: E704
    def __neg__(self): return -self.value  # noqa: E704
    def __getitem__(self, i): return self.value[i]  # noqa: E704
    def __float__(self): return float(self.value)  # noqa: E704

    # keras.ops and jax.numpy accept objects with __jax_array__
    def __jax_array__(self) -> Any:
        return self.value


def _raw(value: Any) -> Any:
    return value.value if isinstance(value, MetricVariable) else value


def _as_like(value: Any, like: Any) -> Any:
    """``value`` as an array of ``like``'s kind and dtype (a Python number into NumPy)."""
    value = _raw(value)
    if isinstance(like, np.ndarray):  # outside a step: the variable holds NumPy
        if hasattr(value, "detach"):
            value = value.detach().cpu()
        return np.asarray(value, dtype=like.dtype).reshape(like.shape)
    if not hasattr(value, "dtype"):  # a Python number inside a step
        return value + like * 0
    dtype = getattr(like, "dtype", None)
    if dtype is not None and value.dtype != dtype:
        value = value.astype(dtype) if hasattr(value, "astype") else value.to(dtype)
    return value


# ---------------------------------------------------------------------- the protocol
class KerasStyle:
    """The Keras-style half of ``kp.metrics.Metric``: ``add_variable`` and ``variables``."""

    def add_variable(self, shape: Any = (), initializer: Any = "zeros", dtype: Any = None,
                     aggregation: str = "sum", name: str | None = None) -> MetricVariable:
        """Create a piece of the metric's state (Keras's ``Metric.add_variable``).

        Args:
            shape: The variable's shape. Default ``()``: a scalar.
            initializer: ``"zeros"``, ``"ones"``, a number, or a callable
                ``(shape, dtype) -> array``. Default ``"zeros"``.
            dtype: The variable's dtype. Default ``None``: float32.
            aggregation: How replicas' values combine: ``"sum"`` (default) adds them;
                ``"mean"``, ``"only_first_replica"`` and ``"none"`` keep the first's.
            name: The variable's name, unique within the metric. Default ``None``:
                ``variable_<n>``.

        Returns:
            A ``MetricVariable`` with ``assign``, ``assign_add`` and ``assign_sub``.

        Raises:
            ValueError: An unknown ``initializer`` or ``aggregation``.

        Example:
            >>> import kompile as kp
            >>> class Count(kp.metrics.Metric):
            ...     def __init__(self, name="count"):
            ...         super().__init__(name=name)
            ...         self.n = self.add_variable(shape=(), name="n")
            ...     def update_state(self, y_true, y_pred, sample_weight=None):
            ...         self.n.assign_add(y_true.shape[0])
            ...     def result(self):
            ...         return self.n.value
            >>> import numpy as np
            >>> m = Count()
            >>> m.update_state(np.zeros(3), np.zeros(3))
            >>> float(m.result())
            3.0
        """
        shape = tuple(int(s) for s in (shape if isinstance(shape, list | tuple) else (shape,)))
        dtype = np.dtype(str(dtype) if dtype is not None else "float32")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"add_variable: `aggregation` must be one of "
                             f"{list(AGGREGATIONS)}; received {aggregation!r}.")
        initial = _initial(initializer, shape, dtype)
        variables = self.__dict__.setdefault("_keras_variables", [])
        name = name or f"variable_{len(variables)}"
        if any(v.name == name for v in variables):
            name = f"{name}_{len(variables)}"
        var = MetricVariable(name, shape, dtype, initial, aggregation)
        variables.append(var)
        return var

    def add_weight(self, shape: Any = (), initializer: Any = "zeros", dtype: Any = None,
                   aggregation: str = "sum", name: str | None = None) -> MetricVariable:
        """``add_variable`` under its Keras 2 name (same arguments)."""
        return self.add_variable(shape, initializer, dtype, aggregation, name)

    @property
    def variables(self) -> list[MetricVariable]:
        """The variables made by ``add_variable``, in creation order."""
        return list(_variables(self))


def _initial(initializer: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    if isinstance(initializer, str):
        if initializer not in _INITIALIZERS:
            raise ValueError(f"add_variable: `initializer` must be one of "
                             f"{sorted(_INITIALIZERS)}, a number or a callable (shape, dtype); "
                             f"received {initializer!r}.")
        return _INITIALIZERS[initializer](shape, dtype)
    if callable(initializer):
        return np.asarray(initializer(shape, dtype), dtype=dtype)
    return np.full(shape, initializer, dtype)


def _raw_method(cls: type, name: str) -> Any:
    """The user's own method ``name`` (not the pure wrapper ``adapt`` made for it)."""
    fn = getattr(cls, name)
    return getattr(fn, "__keras_raw__", fn)


def adapt_if_keras_style(cls: type, base: type) -> bool:
    """Give ``cls`` (a subclass of ``base``, kp.metrics.Metric) the pure protocol made
    from its Keras-style methods, when it is written with Keras's protocol (it defines
    ``update_state`` and not kompile's ``update``). Returns whether it is."""
    below = cls.__mro__[:cls.__mro__.index(base)]
    keras = any("update_state" in vars(c) for c in below)
    pure = any("update" in vars(c) and not hasattr(vars(c)["update"], "__keras_raw__")
               for c in below)
    if not keras or pure:
        return False
    _adapt(cls, base)
    return True


@contextlib.contextmanager
def bound(metric: Any, state: State | None) -> Iterator[None]:
    """The metric's variables hold ``state``'s values for the block, then their own again."""
    variables = _variables(metric)
    if state is None:
        yield
        return
    saved = [v.value for v in variables]
    try:
        for v in variables:
            v.value = state[v.name]
        yield
    finally:
        for v, old in zip(variables, saved):
            v.value = old


def _variables(metric: Any) -> list[MetricVariable]:
    return metric.__dict__.get("_keras_variables", [])


def _read(metric: Any) -> State:
    return {v.name: v.value for v in _variables(metric)}


def _adapt(cls: Any, base: Any) -> None:
    keras_update = _raw_method(cls, "update_state")
    keras_result = _raw_method(cls, "result")
    keras_reset = _raw_method(cls, "reset_state")
    own_reset = keras_reset is not base.reset_state

    def init(self: Any) -> State:
        with bound(self, _read(self)):
            for v in _variables(self):
                v.value = np.array(v.initial, copy=True)
            if own_reset:
                keras_reset(self)  # the user's reset, on fresh NumPy values
            return {k: np.asarray(a) for k, a in _read(self).items()}

    def update(self: Any, state: State, y_true: Any, y_pred: Any,
               sample_weight: Any = None) -> State:
        with bound(self, state):
            keras_update(self, y_true, y_pred, sample_weight)
            return _read(self)

    def result(self: Any, state: State | None = None) -> Any:
        with bound(self, state):
            out = _raw(keras_result(self))
        return np.asarray(out) if state is None else out

    def reset_state(self: Any) -> None:
        for v in _variables(self):
            v.value = np.array(v.initial, copy=True)

    def merge(self: Any, a: State, b: State) -> State:
        return {v.name: a[v.name] + b[v.name] if v.aggregation == "sum" else a[v.name]
                for v in _variables(self)}

    pair: Any
    for pair in ((update, keras_update), (result, keras_result)):
        pair[0].__keras_raw__ = pair[1]
    fn: Any
    for fn in (init, update, result, merge, reset_state):
        fn.__qualname__ = f"{cls.__qualname__}.{fn.__name__}"
        fn.__module__ = cls.__module__  # the user's code (never probed as kompile's own)
    result.__doc__ = keras_result.__doc__
    cls.init, cls.update, cls.merge, cls.result = init, update, merge, result
    if not own_reset:
        cls.reset_state = reset_state
