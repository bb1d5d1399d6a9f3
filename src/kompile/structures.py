"""Output names and per-output structures.

Owns the one rule for pairing things with outputs: dicts by name, lists by position,
never by sorted key order. Every per-output argument (targets, sample weights,
class weights, losses, loss weights, metrics, sample-weight modes) goes through
``per_output``; errors print the output names and the structure received.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .registry import did_you_mean


@dataclass(frozen=True)
class OutputSpec:
    """What the module returns: 'single', 'list', 'tuple' or 'dict', and output names.

    Outputs nested one level (``{"a": (p, q), "b": r}``) are flattened to the names
    ``a_1, a_2, b`` (inner dicts: ``a_<key>``); ``template`` records the nesting: per outer
    entry, None for an array, or ``(inner kind, inner keys or length)``.
    """

    kind: str
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]  # per-sample shapes (batch axis excluded)
    template: tuple[Any, ...] | None = None
    outer: tuple[Any, ...] = ()  # outer dict keys (nested dict outputs)

    @property
    def multi(self) -> bool:
        return self.kind != "single"

    def _outer_items(self, outputs: Any) -> list[Any]:
        return [outputs[k] for k in self.outer] if self.kind == "dict" else list(outputs)

    def flatten(self, outputs: Any) -> list[Any]:
        if self.kind == "single":
            return [outputs]
        if self.template is not None:
            flat: list[Any] = []
            for value, inner in zip(self._outer_items(outputs), self.template):
                if inner is None:
                    flat.append(value)
                else:
                    flat.extend([value[k] for k in inner[1]] if inner[0] == "dict"
                                else list(value))
            return flat
        if self.kind == "dict":
            return [outputs[name] for name in self.names]
        return list(outputs)

    def unflatten(self, flat: Sequence[Any]) -> Any:
        if self.kind == "single":
            return flat[0]
        if self.template is not None:
            items, it = [], iter(flat)
            for inner in self.template:
                if inner is None:
                    items.append(next(it))
                elif inner[0] == "dict":
                    items.append({k: next(it) for k in inner[1]})
                else:
                    values = [next(it) for _ in range(inner[1])]
                    items.append(tuple(values) if inner[0] == "tuple" else values)
            if self.kind == "dict":
                return dict(zip(self.outer, items))
            return tuple(items) if self.kind == "tuple" else items
        if self.kind == "dict":
            return dict(zip(self.names, flat))
        return tuple(flat) if self.kind == "tuple" else list(flat)

    def matches(self, value: Any) -> bool:
        """Whether ``value`` has this spec's nesting (so it can be flattened like outputs)."""
        if self.template is None:
            return False
        if self.kind == "dict":
            if not isinstance(value, Mapping) or set(value) != set(self.outer):
                return False
            items = [value[k] for k in self.outer]
        else:
            if not isinstance(value, list | tuple) or len(value) != len(self.template):
                return False
            items = list(value)
        for v, inner in zip(items, self.template):
            if inner is None:
                if isinstance(v, list | tuple | Mapping):
                    return False
            elif inner[0] == "dict":
                if not isinstance(v, Mapping) or set(v) != set(inner[1]):
                    return False
            elif not isinstance(v, list | tuple) or len(v) != inner[1]:
                return False
        return True


def _nest(outputs: Any, names: Sequence[str]) -> tuple[list[Any], list[str], tuple[Any, ...]]:
    """Flatten one level of nesting: the arrays, their names and the template."""
    items = [outputs[k] for k in outputs] if isinstance(outputs, Mapping) else list(outputs)
    flat, flat_names, template = [], [], []
    for name, value in zip(names, items):
        if isinstance(value, Mapping):
            template.append(("dict", tuple(value)))
            flat.extend(value[k] for k in value)
            flat_names.extend(f"{name}_{k}" for k in value)
        elif isinstance(value, list | tuple):
            template.append(("tuple" if isinstance(value, tuple) else "list", len(value)))
            flat.extend(value)
            flat_names.extend(f"{name}_{i + 1}" for i in range(len(value)))
        else:
            template.append(None)
            flat.append(value)
            flat_names.append(name)
    return flat, flat_names, tuple(template)


def describe(value: Any) -> str:
    """A short picture of a structure for error messages: shapes instead of values."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        inner = ", ".join(describe(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"array{tuple(value.shape)}"
    return repr(value)


def output_spec(outputs: Any, output_names: Sequence[str] | None = None) -> OutputSpec:
    """Name the outputs of one forward pass (SPEC section 1)."""
    if isinstance(outputs, Mapping):
        names = tuple(str(k) for k in outputs)
        if output_names is not None and list(output_names) != list(names):
            raise ValueError(
                f"`output_names` {list(output_names)} does not match the keys of the dict the "
                f"module returns {list(names)}; drop `output_names` for dict outputs."
            )
        flat, kind = [outputs[k] for k in outputs], "dict"
    elif isinstance(outputs, list | tuple):
        flat, kind = list(outputs), "tuple" if isinstance(outputs, tuple) else "list"
        names = tuple(output_names) if output_names else tuple(
            f"output_{i + 1}" for i in range(len(flat)))
        if len(names) != len(flat):
            raise ValueError(
                f"`output_names` has {len(names)} names but the module returns {len(flat)} "
                f"outputs: {describe(outputs)}."
            )
    else:
        flat, kind = [outputs], "single"
        names = tuple(output_names) if output_names else ("output",)
        if len(names) != 1:
            raise ValueError(f"`output_names` {list(names)} given for a single-output module.")
    template, outer = None, tuple(outputs) if kind == "dict" else ()
    if kind != "single" and any(isinstance(o, list | tuple | Mapping) for o in flat):
        flat, names, template = _nest(outputs, names)
        names = tuple(names)
    for name, out in zip(names, flat):
        if not hasattr(out, "shape"):
            raise TypeError(
                f"The module's output '{name}' is not an array: {type(out).__name__}. Modules "
                "must return an array, a tuple/list or dict of arrays, or such a structure "
                "nested one level."
            )
    return OutputSpec(kind, names, tuple(tuple(int(d) for d in o.shape[1:]) for o in flat),
                      template, outer)


_SHOWN = object()


def per_output(value: Any, spec: OutputSpec, argument: str, *, broadcast: bool = True,
               is_leaf: Any = None, shown: Any = _SHOWN) -> list[Any]:
    """Spread ``value`` over the outputs: one value for all, a list by position, a dict by name.

    ``is_leaf(v)`` says whether a value is a single entry (default: not a list/tuple/dict).
    Missing dict entries are None. Errors print ``shown`` (what the user passed) when given.
    """
    leaf = is_leaf or (lambda v: not isinstance(v, list | tuple | Mapping))
    received = f"{argument}={describe(value if shown is _SHOWN else shown)}"
    n = len(spec.names)
    if isinstance(value, Mapping) and not leaf(value):
        unknown = [k for k in value if k not in spec.names]
        if unknown:
            hint = did_you_mean(str(unknown[0]), spec.names)
            raise ValueError(
                f"`{argument}` has keys {unknown} that are not output names.{hint} The model's "
                f"outputs are {list(spec.names)}; received {received}."
            )
        return [value.get(name) for name in spec.names]
    if isinstance(value, list | tuple) and not leaf(value):
        if len(value) != n:
            raise ValueError(
                f"`{argument}` is a {type(value).__name__} of {len(value)} entries but the model "
                f"has {n} output(s) {list(spec.names)}; received {received}. "
                "Give one entry per output, or a dict keyed by output name."
            )
        return list(value)
    if broadcast or n == 1:
        return [value] * n
    raise ValueError(
        f"`{argument}` must be a list or a dict with one entry per output for a model with "
        f"outputs {list(spec.names)}; received {received}."
    )


def is_array(v: Any) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype")


def flatten_targets(y: Any, spec: OutputSpec, argument: str = "y") -> list[Any]:
    """Targets as one array (or None) per output."""
    if y is None:
        return [None] * len(spec.names)
    if spec.matches(y):  # nested like the outputs
        return spec.flatten(y)
    if is_array(y) and spec.multi:
        raise ValueError(
            f"`{argument}` is a single array {describe(y)} but the model has outputs "
            f"{list(spec.names)}; give a list (by position) or a dict (by output name)."
        )
    return per_output(y, spec, argument, broadcast=False, is_leaf=is_array)


def flatten_weights(sample_weight: Any, spec: OutputSpec) -> list[Any]:
    """Sample weights per output: one array applies to every output."""
    if sample_weight is None:
        return [None] * len(spec.names)
    return per_output(sample_weight, spec, "sample_weight", is_leaf=is_array)


def _class_labels(y: np.ndarray, pred_shape: tuple[int, ...]) -> np.ndarray:
    """Class labels of targets: argmax of one-hot rows, a trailing axis of 1 squeezed,
    sparse labels (rank below the prediction's) as they are."""
    per = y.shape[1:]
    if per and per[-1] > 1 and len(per) >= len(pred_shape):
        return np.argmax(y, axis=-1)
    if per and per[-1] == 1 and len(per) >= len(pred_shape):
        return y[..., 0]
    return y


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two weight arrays of shapes (N,) and (N, T): the shorter spread over trailing axes."""
    if a.ndim < b.ndim:
        a = a.reshape(a.shape + (1,) * (b.ndim - a.ndim))
    elif b.ndim < a.ndim:
        b = b.reshape(b.shape + (1,) * (a.ndim - b.ndim))
    return a * b


def class_weights_to_sample_weights(class_weight: Any, ys: list[Any], spec: OutputSpec,
                                    sample_weights: list[Any]) -> list[Any]:
    """Turn ``class_weight`` into per-sample weights, multiplied into ``sample_weights``."""
    if class_weight is None:
        return sample_weights
    if not isinstance(class_weight, Mapping):
        raise TypeError(
            f"`class_weight` must be a dict mapping class index -> weight (a dict of such dicts "
            f"keyed by output name for outputs {list(spec.names)}); received "
            f"{describe(class_weight)}."
        )
    nested = bool(class_weight) and all(isinstance(v, Mapping) for v in class_weight.values())
    if spec.multi and not nested:
        raise ValueError(
            f"`class_weight` for a model with outputs {list(spec.names)} must be a dict of dicts "
            f"keyed by output name; received class_weight={describe(class_weight)}."
        )
    per = per_output(class_weight, spec, "class_weight", is_leaf=lambda v: False) if nested \
        else [class_weight]
    out = list(sample_weights)
    for i, cw in enumerate(per):
        if cw is None:
            continue
        bad = [k for k in cw if isinstance(k, bool) or not isinstance(k, int | np.integer)]
        if bad:
            raise ValueError(
                f"`class_weight` for output '{spec.names[i]}' must map integer class indices to "
                f"weights; received keys {bad} in class_weight={describe(class_weight)}."
            )
        if ys[i] is None:
            raise ValueError(f"`class_weight` for output '{spec.names[i]}' needs targets `y` "
                             f"for that output; the model's outputs are {list(spec.names)}.")
        labels = _class_labels(np.asarray(ys[i]), spec.shapes[i]).astype(np.int64)
        size = int(max([*map(int, cw), int(labels.max(initial=0))])) + 1
        table = np.ones(size, np.float32)
        for k, w in cw.items():
            if int(k) >= 0:
                table[int(k)] = float(w)
        w = table[np.clip(labels, 0, None)]
        if out[i] is not None:
            w = _multiply(np.asarray(out[i], dtype=np.float32), w)
        out[i] = w.astype(np.float32)
    return out
