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
from .metrics import Mean, Metric
from .metrics.base import as_values
from .ops import namespace


@dataclass
class OutputEntry:
    name: str
    loss: Any
    weight: float
    metrics: list[tuple[str, Metric]] = field(default_factory=list)
    weighted_metrics: list[tuple[str, Metric]] = field(default_factory=list)
    temporal: bool = False
    pred_shape: tuple[int, ...] = ()
    y_shape: tuple[int, ...] | None = None


@dataclass
class LossTerm:
    """One compiled loss on one node: an output, or an inner node (``subtree`` set)."""

    name: str
    loss: Any
    weight: float
    outputs: list[int]
    subtree: Any = None
    log: str | None = None


def _batch_shape(per_sample: tuple[int, ...]) -> str:
    return "(" + ", ".join(["batch", *map(str, per_sample)]) + ")"


def _tracker_update(state: dict[str, Any], value: Any, n: Any) -> dict[str, Any]:
    return {"total": state["total"] + value * n, "count": state["count"] + n}


def _tracker_init() -> dict[str, Any]:
    return {"total": np.zeros((), np.float32), "count": np.zeros((), np.float32)}


_TRACKER = Mean(name="loss")  # loss trackers hold Mean's state (total, count): sums


class Objective:
    def __init__(self, entries: list[OutputEntry], terms: list[LossTerm], spec: Any,
                 model_loss: bool = False):
        self.entries, self.terms, self.spec = entries, terms, spec
        self.model_loss = model_loss  # train on the 0-d `loss` the module returns
        self.names = [e.name for e in entries]
        self.has_loss = bool(terms) or model_loss
        self.loss_logs = list(dict.fromkeys(t.log for t in terms if t.log))
        self.metric_logs = [log for e in entries for log, _ in e.metrics] + \
            [log for e in entries for log, _ in e.weighted_metrics]
        self.log_names = ["loss"] + self.loss_logs + self.metric_logs
        self._metrics = {log: (i, m, False) for i, e in enumerate(self.entries)
                         for log, m in e.metrics}
        self._metrics.update({log: (i, m, True) for i, e in enumerate(self.entries)
                              for log, m in e.weighted_metrics})
        self._initial: dict[str, Any] | None = None  # zero states, built at the first reset

    # ------------------------------------------------------------------ host-side checks
    def check(self, ys: list[Any], sws: list[Any],
              shapes: list[tuple[int, ...]] | None = None) -> None:
        """Validate one batch of targets and weights against the outputs; ``shapes`` are
        this call's per-sample output shapes (default: those seen at the first batch)."""
        shapes = [e.pred_shape for e in self.entries] if shapes is None else list(shapes)
        needs = [bool(e.metrics or e.weighted_metrics) for e in self.entries]
        for t in self.terms:  # a function of yours at an inner node gets None for no target
            for i in t.outputs:
                needs[i] = needs[i] or t.subtree is None
        for i, (e, y, sw) in enumerate(zip(self.entries, ys, sws)):
            if y is not None and not hasattr(y, "shape"):
                raise TypeError(f"`y` for output '{e.name}' must be an array; received "
                                f"{type(y).__name__} (the model's outputs are {self.names}).")
            if needs[i] and y is None:
                with_loss = [n for n, t in zip(self.names, needs) if t]
                raise ValueError(
                    f"No target `y` was given for output '{e.name}', which has a loss or metrics "
                    f"(the model's outputs are {self.names}). Outputs with a loss or metrics: "
                    f"{with_loss}. Pass `y` (a list or a dict keyed "
                    "by output name for several outputs), or bind targets with "
                    "compile(target_tensors=...)."
                )
            self._check_weight(e, sw, y, shapes[i])
        for t in self.terms:
            if t.subtree is None and ys[t.outputs[0]] is not None:
                i = t.outputs[0]
                self._check_target(self.entries[i], t.loss, tuple(ys[i].shape[1:]), shapes[i])

    def data_rules(self) -> list[tuple[str, bool, bool, Any]]:
        """Per output, what the data checks (data/checks.py) need: the name, whether targets
        are needed (a loss or metrics), whether a built-in loss reads them, and ``(classes,
        ignore_class, loss name)`` when a built-in loss takes sparse class labels (else None)."""
        per: list[list[Any]] = [[] for _ in self.entries]
        for t in self.terms:  # a loss at an inner node reads its subtree: not a plain target
            for i in t.outputs:
                per[i].append(t.loss if t.subtree is None else None)
        rules = []
        for e, found in zip(self.entries, per):
            builtin = [loss for loss in found if loss is not None and type(loss).fn is not None]
            sparse = None
            for loss in builtin:
                if losses.crossentropy_kind(loss) == "sparse":
                    p = e.pred_shape or (1,)
                    classes = p[losses.class_axis(loss, len(p))]
                    sparse = (classes, loss.options.get("ignore_class"), loss.name)
            needs_y = bool(any(f is not None for f in found) or e.metrics
                           or e.weighted_metrics)
            rules.append((e.name, needs_y, bool(builtin), sparse))
        return rules

    def _check_target(self, e: OutputEntry, loss: Any, y_shape: tuple[int, ...],
                      pred_shape: tuple[int, ...]) -> None:
        if type(loss).fn is None:
            return  # a user's function or Loss subclass sets its own shape contract
        p = pred_shape or (1,)
        if losses.crossentropy_kind(loss) == "sparse":
            losses.class_axis(loss, len(p))  # refuses the batch axis
        accepted = losses.target_shapes(loss, (0, *pred_shape))
        if (0, *y_shape) not in accepted:
            hint = (" For integer class labels use sparse_categorical_crossentropy."
                    if y_shape in (p[:-1], p[:-1] + (1,)) else "")
            if tuple(y_shape) == tuple(pred_shape):  # the same shapes: say what differs
                wanted = " or ".join(str(tuple(s[1:])) for s in sorted(accepted, key=len))
                hint = (f" The shapes are equal, but {loss.name!r} takes per-sample shape "
                        f"{wanted} (one integer class index per sample), not one value per "
                        "class; for one-hot targets use categorical_crossentropy.")
            raise ValueError(
                f"`y` for output '{e.name}' has per-sample shape {y_shape} but the output has "
                f"per-sample shape {pred_shape}, which the loss {loss.name!r} cannot pair "
                f"with it (the model's outputs are {self.names}).{hint}"
            )

    def _check_weight(self, e: OutputEntry, sw: Any, y: Any, pred_shape: tuple[int, ...]) -> None:
        if sw is not None and not hasattr(sw, "shape"):
            raise TypeError(f"`sample_weight` for output '{e.name}' must be an array; received "
                            f"{type(sw).__name__} (the model's outputs are {self.names}).")
        if e.temporal:
            if len(pred_shape) < 2:
                raise ValueError(
                    f"`sample_weight_mode`='temporal' for output '{e.name}' needs an output of "
                    f"rank >= 3 (batch, timesteps, features); the output has shape "
                    f"{_batch_shape(pred_shape)}. The model's outputs are {self.names}."
                )
            if sw is not None and np.ndim(sw) != 2:
                raise ValueError(
                    f"`sample_weight_mode`='temporal' for output '{e.name}' expects 2-D "
                    f"`sample_weight` of shape {_batch_shape(pred_shape[:1])} (batch, "
                    f"timesteps); received shape {np.shape(sw)}. The model's outputs are "
                    f"{self.names}."
                )
        if sw is None:
            return
        values_shape = ((pred_shape or (1,))[:-1])
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
        """Total loss and the unweighted value of each loss term."""
        total, per_term = None, []
        for t in self.terms:
            i = t.outputs[0]
            xp = namespace(preds[i])
            if t.subtree is None:
                y, p = losses.align(ys[i], ops.as_float(xp, preds[i]))
            else:  # a loss function of the user's own, on the subtree's structures
                y = self.spec.subtree(t.subtree, ys)
                p = self.spec.subtree(t.subtree, [ops.as_float(xp, q) for q in preds])
            values = as_values(t.loss.call(y, p), preds[i])
            value = losses.weighted_reduce(values, sws[i], t.loss.reduction)
            per_term.append(value)
            weighted = value if t.weight == 1.0 else value * t.weight  # one kernel less
            total = weighted if total is None else total + weighted
        if self.model_loss:
            own = preds[-1]
            if own is None:
                raise ValueError(
                    "The model was compiled without a loss and trains on the 'loss' its module "
                    "returns, but this call's output has no 'loss' entry. Pass what the module "
                    "needs to compute it (for Hugging Face models: `labels` in x), or compile "
                    "with a loss.")
            own = ops.as_float(namespace(own), own)
            total = own if total is None else total + own
        if total is None:
            xp = namespace(preds[0])
            total = xp.zeros((), dtype=xp.float32, device=ops.device(preds[0]))
        return total, per_term

    def init_states(self) -> dict[str, Any]:
        """Fresh zero states (NumPy); the shapes are worked out once, not at every reset."""
        if self._initial is None:
            states = {"loss": _tracker_init()}
            for log in self.loss_logs:
                states[log] = _tracker_init()
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
        output's shapes tells the final shapes (the states are sums, so they start at 0).
        Only kompile's own metrics are probed: mean metrics (any function, also one written
        in torch ops) keep scalar states, and a metric class of your own sizes its states
        in ``init``."""
        state = m.init()
        own = getattr(type(m).update, "__module__", "").startswith("kompile.")
        if e.y_shape is None or isinstance(m, Mean) or not own:
            return state
        with np.errstate(divide="ignore", invalid="ignore"):  # zeros: only shapes matter
            probe = m.update(state, np.zeros((1, *e.y_shape), np.float32),
                             np.zeros((1, *(e.pred_shape or (1,))), np.float32), None)
        return {k: v if np.shape(probe[k]) == np.shape(v)
                else np.zeros(np.shape(probe[k]), np.asarray(v).dtype) for k, v in state.items()}

    def update(self, states: dict[str, Any], ys: list[Any], preds: list[Any], sws: list[Any],
               total: Any, per_output: list[Any], batch_size: Any) -> dict[str, Any]:
        new = {"loss": _tracker_update(states["loss"], total, batch_size)}
        sums: dict[str, Any] = {}
        for t, value in zip(self.terms, per_output):
            if t.log:
                sums[t.log] = value if t.log not in sums else sums[t.log] + value
        for log, value in sums.items():
            new[log] = _tracker_update(states[log], value, batch_size)
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

    def _metric(self, log: str) -> Metric:
        """The metric whose state ``log`` is (loss trackers: mean states, sums)."""
        return self._metrics[log][1] if log in self._metrics else _TRACKER

    def merge_rules(self) -> dict[str, dict[str, str]]:
        """How each state merges (``Metric.merges``), by log and state key."""
        return {log: {k: self._metric(log).merge_rule(k) for k in state}
                for log, state in self.init_states().items()}

    def merge(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        """States ``a`` and ``b`` as one, each metric's by its own ``merge``."""
        return {log: self._metric(log).merge(a[log], b[log]) for log in a}
