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
from .objective import Objective, OutputEntry
from .registry import check_kwargs, type_error
from .structures import OutputSpec, describe, per_output

COMPILE_ARGS = ("optimizer", "loss", "metrics", "loss_weights", "weighted_metrics",
                "run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss",
                "sample_weight_mode", "target_tensors")


@dataclass
class CompileConfig:
    optimizer: Any
    loss: Any = None
    metrics: Any = None
    loss_weights: Any = None
    weighted_metrics: Any = None
    run_eagerly: bool = False
    steps_per_execution: int = 1
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
    cfg = CompileConfig(optimizer=optimizers_mod.get(optimizer), raw=raw)
    cfg.loss = _map_leaves(loss, _get_loss)
    cfg.metrics = _map_leaves(metrics, metrics_mod.get)
    cfg.weighted_metrics = _map_leaves(kwargs.get("weighted_metrics"), metrics_mod.get)
    for key in ("metrics", "weighted_metrics"):
        value = raw.get(key)
        if value is not None and not isinstance(value, list | tuple | Mapping):
            raise type_error(key, "a list of metrics or a dict keyed by output name", value)
    cfg.loss_weights = _map_leaves(kwargs.get("loss_weights"), _check_weight)
    spe = kwargs.get("steps_per_execution", 1)
    if not isinstance(spe, int) or isinstance(spe, bool) or spe < 1:
        raise ValueError(f"`steps_per_execution` must be an integer >= 1; received {spe!r}.")
    cfg.steps_per_execution = spe
    jc = kwargs.get("jit_compile", "auto")
    if jc not in ("auto", True, False):
        raise ValueError(f"`jit_compile` must be 'auto', True or False; received {jc!r}.")
    cfg.jit_compile = jc
    for key in ("run_eagerly", "auto_scale_loss"):
        value = kwargs.get(key, key == "auto_scale_loss")
        if not isinstance(value, bool):
            raise type_error(key, "True or False", value)
        setattr(cfg, key, value)
    cfg.sample_weight_mode = kwargs.get("sample_weight_mode")
    _map_leaves(cfg.sample_weight_mode, _check_mode)
    cfg.target_tensors = kwargs.get("target_tensors")
    return cfg


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


def resolve_auto(auto: AutoMetric, loss: Any, y_shape: Any, pred_shape: Any,
                 as_loss: bool = False) -> Any:
    """The one place where ``"accuracy"``/``"crossentropy"`` become concrete."""
    kind = auto_kind(loss, y_shape, pred_shape)
    cls_name = _AUTO_CLASSES[(auto.kind, kind)]
    from_logits = bool(getattr(loss, "options", {}).get("from_logits", False))
    if as_loss:
        return losses_mod.LOSS_CLASSES[cls_name](name=auto.name)
    cls = metrics_mod.METRIC_CLASSES[cls_name]
    if auto.kind == "crossentropy":
        return cls(name=auto.name, from_logits=from_logits)
    if kind == "binary" and from_logits:
        return cls(name=auto.name, threshold=0.0)  # logits: the 0.5-probability boundary
    return cls(name=auto.name)


def _metric_list(entry: Any, argument: str, spec: OutputSpec, i: int, raw: Any) -> list[Metric]:
    if entry is None:
        return []
    if isinstance(entry, Metric):
        return [entry]
    if isinstance(entry, list | tuple) and all(isinstance(m, Metric) for m in entry):
        return list(entry)
    raise TypeError(
        f"`{argument}` for output '{spec.names[i]}' must be a metric, a list of metrics or None; "
        f"the model's outputs are {list(spec.names)}; received {argument}={describe(raw)}."
    )


def _metrics_per_output(value: Any, spec: OutputSpec, argument: str,
                        raw: Any) -> list[list[Metric]]:
    """SPEC section 3: a flat list is for every output unless it has one entry per output."""
    n = len(spec.names)
    if value is None:
        return [[] for _ in spec.names]
    if isinstance(value, Mapping):
        return [_metric_list(v, argument, spec, i, raw)
                for i, v in enumerate(per_output(value, spec, argument, shown=raw))]
    value = list(value)
    nested = any(v is None or isinstance(v, list | tuple) for v in value)
    if len(value) == n and (spec.multi or nested):
        return [_metric_list(v, argument, spec, i, raw) for i, v in enumerate(value)]
    if nested:
        raise ValueError(
            f"`{argument}` has per-output entries (lists or None) but {len(value)} entries for "
            f"{n} output(s) {list(spec.names)}; received {argument}={describe(raw)}. Give one "
            "entry per output, a dict keyed by output name, or a flat list of metrics for "
            "every output."
        )
    return [list(value) for _ in spec.names]


def resolve(cfg: CompileConfig, spec: OutputSpec, y_shapes: list[Any]) -> Objective:
    """Pair the configuration with the outputs; resolve shape-dependent names."""
    names = spec.names
    loss_leaf = lambda v: isinstance(v, losses_mod.Loss | AutoMetric)  # noqa: E731
    raw = cfg.raw
    per_loss = per_output(cfg.loss, spec, "loss", is_leaf=loss_leaf, shown=raw.get("loss")) \
        if cfg.loss is not None else [None] * len(names)
    for i, loss in enumerate(per_loss):
        if isinstance(loss, AutoMetric):
            per_loss[i] = resolve_auto(loss, None, y_shapes[i], spec.shapes[i], as_loss=True)
        elif loss is not None and not isinstance(loss, losses_mod.Loss):
            raise TypeError(
                f"`loss` for output '{names[i]}' must be one loss or None; the model's outputs "
                f"are {list(names)}; received loss={describe(raw.get('loss'))}."
            )
    if cfg.loss_weights is None:
        weights = [1.0] * len(names)
    else:  # a dict is matched by name whatever form `loss` has [SPEC 3: 41, not 14]
        weights = per_output(cfg.loss_weights, spec, "loss_weights",
                             shown=raw.get("loss_weights"))
        weights = [1.0 if w is None else float(w) for w in weights]
    modes = per_output(cfg.sample_weight_mode, spec, "sample_weight_mode")
    metric_sets = [
        _metrics_per_output(cfg.metrics, spec, "metrics", raw.get("metrics")),
        _metrics_per_output(cfg.weighted_metrics, spec, "weighted_metrics",
                            raw.get("weighted_metrics"))]
    n_loss = sum(loss is not None for loss in per_loss)
    loss_logs = [f"{name}_loss" if n_loss > 1 and loss is not None else None
                 for name, loss in zip(names, per_loss)]
    entries, used = [], {"loss", *filter(None, loss_logs)}
    for i, name in enumerate(names):
        prefix = f"{name}_" if len(names) > 1 else ""  # one output: no prefix, as in Keras
        resolved: list[list[tuple[str, Metric]]] = [[], []]
        for weighted in (0, 1):
            for metric in metric_sets[weighted][i]:
                if isinstance(metric, AutoMetric):
                    metric = resolve_auto(metric, per_loss[i], y_shapes[i], spec.shapes[i])
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
            name=name, loss=per_loss[i], weight=weights[i],
            loss_log=loss_logs[i],
            metrics=resolved[0], weighted_metrics=resolved[1],
            temporal=modes[i] == "temporal", pred_shape=spec.shapes[i], y_shape=y_shapes[i]))
    return Objective(entries)
