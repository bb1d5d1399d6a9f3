"""Regression metrics that are not a plain mean of a loss: RMSE and the R2 score.

Owns their states (sums, so ``merge`` is addition) and results, with Keras 3's arguments
and numbers. The mean-error metrics (mse, mae, ...) are losses wrapped by ``base.py``.
"""

from __future__ import annotations

from typing import Any

from .. import losses, ops
from ..ops import namespace
from .base import Mean, Metric, State, zeros


class RootMeanSquaredError(Mean):
    """The square root of the (weighted) mean squared error over every element seen.

    Args:
        name: The log name. Default ``"root_mean_squared_error"``.
        dtype: Accepted for Keras compatibility; states are float32.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.RootMeanSquaredError()
        >>> metric.update_state(np.zeros((2, 2)), np.array([[1.0, 1.0], [3.0, 3.0]]))
        >>> round(float(metric.result()), 4)
        2.2361
    """

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)

    def update(self, state: State, y_true: Any, y_pred: Any,  # type: ignore[override]
               sample_weight: Any = None):
        xp = namespace(y_pred)
        y_true, y_pred = losses.align(y_true, y_pred)
        y_pred = ops.as_float(xp, y_pred)
        error = y_pred - ops.as_float(xp, y_true, like=y_pred)
        return self.update_values(state, error * error, sample_weight)

    def result(self, state: State) -> Any:
        xp = namespace(state["total"])
        return xp.sqrt(super().result(state))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")


class R2Score(Metric):
    """Coefficient of determination per output column, then aggregated.

    ``num_regressors > 0`` gives the adjusted score, where the number of data points is the
    number of samples with a non-zero weight in at least one column (Keras 3.15 counted
    every entry, samples times columns; Keras fixed that after 3.15, in #23334). As in Keras
    it falls back to the plain score when there are not more data points than regressors
    + 1 (without the warning, since the result is computed under ``jit``).

    Args:
        class_aggregation: How the per-column scores combine: ``"uniform_average"``
            (default, their mean), ``"variance_weighted_average"`` (weighted by each
            column's target variance) or ``None`` (one score per column).
        num_regressors: The number of independent variables, for the adjusted R2.
            Default 0 (the plain score).
        name: The log name. Default ``"r2_score"``.
        dtype: Accepted for Keras compatibility; states are float32.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.R2Score()
        >>> metric.update_state(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [4.0]]))
        >>> float(metric.result())
        0.5
    """

    def __init__(self, class_aggregation: str | None = "uniform_average",
                 num_regressors: int = 0, name: str = "r2_score", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        if class_aggregation not in AGGREGATIONS:
            raise ValueError(f"Invalid `class_aggregation`: expected one of {list(AGGREGATIONS)}; "
                             f"received {class_aggregation!r}.")
        if num_regressors < 0:
            raise ValueError("Invalid `num_regressors`: expected an integer >= 0; "
                             f"received {num_regressors!r}.")
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors

    def init(self) -> State:
        # Per-column sums start with one broadcastable entry: columns are known at the first batch.
        return {"sum": zeros(1), "squared_sum": zeros(1), "residual": zeros(1),
                "count": zeros(1), "num_samples": zeros()}

    def update(self, state: State, y_true: Any, y_pred: Any, sample_weight: Any = None):
        xp = namespace(y_pred)
        y_true, y_pred = losses.align(y_true, y_pred)
        if y_pred.ndim != 2:
            raise ValueError("R2Score expects outputs of shape (batch, columns); received "
                             f"y_true {tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)}.")
        y_pred = ops.as_float(xp, y_pred)
        y_true = ops.as_float(xp, y_true, like=y_pred)
        w = (xp.ones_like(y_true) if sample_weight is None
             else losses.broadcast_weight(xp, sample_weight, y_true))
        weighted = y_true * w
        error = y_true - y_pred
        counted = xp.astype(xp.any(w != 0, axis=-1), w.dtype)  # a sample, not samples x columns
        new = {"sum": xp.sum(weighted, axis=0), "squared_sum": xp.sum(y_true * weighted, axis=0),
               "residual": xp.sum(error * error * w, axis=0), "count": xp.sum(w, axis=0),
               "num_samples": xp.sum(counted)}
        return {k: state[k] + new[k] for k in state}

    def result(self, state: State) -> Any:
        xp = namespace(state["sum"])
        mean = state["sum"] / state["count"]
        total = state["squared_sum"] - state["sum"] * mean
        raw = 1.0 - state["residual"] / total
        raw = xp.where(xp.isinf(raw), xp.zeros_like(raw), raw)
        if self.class_aggregation == "uniform_average":
            score = xp.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = xp.sum(total * raw) / xp.sum(total)
        else:
            score = raw
        if self.num_regressors:
            n, p = state["num_samples"], float(self.num_regressors)
            ok = n - 1.0 > p
            den = xp.where(ok, n - p - 1.0, xp.ones_like(n))
            score = xp.where(ok, 1.0 - (1.0 - score) * (n - 1.0) / den, score)
        return score

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype,
                "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}
