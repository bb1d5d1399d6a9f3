"""Name registries and the error helpers every layer uses.

Owns: looking names up (with aliases and the closest-match hint), checking keyword
arguments, and the user-level registry of custom callables that makes them
serialisable (``kp.register``). Owns no losses, metrics or optimizers itself.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The closest valid name to ``name``, or None."""
    match = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    hint = closest(name, choices)
    return f" Did you mean '{hint}'?" if hint else ""


def check_kwargs(where: str, kwargs: dict[str, Any], valid: Iterable[str]) -> None:
    """Raise TypeError for keyword arguments that ``where`` does not take."""
    valid = sorted(valid)
    for key in kwargs:
        if key not in valid:
            raise TypeError(
                f"{where}() got an unexpected keyword argument '{key}'."
                f"{did_you_mean(key, valid)} Valid arguments: {', '.join(valid)}."
            )


def type_error(argument: str, expected: str, received: Any) -> TypeError:
    return TypeError(
        f"Argument `{argument}` must be {expected}; received {received!r} "
        f"(of type {type(received).__name__})."
    )


class Registry:
    """Maps names (and aliases) to objects for one kind: loss, metric or optimizer."""

    def __init__(self, kind: str, case_insensitive: bool = False):
        self.kind = kind
        self.case_insensitive = case_insensitive
        self._items: dict[str, Any] = {}
        self._canonical: dict[str, str] = {}

    def _key(self, name: str) -> str:
        return name.lower() if self.case_insensitive else name

    def add(self, names: str | Iterable[str], obj: Any) -> Any:
        names = [names] if isinstance(names, str) else list(names)
        for name in names:
            self._items[self._key(name)] = obj
            self._canonical[self._key(name)] = names[0]
        return obj

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def canonical(self, name: str) -> str:
        return self._canonical[self._key(name)]

    def get(self, name: str) -> Any:
        key = self._key(name)
        if key not in self._items:
            raise ValueError(
                f"Unknown {self.kind} '{name}'.{did_you_mean(key, self._items)} "
                f"Valid {self.kind} names: {', '.join(self.names())}."
            )
        return self._items[key]


# User callables registered by name, so that compile configs holding them serialise.
_CUSTOM: dict[str, Callable[..., Any] | type] = {}


def register(obj: Any = None, *, name: str | None = None) -> Any:
    """Register a custom loss, metric or optimizer for ``get_compile_config``.

    Usable as ``kp.register(fn)``, ``kp.register(fn, name="my_loss")`` or as a decorator
    (``@kp.register`` or ``@kp.register(name=...)``). Registered objects are saved by
    name and found again by ``compile_from_config`` and ``kp.load_model``.

    Args:
        obj: The function or class to register. Default ``None``: return a decorator.
        name: The name to register it under. Default ``None``: its ``__name__``.

    Returns:
        ``obj`` itself (or, without ``obj``, a decorator that registers and returns it).

    Example:
        >>> import kompile as kp
        >>> @kp.register
        ... def twice_mse(y_true, y_pred):
        ...     return 2 * ((y_pred - y_true) ** 2).mean(axis=-1)
        >>> twice_mse.__name__
        'twice_mse'
    """

    def deco(o: Any) -> Any:
        key = name or getattr(o, "__name__", None) or type(o).__name__
        _CUSTOM[key] = o
        return o

    return deco if obj is None else deco(obj)


def custom_name(obj: Any) -> str | None:
    """The registered name of ``obj``, or None when it was never registered."""
    for key, value in _CUSTOM.items():
        if value is obj:
            return key
    return None


def get_custom(name: str) -> Any:
    if name not in _CUSTOM:
        raise ValueError(
            f"No registered object named '{name}'.{did_you_mean(name, _CUSTOM)} "
            "Register custom callables with kp.register(fn) before compile_from_config()."
        )
    return _CUSTOM[name]


_F = TypeVar("_F", bound=Callable[..., Any])


def keywords_checked(fn: _F) -> _F:
    """Give ``fn`` kompile's unknown-keyword error (the valid names and the closest match).

    The signature seen by ``inspect.signature``, ``help()`` and type checkers stays
    ``fn``'s own (``functools.wraps``); the check is one set lookup per keyword passed.
    """
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn  # it takes any keyword (a user's subclass): nothing to check
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    valid = frozenset(n for n, p in params.items() if p.kind in kinds and n != "self")
    where = fn.__qualname__.removesuffix(".__init__")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for key in kwargs:
            if key not in valid:
                check_kwargs(where, {key: None}, valid)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def from_keras(identifier: Any, kind: str, classes: dict[str, Any]) -> Any:
    """A Keras metric or loss object (``keras.metrics.AUC()``) as kompile's class of the same
    name, built from its ``get_config()``; ``None`` when ``identifier`` is not a Keras object.

    Keras's ``dtype`` is dropped (kompile's states are float32) and options left at ``None``
    are dropped; any other option the kompile class does not take, and a Keras class
    kompile has no equivalent for (a custom ``keras.metrics.Metric``), is a TypeError
    saying what to use instead.
    """
    def from_keras_module(c: type) -> bool:
        module = getattr(c, "__module__", "") or ""
        return module == "keras" or module.startswith("keras.")

    if isinstance(identifier, type) or not any(map(from_keras_module, type(identifier).__mro__)):
        return None
    cls_name, module = type(identifier).__name__, type(identifier).__module__
    target = classes.get(cls_name) if from_keras_module(type(identifier)) else None
    how = ("subclass kp.metrics.Metric instead: it takes Keras's protocol (add_variable, "
           "update_state, result, reset_state) unchanged" if kind == "metric" else
           "subclass kp.losses.Loss (its call(y_true, y_pred) as in Keras) instead")
    if target is None:
        raise TypeError(f"The Keras {kind} {cls_name} ({module}) has no kompile equivalent: "
                        f"its state lives in Keras variables kompile's compiled steps cannot "
                        f"carry. Pass a kp.{kind}s name or object, or {how}.")
    config = {k: v for k, v in identifier.get_config().items() if k != "dtype"}
    accepted = inspect.signature(target.__init__).parameters
    extra = [k for k, v in config.items() if k not in accepted and v is not None]
    if extra:
        raise TypeError(f"The Keras {kind} {cls_name} has option(s) {extra} that "
                        f"kp.{kind}s.{cls_name} does not take; pass kp.{kind}s.{cls_name}(...) "
                        "with the options it documents.")
    return target(**{k: v for k, v in config.items() if k in accepted})
