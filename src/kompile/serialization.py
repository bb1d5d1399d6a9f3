"""get_compile_config / compile_from_config: compile arguments as JSON-serialisable dicts.

Names stay names; objects become ``{"class_name": ..., "config": ...}``; structures
(lists, dicts keyed by output name) are kept, so per-output pairing survives a round
trip. A loss object given as a metric is stored as ``{"class_name": "LossMetric", ...}``.
Unregistered callables get an error that names where they were found and says how to
register them. Owns no registry itself: losses, metrics and optimizers serialise their
own objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import losses, metrics, optimizers

LOSS_METRIC = "LossMetric"  # a loss object used as a metric


def _is_object(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"class_name", "config"}


def _walk(value: Any, fn: Callable[[Any, str], Any], path: str) -> Any:
    """Apply ``fn(leaf, path)`` to every leaf of a per-output structure."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping) and not _is_object(value):
        return {str(k): _walk(v, fn, f"{path}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, fn, f"{path}[{i}]") for i, v in enumerate(value)]
    return fn(value, path)


def _dump(kind: str) -> Callable[[Any, str], Any]:
    def dump(value: Any, path: str) -> Any:
        if isinstance(value, str):
            return value
        try:
            if kind == "loss":
                return losses.serialize(losses.get(value))
            if isinstance(value, losses.Loss) or (
                    isinstance(value, type) and issubclass(value, losses.Loss)):
                return {"class_name": LOSS_METRIC, "config": losses.serialize(losses.get(value))}
            return metrics.serialize(metrics.get(value))
        except ValueError as err:
            raise ValueError(f"get_compile_config(): cannot serialise `{path}`. {err}") from None

    return dump


def _load(kind: str) -> Callable[[Any, str], Any]:
    def load(value: Any, path: str) -> Any:
        if not _is_object(value):
            return value
        if kind == "loss":
            return losses.deserialize(value)
        if value["class_name"] == LOSS_METRIC:
            return losses.deserialize(value["config"])
        return metrics.deserialize(value)

    return load


def _array(a: Any, path: str) -> dict[str, Any]:
    a = np.asarray(a)
    return {"array": a.tolist(), "dtype": str(a.dtype)}


def _same(value: Any, path: str) -> Any:
    return value


def compile_config(cfg: Any) -> dict[str, Any]:
    """Every compile argument of ``cfg`` as a JSON-serialisable dict."""
    raw = cfg.raw
    opt = raw.get("optimizer", "rmsprop")
    return {
        "optimizer": opt if isinstance(opt, str) else optimizers.serialize(optimizers.get(opt)),
        "loss": _walk(raw.get("loss"), _dump("loss"), "loss"),
        "metrics": _walk(raw.get("metrics"), _dump("metric"), "metrics"),
        "weighted_metrics": _walk(raw.get("weighted_metrics"), _dump("metric"),
                                  "weighted_metrics"),
        "loss_weights": _walk(cfg.loss_weights, _same, "loss_weights"),
        "run_eagerly": cfg.run_eagerly,
        "steps_per_execution": cfg.steps_per_execution,
        "jit_compile": cfg.jit_compile,
        "auto_scale_loss": cfg.auto_scale_loss,
        "sample_weight_mode": _walk(cfg.sample_weight_mode, _same, "sample_weight_mode"),
        "target_tensors": _walk(cfg.target_tensors, _array, "target_tensors"),
    }


def compile_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """compile() keyword arguments from a dict made by ``compile_config``."""
    if not isinstance(config, Mapping):
        raise TypeError(f"compile_from_config() needs the dict from get_compile_config(); "
                        f"received {type(config).__name__}.")
    if not config:
        raise ValueError("compile_from_config() received an empty config: the model it came "
                         "from was never compiled.")
    kwargs = dict(config)
    opt = kwargs.get("optimizer")
    if _is_object(opt):
        kwargs["optimizer"] = optimizers.deserialize(opt)  # type: ignore[arg-type]
    for key, kind in (("loss", "loss"), ("metrics", "metric"), ("weighted_metrics", "metric")):
        kwargs[key] = _walk(kwargs.get(key), _load(kind), key)
    targets = kwargs.get("target_tensors")
    if targets is not None:
        kwargs["target_tensors"] = _load_arrays(targets)
    return kwargs


def _load_arrays(value: Any, path: str = "target_tensors") -> Any:
    if isinstance(value, Mapping) and set(value) == {"array", "dtype"}:
        return _config_array(value, path)
    if isinstance(value, Mapping):
        return {k: _load_arrays(v, f"{path}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list):
        return [_load_arrays(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _config_array(value: Mapping[str, Any], path: str) -> np.ndarray:
    """An array stored in a config: a scalar dtype (a sub-array dtype such as
    ``"(100000000,)f8"`` would make NumPy allocate that much for every element) and the
    nested lists the JSON already holds, so its size is bounded by the config's own."""
    try:
        dtype = np.dtype(value["dtype"]) if isinstance(value["dtype"], str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.shape != () or dtype.kind not in "biufc":
        raise ValueError(f"compile_from_config(): `{path}` has dtype {value['dtype']!r}; "
                         "expected the name of a scalar bool, integer, float or complex dtype "
                         "(as get_compile_config() writes, e.g. 'float32').")
    data = value["array"]
    if not isinstance(data, list | int | float | bool):
        raise ValueError(f"compile_from_config(): `{path}` holds {type(data).__name__}; "
                         "expected nested lists of numbers.")
    try:
        return np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f"compile_from_config(): `{path}` is not a rectangular array of "
                         f"{dtype} numbers ({err}).") from None
