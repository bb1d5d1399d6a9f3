"""Optimizers are a table: Keras names and defaults -> an optax chain or a torch.optim class.

Owns the backend-neutral specs (``Adam(learning_rate=1e-3)``) with Keras's argument names,
defaults and checks; their translation to optax and torch.optim; clipping; Keras's
decoupled weight decay (``w -= w * weight_decay * lr`` before each update); the learning
rate kept in the optimizer state (settable without a retrace); native optax/torch
optimizers used as given; the ``LossScaleOptimizer`` spec (the scaling is precision.py's
on JAX, ``torch.amp.GradScaler``'s on torch). The update math is optax's and torch's;
where Keras's differs from optax's, a short per-variable rule written as Keras writes it
(Adam's epsilon and AMSGrad, Nadam, Ftrl, Adafactor); where it differs from torch's, a
pre-step hook puts Keras's numbers in the param groups. Class docstrings say what remains
different. The classes are written in classic.py (SGD, RMSprop, Adagrad,
Adadelta, Ftrl) and adam.py (the Adam family, Lion, Adafactor) on the base class of
optimizers/base.py, and re-exported here. Importing this module imports neither JAX, optax
nor torch.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

from .. import schedules  # noqa: F401  (kp.optimizers.schedules, as in Keras)
from ..registry import custom_name, get_custom, keywords_checked, type_error
from .adam import Adafactor, Adam, Adamax, AdamW, Lion, Nadam
from .base import OPTIMIZERS, Optimizer
from .classic import SGD, Adadelta, Adagrad, Ftrl, RMSprop
from .recent import Lamb, Muon, ScheduleFreeAdamW

# ---------------------------------------------------------------------- native and wrapped
_NATIVE = ("Cannot serialise a native {}: a compile config holds only kompile optimizers. "
           "Pass a name ('adam') or a kp.optimizers object (kp.optimizers.Adam(1e-3)) instead.")


class NativeOptax(Optimizer):
    """A user's ``optax.GradientTransformation``, used as is. Its learning rate can be read
    and set only when it sits in the state (``optax.inject_hyperparams``). Passing an
    optax transformation as ``compile(optimizer=...)`` wraps it in this class.

    Args:
        tx: An ``optax.GradientTransformation`` (JAX backend only).
    """

    name = "optax"

    def __init__(self, tx: Any) -> None:
        self.tx = tx

    def __repr__(self) -> str:
        return f"NativeOptax({self.tx!r})"

    def build_optax(self) -> Any:
        return self.tx

    def build_torch(self, params: Any) -> Any:
        raise TypeError("An optax optimizer cannot train a torch module: pass a torch.optim "
                        "optimizer, a kp.optimizers object or a name such as 'adam'.")

    def get_config(self) -> dict[str, Any]:
        raise ValueError(_NATIVE.format("optax GradientTransformation"))


class NativeTorch(Optimizer):
    """A user's ``torch.optim`` optimizer: an instance, used as is (it already holds the
    module's parameters), or a class, instantiated with the parameters and ``options``.

    Args:
        optimizer: A ``torch.optim.Optimizer`` instance built on the module's parameters,
            or a ``torch.optim.Optimizer`` subclass.
        options: Keyword arguments for the class (``{"lr": 1e-3}``); only with a class.
            Default ``None``.
    """

    def __init__(self, optimizer: Any, options: dict[str, Any] | None = None) -> None:
        is_class = isinstance(optimizer, type)
        kwargs = dict(options or {})
        if kwargs and not is_class:
            raise TypeError("NativeTorch takes `options` only with an optimizer class; "
                            f"received an instance of {type(optimizer).__name__}.")
        cls = optimizer if is_class else type(optimizer)
        closure = inspect.signature(cls.step).parameters.get("closure")
        if closure is not None and closure.default is inspect.Parameter.empty:
            raise ValueError(
                f"`optimizer`: torch.optim.{cls.__name__} needs a closure at every step "
                "(optimizer.step(closure), which re-evaluates the loss), and kompile's "
                "training step calls step() once per batch without one. Use an optimizer "
                "whose step() takes no closure (torch.optim.Adam, 'adam', ...), or train "
                "with your own loop.")
        self.optimizer, self.kwargs = optimizer, kwargs
        self.name = cls.__name__.lower()
        self._learning_rate = kwargs.get("lr") if is_class else optimizer.param_groups[0]["lr"]

    def __repr__(self) -> str:
        kwargs = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"NativeTorch({self.optimizer!r}{kwargs})"

    def build_torch(self, params: Any) -> Any:
        if isinstance(self.optimizer, type):
            return self.optimizer(params, **self.kwargs)
        held = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        if not any(id(p) in held for p in params):
            raise ValueError("The torch optimizer given holds none of this model's parameters: "
                             "create it with module.parameters(), or pass its class, e.g. "
                             "kp.optimizers.NativeTorch(torch.optim.Adam, {'lr': 1e-3}).")
        return self.optimizer

    def build_optax(self) -> Any:
        raise TypeError("A torch optimizer cannot train a Flax module: pass an optax "
                        "GradientTransformation, a kp.optimizers object or a name ('adam').")

    def get_config(self) -> dict[str, Any]:
        raise ValueError(_NATIVE.format("torch.optim optimizer"))


class LossScaleOptimizer:
    """Dynamic loss scaling around an optimizer (SPEC 5): a non-finite step is skipped and
    halves the scale; ``dynamic_growth_steps`` finite steps in a row double it. The JAX
    backend keeps the scale in its step state; torch uses ``torch_grad_scaler()``. Other
    attributes (``learning_rate``, ``build_optax``, ``torch_clip``, ...) are the inner's.

    ``compile(auto_scale_loss=True)`` (the default) wraps the optimizer in one for the
    ``"mixed_float16"`` policy; create one yourself to choose its numbers.

    Args:
        inner_optimizer: The optimizer to wrap, in any form ``compile`` accepts (a name,
            a ``kp.optimizers`` object, a native optax/torch optimizer).
        initial_scale: The loss scale to start from. Default ``2**15``.
        dynamic_growth_steps: Finite steps in a row after which the scale doubles.
            Default 2000.

    Example:
        >>> import kompile as kp
        >>> opt = kp.optimizers.LossScaleOptimizer("sgd", initial_scale=1024.0)
        >>> opt.dynamic_scale, opt.inner_optimizer.learning_rate
        (1024.0, 0.01)
    """

    is_loss_scale = True
    name = "loss_scale_optimizer"

    @keywords_checked
    def __init__(self, inner_optimizer: Any, initial_scale: float = 2.0**15,
                 dynamic_growth_steps: int = 2000) -> None:
        self.inner = get(inner_optimizer)
        if getattr(self.inner, "is_loss_scale", False):
            raise ValueError("LossScaleOptimizer cannot wrap another LossScaleOptimizer.")
        self.initial_scale = float(initial_scale)
        self.dynamic_growth_steps = int(dynamic_growth_steps)
        self._reader: Any = None  # set by a backend; reads the live scale (a host sync)

    inner_optimizer = property(lambda self: self.inner)

    @property
    def learning_rate(self) -> Any:
        """The inner optimizer's learning rate (live once the model trains; settable)."""
        return self.inner.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        self.inner.learning_rate = value

    @property
    def iterations(self) -> int:
        """The inner optimizer's steps taken (steps skipped for a non-finite gradient do not
        count)."""
        return self.inner.iterations

    @property
    def dynamic_scale(self) -> float:
        return self._reader() if self._reader is not None else self.initial_scale

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def torch_grad_scaler(self, device: str = "cuda") -> Any:
        torch = importlib.import_module("torch")
        return torch.amp.GradScaler(device, init_scale=self.initial_scale, growth_factor=2.0,
                                    backoff_factor=0.5, growth_interval=self.dynamic_growth_steps)

    def get_config(self) -> dict[str, Any]:
        return {"inner_optimizer": serialize(self.inner), "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LossScaleOptimizer:
        config = dict(config)
        return cls(deserialize(config.pop("inner_optimizer")), **config)


# ---------------------------------------------------------------------- lookup
CLASSES: dict[str, Any] = {c.__name__: c for c in (RMSprop, SGD, Adam, AdamW, Adagrad, Adadelta,
                                                   Adamax, Nadam, Lion, Ftrl, Adafactor,
                                                   Lamb, Muon, ScheduleFreeAdamW)}
for _cls in CLASSES.values():
    OPTIMIZERS.add(_cls.name, _cls)
CLASSES["LossScaleOptimizer"] = LossScaleOptimizer


def _is_torch_optimizer(obj: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch object exists only if torch was imported
    base = torch.optim.Optimizer if torch is not None else None
    return base is not None and (isinstance(obj, base) or (isinstance(obj, type)
                                                            and issubclass(obj, base)))


def get(identifier: Any) -> Any:
    """An optimizer spec from a name, a kompile optimizer class or instance, an optax
    ``GradientTransformation`` or a torch.optim optimizer (instance or class).

    Args:
        identifier: Anything ``compile(optimizer=...)`` accepts.

    Returns:
        A ``kp.optimizers`` object; ``None`` for ``None`` (as Keras's ``get``).

    Raises:
        ValueError: An unknown name (the message lists the valid ones).
        TypeError: Something that is not an optimizer.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Optimizer | LossScaleOptimizer):
        return identifier
    if isinstance(identifier, str):
        return OPTIMIZERS.get(identifier)()
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()  # type: ignore[call-arg]  # a subclass: its defaults
    if isinstance(identifier, dict) and set(identifier) == {"class_name", "config"}:
        return deserialize(identifier)
    optax_module = sys.modules.get("optax")
    if optax_module is not None and isinstance(identifier, optax_module.GradientTransformation):
        return NativeOptax(identifier)
    if _is_torch_optimizer(identifier):
        return NativeTorch(identifier)
    raise type_error("optimizer", "an optimizer name (" + ", ".join(OPTIMIZERS.names())
                     + "), a kp.optimizers object, an optax GradientTransformation or a "
                     "torch.optim optimizer", identifier)


def serialize(optimizer: Any) -> dict[str, Any]:
    """``{"class_name", "config"}``; native optax and torch optimizers raise ValueError.

    Args:
        optimizer: An optimizer in any form ``get`` accepts.

    Returns:
        A JSON-serialisable dict.
    """
    optimizer = get(optimizer)
    name = type(optimizer).__name__
    if CLASSES.get(name) is not type(optimizer) and not isinstance(
            optimizer, NativeOptax | NativeTorch):
        custom = custom_name(type(optimizer))
        if custom is None:
            raise ValueError(f"Cannot serialise the optimizer {optimizer!r}: its class is not "
                             "registered. Register it with kp.register(cls) first.")
        name = custom
    return {"class_name": name, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any]) -> Any:
    """An optimizer from the dict ``serialize`` made.

    Args:
        config: ``{"class_name": ..., "config": ...}``.

    Returns:
        The ``kp.optimizers`` object.
    """
    name = config["class_name"]
    cls = CLASSES.get(name) or (OPTIMIZERS.get(name) if name in OPTIMIZERS
                                else get_custom(name))
    return cls.from_config(dict(config["config"]))


__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax",
           "Nadam", "Lion", "Ftrl", "Adafactor", "Lamb", "Muon",
           "ScheduleFreeAdamW", "NativeOptax", "NativeTorch",
           "LossScaleOptimizer", "get", "serialize", "deserialize", "schedules"]
