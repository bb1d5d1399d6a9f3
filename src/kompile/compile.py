"""compile(): turn user arguments into one validated configuration, then into an Objective.

``CompileConfig`` holds what the user asked for, checked at compile time (unknown names
fail here, not at the first batch). ``resolve`` runs once the first batch shows the
outputs: it pairs losses, weights, metrics and sample-weight modes with output names and
resolves the shape-dependent names (``"accuracy"``, ``"crossentropy"``) in one function,
``resolve_auto``. Nothing backend-specific is created here.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .metrics import AutoMetric, Metric
from .objective import LossTerm, Objective, OutputEntry
from .ops import namespace
from .registry import check_kwargs, type_error
from .structures import Node, OutputSpec, describe, per_output, place

# torch.compile modes `jit_compile` also takes (torch only: backends/torch_compiled.py)
_TORCH_MODES = ("reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

COMPILE_ARGS = ("optimizer", "loss", "metrics", "loss_weights", "weighted_metrics",
                "run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss",
                "sample_weight_mode", "target_tensors")


@dataclass(frozen=True)
class CompileConfig:
    """compile()'s arguments, validated and resolved (frozen: a recompile makes a new one;
    ``dataclasses.replace`` derives one)."""

    optimizer: Any
    loss: Any = None
    metrics: Any = None
    loss_weights: Any = None
    weighted_metrics: Any = None
    run_eagerly: bool = False
    steps_per_execution: int | str | None = None  # None: unset (execution.py owns the rule)
    jit_compile: Any = "auto"
    auto_scale_loss: bool = True
    sample_weight_mode: Any = None
    target_tensors: Any = None
    raw: dict[str, Any] = field(default_factory=dict)


def _map_leaves(value: Any, fn: Any) -> Any:
    """Apply ``fn`` to every entry of a loss/metric structure, keeping the structure."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: _map_leaves(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_leaves(v, fn) for v in value]
    return fn(value)


def _get_loss(identifier: Any) -> Any:
    if metrics_mod.is_auto(identifier):
        return AutoMetric(metrics_mod.AUTO_NAMES[identifier.lower()], identifier)
    return losses_mod.get(identifier)


def _array_weights(value: Any, leaf: bool = False) -> Any:
    """``loss_weights`` given as arrays (NumPy, JAX, torch; Keras accepts them): a 0-d array
    is a number, a 1-d array at the top a list of numbers per output. An array as one
    output's weight (inside a dict or list) whose entries are all equal is that number,
    as Keras's broadcast gives (``{"a": np.ones((2,))}`` weighs ``a`` by 1); other arrays
    there are left for ``_check_weight`` to refuse."""
    if isinstance(value, Mapping):
        return {k: _array_weights(v, True) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_array_weights(v, True) for v in value]
    if hasattr(value, "shape") and hasattr(value, "tolist"):
        if not leaf and len(value.shape) <= 1:
            return value.tolist()
        flat, todo = [], [value.tolist()]
        while todo:
            item = todo.pop()
            if isinstance(item, list):
                todo.extend(item)
            else:
                flat.append(item)
        if flat and all(v == flat[0] for v in flat):
            return flat[0]
    return value


def _check_weight(value: Any) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise type_error("loss_weights", "a number (or a list/dict of numbers per output)", value)
    if value != value or value in (float("inf"), float("-inf")):  # checks at the door
        raise ValueError(f"Argument `loss_weights` holds the non-finite weight {value!r}; "
                         "every weight must be a finite number.")
    return float(value)


def _check_mode(value: Any) -> None:
    if value not in (None, "temporal"):
        raise ValueError(f"`sample_weight_mode` must be None or 'temporal' (or a list/dict of "
                         f"them per output); received {value!r}.")


def make_config(optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None,
                **kwargs: Any) -> CompileConfig:
    """Validate compile() arguments; every name is resolved here."""
    if "experimental_steps_per_execution" in kwargs:
        warnings.warn("`experimental_steps_per_execution` is deprecated; use "
                      "`steps_per_execution`.", DeprecationWarning, stacklevel=3)
        kwargs.setdefault("steps_per_execution", kwargs.pop("experimental_steps_per_execution"))
    check_kwargs("compile", kwargs, COMPILE_ARGS[3:])
    raw = {"optimizer": optimizer, "loss": loss, "metrics": metrics, **kwargs}
    if optimizer is None:
        raise type_error("optimizer", "an optimizer name ('rmsprop', 'adam', ...), a "
                         "kp.optimizers object or a native optax/torch optimizer", optimizer)
    f: dict[str, Any] = {"optimizer": optimizers_mod.get(optimizer), "raw": raw}
    for key in ("metrics", "weighted_metrics"):  # before resolving: the error names its key
        value = raw.get(key)
        if value is not None and not isinstance(value, list | tuple | Mapping):
            raise type_error(key, "a list of metrics or a dict keyed by output name", value)
    f["loss"] = _map_leaves(loss, _get_loss)
    f["metrics"] = _map_leaves(metrics, metrics_mod.get)
    f["weighted_metrics"] = _map_leaves(kwargs.get("weighted_metrics"), metrics_mod.get)
    f["loss_weights"] = _map_leaves(_array_weights(kwargs.get("loss_weights")), _check_weight)
    spe = kwargs.get("steps_per_execution")
    if spe is not None and spe != "auto" and (
            not isinstance(spe, int) or isinstance(spe, bool) or spe < 1):
        raise ValueError(f"`steps_per_execution` must be an integer >= 1 or 'auto'; received "
                         f"{spe!r}.")
    f["steps_per_execution"] = spe
    jc = kwargs.get("jit_compile", "auto")
    if jc not in ("auto", True, False, *_TORCH_MODES):
        raise ValueError(f"`jit_compile` must be 'auto', True, False or a torch.compile mode "
                         f"{_TORCH_MODES} (torch only); received {jc!r}.")
    f["jit_compile"] = jc
    for key in ("run_eagerly", "auto_scale_loss"):
        value = kwargs.get(key, key == "auto_scale_loss")
        if not isinstance(value, bool):
            raise type_error(key, "True or False", value)
        f[key] = value
    f["sample_weight_mode"] = kwargs.get("sample_weight_mode")
    _map_leaves(f["sample_weight_mode"], _check_mode)
    f["target_tensors"] = kwargs.get("target_tensors")
    return CompileConfig(**f)


# ----------------------------------------------------------------------------- resolution


def auto_kind(loss: Any, y_shape: tuple[int, ...] | None, pred_shape: tuple[int, ...]) -> str:
    """'binary', 'sparse' or 'categorical' for one output (SPEC section 2; per-sample shapes)."""
    kind = losses_mod.crossentropy_kind(loss) if isinstance(loss, losses_mod.Loss) else None
    if kind is not None:
        return kind
    if len(pred_shape) == 0 or pred_shape[-1] == 1:
        return "binary"
    if y_shape is not None and (len(y_shape) < len(pred_shape)
                                or (len(y_shape) > 0 and y_shape[-1] == 1)):
        return "sparse"
    return "categorical"


_AUTO_CLASSES = {
    ("accuracy", "binary"): "BinaryAccuracy",
    ("accuracy", "sparse"): "SparseCategoricalAccuracy",
    ("accuracy", "categorical"): "CategoricalAccuracy",
    ("crossentropy", "binary"): "BinaryCrossentropy",
    ("crossentropy", "sparse"): "SparseCategoricalCrossentropy",
    ("crossentropy", "categorical"): "CategoricalCrossentropy",
}


def _sparse_accuracy_on_axis(y_true: Any, y_pred: Any, axis: int) -> Any:
    """Sparse categorical accuracy with the classes on ``axis`` of ``y_pred`` (the labels
    without that axis, or with it of size 1): for losses with a class ``axis`` option."""
    xp = namespace(y_pred)
    if y_true.ndim == y_pred.ndim:
        y_true = xp.squeeze(y_true, axis=axis)
    return metrics_mod.sparse_categorical_accuracy(y_true, xp.moveaxis(y_pred, axis, -1))


def resolve_auto(auto: AutoMetric, loss: Any, y_shape: Any, pred_shape: Any,
                 as_loss: bool = False) -> Any:
    """The one place where ``"accuracy"``/``"crossentropy"`` become concrete."""
    kind = auto_kind(loss, y_shape, pred_shape)
    cls_name = _AUTO_CLASSES[(auto.kind, kind)]
    from_logits = bool(getattr(loss, "options", {}).get("from_logits", False))
    if as_loss:
        return losses_mod.LOSS_CLASSES[cls_name](name=auto.name)
    cls: Any = metrics_mod.METRIC_CLASSES[cls_name]
    axis = None  # the class axis of a sparse loss with classes not last (channels-first)
    if kind == "sparse" and isinstance(loss, losses_mod.Loss) and pred_shape:
        c = losses_mod.class_axis(loss, len(pred_shape))
        axis = c + 1 if c != len(pred_shape) - 1 else None
    if auto.kind == "crossentropy":
        extra = {} if axis is None else {"axis": axis}
        return cls(name=auto.name, from_logits=from_logits, **extra)
    if axis is not None:
        return metrics_mod.MeanMetricWrapper(_sparse_accuracy_on_axis, auto.name,
                                             options={"axis": axis})
    if kind == "binary" and from_logits:
        return cls(name=auto.name, threshold=0.0)  # logits: the 0.5-probability boundary
    return cls(name=auto.name)


def _is_builtin(loss: Any) -> bool:
    """A registered loss (or ``"crossentropy"``): it takes one array, never a structure."""
    return isinstance(loss, AutoMetric) or type(loss).fn is not None


def _losses_at(node: Node, value: Any, raw: Any, spec: OutputSpec) -> list[Any]:
    """The losses placed at one node: one loss, or a list of them (several, summed)."""
    items = value if isinstance(value, list | tuple) else [value]
    items = [v for v in items if v is not None]
    for v in items:
        if not isinstance(v, losses_mod.Loss | AutoMetric):
            where = f"output '{node.name}'" if node.kind == "leaf" else f"'{node.name}'"
            raise TypeError(
                f"`loss` for {where} must be a loss, a list of losses or None; the model's "
                f"outputs are {list(spec.names)}; received loss={describe(raw)}."
            )
    return items


def _loss_terms(cfg: CompileConfig, spec: OutputSpec) -> list[tuple[Node, Any]]:
    """``(node, loss)`` per loss term. One loss at the top, or a registered loss at an inner
    node, applies to every output below; a loss function of your own at an inner node
    receives that subtree (SPEC section 7)."""
    if cfg.loss is None:
        return []
    loss_leaf = lambda v: isinstance(v, losses_mod.Loss | AutoMetric)  # noqa: E731
    raw = cfg.raw.get("loss")
    placement = place(cfg.loss, spec, "loss", is_leaf=loss_leaf, shown=raw)
    terms: list[Any] = []
    for node, value in placement.items:
        for loss in _losses_at(node, value, raw, spec):
            whole = getattr(loss, "whole_structure", False)  # kp.losses.StructureLoss
            if node.kind == "leaf" or (node is spec.root and not whole) or _is_builtin(loss):
                terms.extend((spec.leaves[i], loss) for i in node.outputs)
            else:
                terms.append((node, loss))
    return sorted(terms, key=lambda t: t[0].outputs[0])  # output order, not the user's


def loss_outputs(cfg: CompileConfig, spec: OutputSpec) -> list[int]:
    """Indices of the outputs a compiled loss covers, in output order."""
    return sorted({i for node, _ in _loss_terms(cfg, spec) for i in node.outputs})


def _metric_entries(value: Any, spec: OutputSpec, argument: str, raw: Any) -> list[list[Metric]]:
    """Metrics per output (SPEC section 3): a flat list is for every output unless it has one
    entry per output; dicts and nested structures pair by name and position."""
    if value is None:
        return [[] for _ in spec.names]

    def every_output(v: list[Any], node: Node) -> bool:
        if any(m is None or isinstance(m, list | tuple | Mapping) for m in v):
            raise ValueError(
                f"`{argument}` has per-output entries (lists or None) but {len(v)} entries for "
                f"{len(node.outputs)} output(s) {[spec.names[i] for i in node.outputs]}; "
                f"received {argument}={describe(raw)}. Give one entry per output, a dict keyed "
                "by output name, or a flat list of metrics for every output."
            )
        return True

    def for_every_output(v: list[Any], node: Node) -> bool:
        n = len(node.outputs)
        return all(isinstance(m, Metric) for m in v) and (len(v) != n or n == 1)

    placement = place(value, spec, argument, is_leaf=lambda v: isinstance(v, Metric),
                      shown=raw, list_at=every_output, flat_list=for_every_output)
    out: list[list[Metric]] = [[] for _ in spec.names]
    for node, entry in placement.items:
        ok = isinstance(entry, Metric) or (isinstance(entry, list | tuple) and all(
            m is None or isinstance(m, Metric) for m in entry))
        if not ok:
            where = f"output '{node.name}'" if node.kind == "leaf" else f"'{node.name}'"
            raise TypeError(
                f"`{argument}` for {where} must be a metric, a list of metrics or None; the "
                f"model's outputs are {list(spec.names)}; received {argument}={describe(raw)}."
            )
        metrics = [entry] if isinstance(entry, Metric) else [m for m in entry if m is not None]
        for i in node.outputs:
            out[i].extend(metrics)
    return out


def resolve(cfg: CompileConfig, spec: OutputSpec, y_shapes: list[Any]) -> Objective:
    """Pair the configuration with the outputs; resolve shape-dependent names."""
    names, raw = spec.names, cfg.raw
    placed = _loss_terms(cfg, spec)
    weights = [1.0] * len(names)
    if cfg.loss_weights is not None:  # a dict is matched by name whatever form `loss` has
        given = per_output(cfg.loss_weights, spec, "loss_weights", shown=raw.get("loss_weights"))
        weights = [1.0 if w is None else float(w) for w in given]
    terms: list[LossTerm] = []
    first_loss: list[Any] = [None] * len(names)
    for node, loss in placed:
        i = node.outputs[0]
        if isinstance(loss, AutoMetric):
            loss = resolve_auto(loss, None, y_shapes[i], spec.shapes[i], as_loss=True)
        if node.kind == "leaf" and first_loss[i] is None:
            first_loss[i] = loss
        ws = {weights[j] for j in node.outputs}
        if len(ws) > 1:
            raise ValueError(
                f"`loss_weights` gives the outputs {[names[j] for j in node.outputs]} of "
                f"'{node.name}', which share one loss, different weights; give one weight for "
                f"'{node.name}'. Received loss_weights={describe(raw.get('loss_weights'))}."
            )
        terms.append(LossTerm(node.name or loss.name, loss, ws.pop(), list(node.outputs),
                              None if node.kind == "leaf" else node))
    logged = len(terms) > 1
    for t in terms:
        t.log = f"{t.name}_loss" if logged else None
    modes = per_output(cfg.sample_weight_mode, spec, "sample_weight_mode")
    metric_sets = [
        _metric_entries(cfg.metrics, spec, "metrics", raw.get("metrics")),
        _metric_entries(cfg.weighted_metrics, spec, "weighted_metrics",
                        raw.get("weighted_metrics"))]
    entries, used = [], {"loss", *(t.log for t in terms if t.log)}
    for i, name in enumerate(names):
        prefix = f"{name}_" if len(names) > 1 else ""  # one output: no prefix, as in Keras
        resolved: list[list[tuple[str, Metric]]] = [[], []]
        for weighted in (0, 1):
            for metric in metric_sets[weighted][i]:
                if isinstance(metric, AutoMetric):
                    metric = resolve_auto(metric, first_loss[i], y_shapes[i], spec.shapes[i])
                log = prefix + metric.name
                if weighted and log in used:
                    log = prefix + "weighted_" + metric.name
                base, k = log, 0
                while log in used:
                    k += 1
                    log = f"{base}_{k}"
                used.add(log)
                resolved[weighted].append((log, metric))
        entries.append(OutputEntry(
            name=name, loss=first_loss[i], weight=weights[i],
            metrics=resolved[0], weighted_metrics=resolved[1],
            temporal=modes[i] == "temporal", pred_shape=spec.shapes[i], y_shape=y_shapes[i]))
    model_loss = cfg.loss is None and spec.model_loss is not None
    return Objective(entries, terms, spec, model_loss)
