"""Cases of Keras's metric tests (``keras/src/metrics/*_test.py``) that the parity tests do not
reach: the stateful ``Mean`` calls a Keras callback or training script makes.

Keras's metric test files were run against ``kompile.metrics`` (their import swapped). What
differs, and why, is listed in the report of that run (``programs`` helper); the bug found
is here: ``kp.metrics.Mean().update_state(values)`` (Keras's form, used by keras-io's
``sklearn_metric_callbacks`` example) raised ``TypeError`` asking for ``y_pred``.
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp


@pytest.mark.parametrize("values,weight,expected", [
    ([1, 3, 5, 7], None, 4.0),                        # test_unweighted
    ([1, 3, 5, 7], [1, 1, 0, 0], 2.0),                # test_weighted
    ([1, 3, 5, 7], [-1, -1, 0, 0], 2.0),              # test_weighted_negative_weights
    ([[1, 3], [5, 7]], [[1, 1], [1, 0]], 3.0),        # test_weighted_nd
    ([[1, 3], [5, 7]], [[1, 0]], 3.0),                # test_weighted_nd_broadcast
])
def test_mean_takes_keras_arguments(values, weight, expected):
    forms = [lambda m: m.update_state(values, sample_weight=weight),
             lambda m: m.update_state(values, weight)]  # Keras's positional sample_weight
    for form in forms:
        mean = kp.metrics.Mean(name="mean", dtype="float32")
        form(mean)
        assert float(mean.result()) == pytest.approx(expected, abs=1e-6)
    assert float(kp.metrics.Mean()(values, sample_weight=weight)) == pytest.approx(expected)
    assert float(kp.metrics.Mean()(np.asarray(values), weight)) == pytest.approx(expected)


def test_mean_accumulates_and_resets():
    mean = kp.metrics.Mean()
    mean.update_state([1.0, 2.0])
    mean.update_state(np.array([6.0]), sample_weight=np.array([2.0]))
    assert float(mean.result()) == pytest.approx((1 + 2 + 12) / 4)
    mean.reset_state()
    mean.update_state([5.0])
    assert float(mean.result()) == 5.0
    with pytest.raises(TypeError, match=r"takes \(values, sample_weight=None\)"):
        mean.update_state([1.0], [1.0], [1.0])


def test_other_metrics_still_need_y_pred():
    metric = kp.metrics.MeanSquaredError()
    metric.update_state([[0.0, 1.0]], [[1.0, 1.0]])
    assert float(metric.result()) == 0.5
    for call in (lambda: metric.update_state([[0.0, 1.0]]), lambda: metric([[0.0, 1.0]]),
                 lambda: kp.metrics.RootMeanSquaredError().update_state([1.0]),
                 lambda: kp.metrics.AUC().update_state([1.0])):
        with pytest.raises(TypeError, match="needs `y_pred`"):
            call()
