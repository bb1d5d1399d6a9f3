"""A NumPy reference for multi-output objectives, written from SPEC.md sections 2-4 and 6.

Everything here is keyed by output NAME: targets, predictions, weights, losses and metrics
are looked up by name, never by position, so a pairing bug in kompile cannot be mirrored
here. ``OutputCase`` describes one output; ``expected`` returns the ordered logs that
``evaluate``/``train_on_batch`` must report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

EPS = 1e-7
HUBER_DELTA = 0.5


def _clip(p):
    return np.clip(p, EPS, 1.0 - EPS)


def _labels(y, p):
    if y.ndim == p.ndim and y.shape[-1] == 1:
        y = y[..., 0]
    return y.astype(np.int64)


def _huber(y, p):
    err = np.abs(p - y)
    return np.mean(np.where(err <= HUBER_DELTA, 0.5 * err ** 2,
                            HUBER_DELTA * err - 0.5 * HUBER_DELTA ** 2), -1)


def _scce(y, p):
    probs = _clip(p / p.sum(-1, keepdims=True))
    return -np.log(np.take_along_axis(probs, _labels(y, p)[..., None], -1)[..., 0])


PER_SAMPLE = {  # (y_true, y_pred) -> per-sample values, last axis reduced
    "mse": lambda y, p: np.mean((p - y) ** 2, -1),
    "mae": lambda y, p: np.mean(np.abs(p - y), -1),
    "bce": lambda y, p: np.mean(-(y * np.log(_clip(p)) + (1 - y) * np.log(1 - _clip(p))), -1),
    "cce": lambda y, p: -np.sum(y * np.log(_clip(p / p.sum(-1, keepdims=True))), -1),
    "scce": _scce,
    "huber": _huber,
    "binary_accuracy": lambda y, p: np.mean((y == (p > 0.5)).astype(np.float64), -1),
    "categorical_accuracy": lambda y, p: (np.argmax(y, -1) == np.argmax(p, -1)).astype(float),
    "sparse_categorical_accuracy": lambda y, p: (_labels(y, p) == np.argmax(p, -1)).astype(float),
}
AUTO = {("acc", "binary"): "binary_accuracy", ("acc", "categorical"): "categorical_accuracy",
        ("acc", "sparse"): "sparse_categorical_accuracy", ("ce", "binary"): "bce",
        ("ce", "categorical"): "cce", ("ce", "sparse"): "scce"}
LOSS_KIND = {"bce": "binary", "cce": "categorical", "scce": "sparse"}


def auto_kind(loss_fn: str | None, y_shape: tuple, p_shape: tuple) -> str:
    """SPEC section 2: from the loss when it is a crossentropy, else from per-sample shapes."""
    if loss_fn in LOSS_KIND:
        return LOSS_KIND[loss_fn]
    if len(p_shape) == 0 or p_shape[-1] == 1:
        return "binary"
    if len(y_shape) < len(p_shape) or (len(y_shape) > 0 and y_shape[-1] == 1):
        return "sparse"
    return "categorical"


def align(y, p):
    """SPEC section 4: a rank-1 output is (N, 1); a target off by a trailing 1 is aligned."""
    if p.ndim == 1:
        p = p[:, None]
    if y.ndim == p.ndim - 1 and p.shape[-1] == 1:
        y = y[..., None]
    elif y.ndim == p.ndim + 1 and y.shape[-1] == 1:
        y = y[..., 0]
    return y.astype(np.float64), p.astype(np.float64)


def spread(w, values):
    w = np.asarray(w, np.float64)
    while w.ndim > values.ndim and w.shape[-1] == 1:
        w = w[..., 0]
    while w.ndim < values.ndim:
        w = w[..., None]
    return np.broadcast_to(w, values.shape)


def class_labels(y, p_shape):
    """Labels for class_weight: one-hot rows -> argmax, a trailing 1 squeezed, sparse as is."""
    per = y.shape[1:]
    if per and len(per) >= len(p_shape):
        return np.argmax(y, -1) if per[-1] > 1 else y[..., 0]
    return y


@dataclass
class Metric:
    fn: str          # a PER_SAMPLE key, or "acc"/"ce" (resolved per output)
    name: str        # the log name it was given (the string, or the object's name)
    value: Any       # what the user passes in compile()


@dataclass
class OutputCase:
    name: str
    shape: tuple                  # per-sample prediction shape
    y: Any = None
    loss: str | None = None       # PER_SAMPLE key or "ce"
    loss_value: Any = None        # what the user passes
    reduction: str = "sum_over_batch_size"
    weight: float = 1.0
    metrics: list[Metric] = field(default_factory=list)
    weighted: list[Metric] = field(default_factory=list)
    sw: Any = None
    class_weight: dict | None = None
    temporal: bool = False

    def loss_fn(self) -> str | None:
        if self.loss == "ce":
            return AUTO[("ce", auto_kind(None, self.y.shape[1:], self.shape))]
        return self.loss

    def metric_fn(self, m: Metric) -> str:
        if m.fn in ("acc", "ce"):
            return AUTO[(m.fn, auto_kind(self.loss_fn(), self.y.shape[1:], self.shape))]
        return m.fn


def _reduce(values, w, reduction):
    if w is not None:
        wb = spread(w, values)
        values = values * wb
    total = values.sum()
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and w is not None:
        return total / wb.sum() if wb.sum() else 0.0
    return total / values.size


def effective_weight(o: OutputCase):
    """sample_weight times class_weight (SPEC section 4), or None."""
    w = None if o.sw is None else np.asarray(o.sw, np.float64)
    if o.class_weight is not None:
        labels = class_labels(np.asarray(o.y), o.shape).astype(np.int64)
        cw = np.vectorize(lambda k: float(o.class_weight.get(int(k), 1.0)))(labels)
        if w is None:
            w = cw
        else:
            while w.ndim < cw.ndim:
                w = w[..., None]
            while cw.ndim < w.ndim:
                cw = cw[..., None]
            w = w * cw
    return w


def log_names(outputs: list[OutputCase]) -> tuple[list[str], list, list]:
    """Loss logs, and (log, output, metric, weighted) in report order (SPEC sections 3, 6).

    Logs are prefixed with the output name when there is more than one output (a dict or
    tuple of one output is named, but its logs are not prefixed, as in Keras)."""
    multi = len(outputs) > 1
    n_loss = sum(o.loss is not None for o in outputs)
    loss_logs = [f"{o.name}_loss" for o in outputs if n_loss > 1 and o.loss]
    used = {"loss", *loss_logs}
    plain, weighted = [], []
    for o in outputs:
        prefix = f"{o.name}_" if multi else ""
        for is_weighted, group, out in ((False, o.metrics, plain), (True, o.weighted, weighted)):
            for m in group:
                log = prefix + m.name
                if is_weighted and log in used:
                    log = prefix + "weighted_" + m.name
                base, k = log, 0
                while log in used:
                    k += 1
                    log = f"{base}_{k}"
                used.add(log)
                out.append((log, o, m, is_weighted))
    return loss_logs, plain, weighted


def expected(outputs: list[OutputCase], preds: dict[str, np.ndarray],
             batch_size: int) -> dict[str, float]:
    """Ordered logs: loss, per-output losses, metrics, weighted metrics."""
    n = next(iter(preds.values())).shape[0]
    loss_logs, plain, weighted = log_names(outputs)
    batches = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    per_loss: dict[str, float] = {}
    total = 0.0
    for o in outputs:
        if o.loss is None:
            continue
        y, p = align(np.asarray(o.y), preds[o.name])
        values = PER_SAMPLE[o.loss_fn()](y, p)
        w = effective_weight(o)
        # the epoch loss is the batch-size-weighted mean of per-batch losses (SPEC 4)
        value = sum((b.stop - b.start) * _reduce(values[b], None if w is None else w[b],
                                                 o.reduction) for b in batches) / n
        per_loss[o.name] = value
        total += o.weight * value
    logs = {"loss": total}
    for o in outputs:
        if f"{o.name}_loss" in loss_logs:
            logs[f"{o.name}_loss"] = per_loss[o.name]
    for log, o, m, is_weighted in plain + weighted:
        y, p = align(np.asarray(o.y), preds[o.name])
        values = PER_SAMPLE[o.metric_fn(m)](y, p)
        w = effective_weight(o) if is_weighted else None
        if w is None:
            logs[log] = values.mean()
        else:
            wb = spread(w, values)
            logs[log] = (values * wb).sum() / wb.sum() if wb.sum() else 0.0
    return logs
