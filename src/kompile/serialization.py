"""get_compile_config / compile_from_config: compile arguments as JSON-serialisable dicts.

Names stay names; objects become ``{"class_name": ..., "config": ...}``; structures
(lists, dicts keyed by output name) are kept. Unregistered callables get an error that
says how to register them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import losses, metrics, optimizers


def _is_object(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"class_name", "config"}


def _walk(value: Any, fn: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value if not isinstance(value, str) else fn(value)
    if isinstance(value, Mapping) and not _is_object(value):
        return {str(k): _walk(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, fn) for v in value]
    return fn(value)


def _dump(kind: str):
    def dump(value: Any) -> Any:
        if isinstance(value, str):
            return value
        if kind == "loss":
            loss = losses.get(value)
            return losses.serialize(loss)
        return metrics.serialize(metrics.get(value))

    return dump


def _load(kind: str):
    def load(value: Any) -> Any:
        if not _is_object(value):
            return value
        return losses.deserialize(value) if kind == "loss" else metrics.deserialize(value)

    return load


def compile_config(cfg: Any) -> dict[str, Any]:
    raw = cfg.raw
    opt = raw.get("optimizer", "rmsprop")
    out: dict[str, Any] = {
        "optimizer": opt if isinstance(opt, str) else optimizers.serialize(optimizers.get(opt)),
        "loss": _walk(raw.get("loss"), _dump("loss")),
        "metrics": _walk(raw.get("metrics"), _dump("metric")),
        "weighted_metrics": _walk(raw.get("weighted_metrics"), _dump("metric")),
        "loss_weights": _walk(cfg.loss_weights, lambda v: v),
        "run_eagerly": cfg.run_eagerly,
        "steps_per_execution": cfg.steps_per_execution,
        "jit_compile": cfg.jit_compile,
        "auto_scale_loss": cfg.auto_scale_loss,
        "sample_weight_mode": _walk(cfg.sample_weight_mode, lambda v: v),
        "target_tensors": None,
    }
    if cfg.target_tensors is not None:
        out["target_tensors"] = _walk(cfg.target_tensors, lambda a: {
            "array": np.asarray(a).tolist(), "dtype": str(np.asarray(a).dtype)})
    return out


def compile_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise TypeError(f"compile_from_config() needs the dict from get_compile_config(); "
                        f"received {type(config).__name__}.")
    if not config:
        raise ValueError("compile_from_config() received an empty config: the model it came "
                         "from was never compiled.")
    kwargs = dict(config)
    opt = kwargs.get("optimizer")
    if _is_object(opt):
        kwargs["optimizer"] = optimizers.deserialize(opt)
    kwargs["loss"] = _walk(kwargs.get("loss"), _load("loss"))
    kwargs["metrics"] = _walk(kwargs.get("metrics"), _load("metric"))
    kwargs["weighted_metrics"] = _walk(kwargs.get("weighted_metrics"), _load("metric"))
    targets = kwargs.get("target_tensors")
    if targets is not None:
        kwargs["target_tensors"] = _walk_arrays(targets)
    return kwargs


def _walk_arrays(value: Any) -> Any:
    if isinstance(value, Mapping) and set(value) == {"array", "dtype"}:
        return np.asarray(value["array"], dtype=value["dtype"])
    if isinstance(value, Mapping):
        return {k: _walk_arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk_arrays(v) for v in value]
    return value
