"""The Loss base class, the loss registry and lookup (get, serialize, deserialize).

The loss classes register themselves in classes.py and probabilistic.py; the package
``kompile.losses`` re-exports everything, so ``kp.losses.mean_squared_error`` works.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..registry import Registry, check_kwargs, custom_name, keywords_checked, type_error
from .functions import (  # noqa: F401  (used by the classes through this module)
    REDUCTIONS,
    align,
    binary_crossentropy,
    binary_focal_crossentropy,
    broadcast_weight,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
    check_reduction,
    cosine_similarity,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    safe_divide,
    sparse_categorical_crossentropy,
    squared_hinge,
    weighted_reduce,
)

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
        return type(self).fn(y_true, y_pred, **self.options)  # type: ignore[misc]

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The reduced, weighted loss of a batch.

        Args:
            y_true: Targets.
            y_pred: Predictions (a rank-1 ``(N,)`` output counts as ``(N, 1)``).
            sample_weight: Optional per-sample weights ``(N,)`` or ``(N, T)``.

        Returns:
            A scalar, or the per-sample values when ``reduction`` is ``"none"``.

        Raises:
            ValueError: A built-in loss given targets that do not pair with the predictions
                (which it would broadcast), as in ``fit``.
        """
        if type(self).fn is not None and tuple(y_true.shape) not in target_shapes(
                self, tuple(y_pred.shape)):  # a built-in loss would broadcast silently
            raise ValueError(
                f"{self.name}: `y_true` of shape {tuple(y_true.shape)} cannot pair with "
                f"`y_pred` of shape {tuple(y_pred.shape)}; they must have the same shape"
                + (" up to the class axis." if crossentropy_kind(self) == "sparse" else
                   ". For integer class labels use SparseCategoricalCrossentropy."))
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


# the loss classes (one per function, with explicit signatures) live in classes.py and
# probabilistic.py, which register themselves when the package is imported
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


def class_axis(loss: Loss, per_sample_rank: int) -> int:
    """Where a crossentropy's ``axis`` option puts the classes in an output's per-sample
    shape (batch axis excluded), as a non-negative index; the last axis by default."""
    axis = loss.options.get("axis", -1)
    rank = per_sample_rank + 1
    if not -rank <= axis < rank or axis % rank == 0:
        raise ValueError(f"{loss.name}: `axis`={axis} must name a class axis of the output, "
                         f"which has rank {rank} with its batch axis (axis 0, not a class axis).")
    return axis % rank - 1


def target_shapes(loss: Loss, pred_shape: tuple[int, ...]) -> set[tuple[int, ...]]:
    """The target shapes a built-in loss pairs with a prediction shape (whole arrays, batch
    axis included; a rank-1 prediction counts as ``(N, 1)``): the same shape (or with a
    trailing 1), or, for sparse labels, the shape without the class axis (or with it of
    size 1)."""
    p = tuple(pred_shape) if len(pred_shape) > 1 else (*pred_shape, 1)
    if crossentropy_kind(loss) == "sparse":
        c = loss.options.get("axis", -1) % len(p)
        return {p[:c] + p[c + 1:], p[:c] + (1,) + p[c + 1:]}
    return {p, p + (1,)} | ({p[:-1]} if p[-1] == 1 else set())


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
    from ..registry import get_custom

    name, cfg = config["class_name"], dict(config["config"])
    if name == "LossFunctionWrapper":
        fn = get_custom(cfg.pop("fn"))
        return LossFunctionWrapper(fn, cfg.pop("reduction", "sum_over_batch_size"),
                                   cfg.pop("name", None), cfg)
    cls = LOSS_CLASSES.get(name) or get_custom(name)
    return cls.from_config(cfg)
