"""Keras habits that do not carry over, answered with what to do instead."""

from __future__ import annotations

import numbers
from typing import Any


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def check_metrics_are_not_weights(metrics: Any) -> None:
    """``compile("adam", "mse", [1.0])``: Keras 3 takes ``loss_weights`` third; here the
    third argument is ``metrics``, so numbers there are loss weights given by position."""
    values = (list(metrics.values()) if isinstance(metrics, dict)
              else list(metrics) if isinstance(metrics, list | tuple) else [metrics])
    if values and all(_is_number(v) for v in values):
        raise TypeError(
            f"Argument `metrics` must be metric names, kp.metrics.Metric objects or "
            f"callables; received {metrics!r}, numbers. If these are loss weights: the third "
            f"argument of compile() is `metrics`, and `loss_weights` is keyword-only "
            f"(Keras 3 takes it third). Write compile(optimizer, loss, "
            f"loss_weights={metrics!r}).")


def call_error(model: Any) -> TypeError:
    """``model(x)``: a kp.Model is not a layer; say what to call instead."""
    kind = "flax.nnx.Module" if model.backend == "jax" else "torch.nn.Module"
    return TypeError(
        f"A kp.Model is not callable (it trains your {kind}, it is not a layer). For "
        "predictions as NumPy arrays call model.predict(x) (batched, eval mode) or "
        "model.predict_on_batch(x); for the framework's own arrays or tensors call the "
        "module: model.module(x).")


def load_model_needs_module(filepath: Any) -> TypeError:
    """``kp.load_model(path)`` without a module: the file holds arrays, not code."""
    return TypeError(
        f"kp.load_model({str(filepath)!r}) needs the module to load into: "
        "kp.load_model(path, module), where module is a freshly built flax.nnx.Module or "
        "torch.nn.Module of the saved architecture (same class and constructor arguments; "
        "its initial weights do not matter). kompile files hold arrays, not code, so "
        "loading them runs none.")
