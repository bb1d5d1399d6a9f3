"""The torch fast path: native fused ops for the common loss and metrics of one output.

The shared array-API loss and metric code (objective.py) launches a kernel per array-API
call: about 15 per step for sparse crossentropy and accuracy, each paying torch's dispatch
and, on CPU, its thread synchronisation (on a GPU, a launch). For the commonest objectives
this module computes the same numbers with torch's fused ops (``F.cross_entropy``,
``F.mse_loss``, ...) and updates every loss/metric tracker in two ops: one ``stack`` of the
batch's increments and one ``addcmul`` into a packed vector of all totals and counts.

``plan(objective)`` returns a ``FastObjective`` when the objective is one output whose loss
and metrics are all listed below, unmodified (no subclass overriding the math), else None.
Its ``step`` returns None for a batch it does not cover (sample weights, ranks other than 2,
a dtype other than float32), and the backend then runs the shared code. Tested equal to the
shared code within 1e-6 (tests/test_torch_fast.py).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .. import losses, metrics
from ..metrics.base import Mean, MeanMetricWrapper
from ..ops import EPSILON

_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean_with_sample_weight")


def _labels(y: torch.Tensor) -> torch.Tensor:
    if y.ndim == 2 and y.shape[-1] == 1:
        y = y[:, 0]
    return y if y.dtype == torch.long else y.long()


def _dense(y: torch.Tensor, p: torch.Tensor) -> torch.Tensor | None:
    """``y`` shaped and typed as ``p`` (a target of shape (N,) for an output (N, 1))."""
    if y.ndim == 1 and p.shape[-1] == 1:
        y = y[:, None]
    if y.shape != p.shape:
        return None
    return y if y.dtype == p.dtype else y.to(p.dtype)


def _log_probs(p: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.clamp(p / p.sum(-1, keepdim=True), EPSILON, 1.0 - EPSILON))


# Each loss: (y, p, reduction) -> scalar, or None when the batch does not fit the fast form.
def _scce(opts: dict[str, Any]):
    if opts.get("ignore_class") is not None or opts.get("axis", -1) != -1:
        return None
    logits = bool(opts.get("from_logits", False))

    def loss(y, p, red):
        if not (y.ndim == 1 or (y.ndim == 2 and y.shape[-1] == 1)):
            return None
        labels = _labels(y)
        return F.cross_entropy(p, labels, reduction=red) if logits else \
            F.nll_loss(_log_probs(p), labels, reduction=red)

    return loss


def _cce(opts: dict[str, Any]):
    if opts.get("label_smoothing", 0.0) or opts.get("axis", -1) != -1:
        return None
    logits = bool(opts.get("from_logits", False))

    def loss(y, p, red):
        y = _dense(y, p)
        if y is None:
            return None
        if logits:
            return F.cross_entropy(p, y, reduction=red)
        values = -(y * _log_probs(p)).sum(-1)
        return values.mean() if red == "mean" else values.sum()

    return loss


def _bce(opts: dict[str, Any]):
    if opts.get("label_smoothing", 0.0) or opts.get("axis", -1) != -1 or \
            not opts.get("from_logits", False):
        return None

    def loss(y, p, red):
        y = _dense(y, p)
        if y is None:
            return None
        out = F.binary_cross_entropy_with_logits(p, y, reduction=red)
        return out if red == "mean" else out / p.shape[-1]

    return loss


def _elementwise(fn: Any):
    def make(opts: dict[str, Any]):
        if opts:
            return None

        def loss(y, p, red):
            y = _dense(y, p)
            if y is None:
                return None
            out = fn(p, y, reduction=red)
            return out if red == "mean" else out / p.shape[-1]

        return loss

    return make


LOSSES = {
    losses.sparse_categorical_crossentropy: _scce,
    losses.categorical_crossentropy: _cce,
    losses.binary_crossentropy: _bce,
    losses.mean_squared_error: _elementwise(F.mse_loss),
    losses.mean_absolute_error: _elementwise(F.l1_loss),
}


# Each metric: (y, p) -> the batch's sum of per-sample values, or None.
def _sparse_acc(opts):
    def total(y, p):
        if not (y.ndim == 1 or (y.ndim == 2 and y.shape[-1] == 1)):
            return None
        return (p.argmax(-1) == _labels(y)).sum(dtype=torch.float32)

    return None if opts else total


def _cat_acc(opts):
    def total(y, p):
        if y.shape != p.shape:
            return None
        return (p.argmax(-1) == y.argmax(-1)).sum(dtype=torch.float32)

    return None if opts else total


def _bin_acc(opts):
    threshold = float(opts.pop("threshold", 0.5)) if set(opts) <= {"threshold"} else None

    def total(y, p):
        y = _dense(y, p)
        if y is None:
            return None
        hits = (y == (p > threshold).to(p.dtype)).sum(dtype=torch.float32)
        return hits if p.shape[-1] == 1 else hits / p.shape[-1]

    return None if threshold is None else total


def _loss_metric(name: str):
    def make(opts):
        loss = LOSSES[getattr(losses, name)](dict(opts))
        if loss is None:
            return None
        return lambda y, p: loss(y, p, "sum")

    return make


METRICS = {
    metrics.sparse_categorical_accuracy: _sparse_acc,
    metrics.categorical_accuracy: _cat_acc,
    metrics.binary_accuracy: _bin_acc,
    losses.mean_squared_error: _loss_metric("mean_squared_error"),
    losses.mean_absolute_error: _loss_metric("mean_absolute_error"),
    losses.sparse_categorical_crossentropy: _loss_metric("sparse_categorical_crossentropy"),
    losses.categorical_crossentropy: _loss_metric("categorical_crossentropy"),
    losses.binary_crossentropy: _loss_metric("binary_crossentropy"),
}


def _plain_loss(loss: Any) -> Any:
    """The fast form of a registered loss class used as is, else None."""
    cls = type(loss)
    if cls.fn is None or cls.call is not losses.Loss.call or \
            cls.__call__ is not losses.Loss.__call__ or cls.fn not in LOSSES:
        return None
    if loss.reduction not in (*_MEAN_REDUCTIONS, "sum"):
        return None
    return LOSSES[cls.fn](dict(loss.options))


def _plain_metric(metric: Any) -> Any:
    cls = type(metric)
    if not isinstance(metric, MeanMetricWrapper) or cls.update is not MeanMetricWrapper.update \
            or cls.update_values is not Mean.update_values or cls.result is not Mean.result \
            or metric.wrapped not in METRICS:
        return None
    return METRICS[metric.wrapped](dict(metric.options))


class FastObjective:
    """Loss and tracker updates of a one-output objective in a few fused torch ops."""

    def __init__(self, logs: list[str], loss: Any, reduction: str, weight: float,
                 metric_fns: list[Any]):
        self.logs = logs  # tracker order in the packed vector: totals, then counts
        self.loss, self.weight = loss, weight
        self.red = "sum" if reduction == "sum" else "mean"
        self.metric_fns = metric_fns
        self._last: tuple[Any, Any] | None = None  # (states returned, their packed vector)
        self._weights: dict[tuple[int, Any], torch.Tensor] = {}
        self._one: dict[Any, torch.Tensor] = {}

    def _packed(self, states: dict[str, Any]) -> torch.Tensor:
        if self._last is not None and self._last[0] is states:
            return self._last[1]
        parts = [states[log]["total"] for log in self.logs] + \
            [states[log]["count"] for log in self.logs]
        return torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in parts])

    def _scales(self, n: int, device: Any) -> torch.Tensor:
        """Per tracker: the factor of its increment (loss trackers add mean * n), then the
        counts' increments (n each)."""
        key = (n, device)
        if key not in self._weights:
            k = len(self.logs)
            factors = [float(n)] + [1.0] * (k - 1) + [float(n)] * k  # the loss: mean * n
            self._weights[key] = torch.tensor(factors, dtype=torch.float32, device=device)
        return self._weights[key]

    def step(self, ys: list[Any], preds: list[Any], sws: list[Any], states: dict[str, Any]):
        """``(total loss, new states)`` for one batch, or None to use the shared code."""
        y, p = ys[0], preds[0]
        if sws[0] is not None or y is None or p.ndim != 2 or p.dtype != torch.float32:
            return None
        if not y.is_floating_point() and y.dtype != torch.long:
            y = y.long()  # once for the loss and every metric
        value = self.loss(y, p, self.red)
        if value is None:
            return None
        total = value if self.weight == 1.0 else value * self.weight
        with torch.no_grad():
            sums = [fn(y, p.detach()) for fn in self.metric_fns]
            if any(s is None for s in sums):
                return None
            one = self._one.get(p.device)
            if one is None:
                one = self._one[p.device] = torch.ones((), device=p.device)
            inc = torch.stack([total.detach()] + sums + [one] * len(self.logs))
            packed = torch.addcmul(self._packed(states), inc, self._scales(p.shape[0], p.device))
            k = len(self.logs)
            views = packed.unbind()
            new = {log: {"total": views[i], "count": views[k + i]}
                   for i, log in enumerate(self.logs)}
        self._last = (new, packed)
        return total, new


def plan(objective: Any) -> FastObjective | None:
    """The fast path for ``objective``, or None when any part of it is not covered."""
    if len(objective.entries) != 1:
        return None
    e = objective.entries[0]
    if e.loss is None or e.temporal:
        return None
    loss = _plain_loss(e.loss)
    if loss is None:
        return None
    pairs = list(e.metrics) + list(e.weighted_metrics)  # weighted ones: only without weights
    fns = [_plain_metric(m) for _, m in pairs]
    if any(fn is None for fn in fns):
        return None
    logs = ["loss"] + [log for log, _ in pairs]
    initial = objective.init_states()
    if list(initial) != logs or any(set(s) != {"total", "count"} or any(
            getattr(v, "shape", ()) != () for v in s.values()) for s in initial.values()):
        return None
    return FastObjective(logs, loss, e.loss.reduction, e.weight, fns)
