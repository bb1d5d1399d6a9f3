"""The objective: total loss, per-output losses and metric updates for resolved outputs.

Pure functions over flat per-output lists (``ys``, ``preds``, ``sample_weights``),
written against the array API so the JAX and torch steps share them. Targets and
weights are checked here once, on the host, with messages naming the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import losses, ops
from .metrics import Metric
from .ops import namespace


@dataclass
class OutputEntry:
    name: str
    loss: Any
    weight: float
    loss_log: str | None
    metrics: list[tuple[str, Metric]] = field(default_factory=list)
    weighted_metrics: list[tuple[str, Metric]] = field(default_factory=list)
    temporal: bool = False
    pred_shape: tuple[int, ...] = ()
    y_shape: tuple[int, ...] | None = None


def _batch_shape(per_sample: tuple[int, ...]) -> str:
    return "(" + ", ".join(["batch", *map(str, per_sample)]) + ")"


def _tracker_update(state: dict[str, Any], value: Any, n: Any) -> dict[str, Any]:
    return {"total": state["total"] + value * n, "count": state["count"] + n}


def _tracker_init() -> dict[str, Any]:
    return {"total": np.zeros((), np.float32), "count": np.zeros((), np.float32)}


class Objective:
    def __init__(self, entries: list[OutputEntry]):
        self.entries = entries
        self.names = [e.name for e in entries]
        self.has_loss = any(e.loss is not None for e in entries)
        self.metric_logs = [log for e in entries for log, _ in e.metrics] + \
            [log for e in entries for log, _ in e.weighted_metrics]
        self.log_names = ["loss"] + [e.loss_log for e in entries if e.loss_log] + \
            self.metric_logs
        self._metrics = {log: (i, m, False) for i, e in enumerate(self.entries)
                         for log, m in e.metrics}
        self._metrics.update({log: (i, m, True) for i, e in enumerate(self.entries)
                              for log, m in e.weighted_metrics})
        self._initial: dict[str, Any] | None = None  # zero states, built at the first reset

    # ------------------------------------------------------------------ host-side checks
    def check(self, ys: list[Any], sws: list[Any]) -> None:
        """Validate one batch of targets and weights against the outputs."""
        for e, y, sw in zip(self.entries, ys, sws):
            needs_y = e.loss is not None or e.metrics or e.weighted_metrics
            if needs_y and y is None:
                raise ValueError(
                    f"No target `y` was given for output '{e.name}', which has a loss or metrics "
                    f"(the model's outputs are {self.names}). Pass `y` (a list or a dict keyed "
                    "by output name for several outputs), or bind targets with "
                    "compile(target_tensors=...)."
                )
            if y is not None and needs_y:
                self._check_target(e, tuple(y.shape[1:]))
            self._check_weight(e, sw, y)

    def data_rules(self) -> list[tuple[str, bool, bool, Any]]:
        """Per output, what the data checks (data/checks.py) need: the name, whether targets
        are needed (a loss or metrics), whether a built-in loss reads them, and ``(classes,
        ignore_class, loss name)`` when a built-in loss takes sparse class labels (else None)."""
        per: list[list[Any]] = [[] for _ in self.entries]
        terms = getattr(self, "terms", None)  # loss terms per node, when losses live there
        if terms is not None:
            for t in terms:
                for i in t.outputs:
                    per[i].append(t.loss if t.subtree is None else None)
        else:
            for i, e in enumerate(self.entries):
                if e.loss is not None:
                    per[i].append(e.loss)
        rules = []
        for e, found in zip(self.entries, per):
            builtin = [loss for loss in found if loss is not None and type(loss).fn is not None]
            sparse = None
            for loss in builtin:
                if losses.crossentropy_kind(loss) == "sparse":
                    classes = (e.pred_shape or (1,))[-1]
                    sparse = (classes, loss.options.get("ignore_class"), loss.name)
            needs_y = bool(found or e.metrics or e.weighted_metrics)
            rules.append((e.name, needs_y, bool(builtin), sparse))
        return rules

    def _check_target(self, e: OutputEntry, y_shape: tuple[int, ...]) -> None:
        if e.loss is None or type(e.loss).fn is None:
            return  # a user's function or Loss subclass sets its own shape contract
        p = e.pred_shape or (1,)
        if losses.crossentropy_kind(e.loss) == "sparse":
            ok = {p[:-1], p[:-1] + (1,)}
        else:
            ok = {p, p + (1,)} | ({p[:-1]} if p[-1] == 1 else set())
        if y_shape not in ok:
            hint = (" For integer class labels use sparse_categorical_crossentropy."
                    if y_shape in (p[:-1], p[:-1] + (1,)) else "")
            raise ValueError(
                f"`y` for output '{e.name}' has per-sample shape {y_shape} but the output has "
                f"per-sample shape {e.pred_shape}, which the loss {e.loss.name!r} cannot pair "
                f"with it (the model's outputs are {self.names}).{hint}"
            )

    def _check_weight(self, e: OutputEntry, sw: Any, y: Any) -> None:
        if e.temporal:
            if len(e.pred_shape) < 2:
                raise ValueError(
                    f"`sample_weight_mode`='temporal' for output '{e.name}' needs an output of "
                    f"rank >= 3 (batch, timesteps, features); the output has shape "
                    f"{_batch_shape(e.pred_shape)}. The model's outputs are {self.names}."
                )
            if sw is not None and np.ndim(sw) != 2:
                raise ValueError(
                    f"`sample_weight_mode`='temporal' for output '{e.name}' expects 2-D "
                    f"`sample_weight` of shape {_batch_shape(e.pred_shape[:1])} (batch, "
                    f"timesteps); received shape {np.shape(sw)}. The model's outputs are "
                    f"{self.names}."
                )
        if sw is None:
            return
        values_shape = ((e.pred_shape or (1,))[:-1])
        w_shape = tuple(np.shape(sw)[1:])
        if w_shape and w_shape != (1,) and w_shape != values_shape[:len(w_shape)]:
            raise ValueError(
                f"`sample_weight` for output '{e.name}' has per-sample shape {w_shape} but the "
                f"loss values have per-sample shape {values_shape}: give weights of shape "
                f"(batch,){' or ' + _batch_shape(values_shape) if values_shape else ''}. The "
                f"model's outputs are {self.names}."
            )

    # ------------------------------------------------------------------ pure computation
    def compute_loss(self, ys: list[Any], preds: list[Any], sws: list[Any]):
        """Total loss and the unweighted per-output losses (None where no loss)."""
        total, per_output = None, []
        for e, y, p, sw in zip(self.entries, ys, preds, sws):
            if e.loss is None:
                per_output.append(None)
                continue
            xp = namespace(p)
            y, p = losses.align(y, ops.as_float(xp, p))
            value = losses.weighted_reduce(e.loss.call(y, p), sw, e.loss.reduction)
            per_output.append(value)
            weighted = value if e.weight == 1.0 else value * e.weight  # one kernel less
            total = weighted if total is None else total + weighted
        if total is None:
            xp = namespace(preds[0])
            total = xp.zeros((), dtype=xp.float32, device=ops.device(preds[0]))
        return total, per_output

    def init_states(self) -> dict[str, Any]:
        """Fresh zero states (NumPy); the shapes are worked out once, not at every reset."""
        if self._initial is None:
            states = {"loss": _tracker_init()}
            for e in self.entries:
                if e.loss_log:
                    states[e.loss_log] = _tracker_init()
            for log, (i, m, _) in self._metrics.items():
                states[log] = self._sized_init(self.entries[i], m)
            self._initial = states
        return {log: {k: np.array(v, copy=True) for k, v in state.items()}
                for log, state in self._initial.items()}

    @staticmethod
    def _sized_init(e: OutputEntry, m: Metric) -> dict[str, Any]:
        """``m.init()`` with per-class axes at their real size: a metric whose class count
        comes from the data (F1Score, R2Score, ...) starts at size 1 and grows at the first
        update, which a jitted loop cannot carry. One NumPy update on a zero sample of the
        output's shapes tells the final shapes (the states are sums, so they start at 0)."""
        state = m.init()
        if e.y_shape is None:
            return state
        with np.errstate(divide="ignore", invalid="ignore"):  # zeros: only shapes matter
            probe = m.update(state, np.zeros((1, *e.y_shape), np.float32),
                             np.zeros((1, *(e.pred_shape or (1,))), np.float32), None)
        return {k: v if np.shape(probe[k]) == np.shape(v)
                else np.zeros(np.shape(probe[k]), np.asarray(v).dtype) for k, v in state.items()}

    def update(self, states: dict[str, Any], ys: list[Any], preds: list[Any], sws: list[Any],
               total: Any, per_output: list[Any], batch_size: Any) -> dict[str, Any]:
        new = {"loss": _tracker_update(states["loss"], total, batch_size)}
        for e, value in zip(self.entries, per_output):
            if e.loss_log:
                new[e.loss_log] = _tracker_update(states[e.loss_log], value, batch_size)
        for log, (i, m, weighted) in self._metrics.items():
            xp = namespace(preds[i])
            p = ops.as_float(xp, preds[i])
            new[log] = m.update(states[log], ys[i], p, sws[i] if weighted else None)
        return new

    def results(self, states: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for log in self.log_names:
            if log in self._metrics:
                out[log] = self._metrics[log][1].result(states[log])
            else:
                s = states[log]
                out[log] = losses.safe_divide(namespace(s["total"]), s["total"], s["count"])
        return out

    def merge(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        return {log: {k: a[log][k] + b[log][k] for k in a[log]} for log in a}
