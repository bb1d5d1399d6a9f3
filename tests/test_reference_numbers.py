"""SPEC section 4 reference numbers, on every backend, through fit and evaluate."""

import numpy as np
import pytest

import kompile as kp

X5 = np.arange(5, dtype=np.float32)


def _identity(make_model, **compile_kwargs):
    compile_kwargs.setdefault("optimizer", kp.optimizers.SGD(learning_rate=0.0))
    return kp.Model(make_model("identity")).compile(**compile_kwargs)


# fixed modules on purpose
@pytest.mark.filterwarnings(
    "ignore:The module has no trainable variables:kompile.KompileWarning")
@pytest.mark.parametrize("batch_size", [2, 5])
def test_mse_reference_and_sample_weight(make_model, batch_size):
    model = _identity(make_model, loss="mse", metrics=["mse"], weighted_metrics=["mse"])
    y = np.zeros(5, np.float32)
    sw = np.array([1, 1, 1, 1, 0], np.float32)
    assert model.evaluate(X5, y, batch_size=batch_size, verbose=0, return_dict=True)["loss"] \
        == pytest.approx(6.0)
    logs = model.evaluate(X5, y, batch_size=batch_size, sample_weight=sw, verbose=0,
                          return_dict=True)
    assert logs == pytest.approx({"loss": 2.8, "mse": 6.0, "weighted_mse": 3.5})
    hist = model.fit(X5, y, batch_size=batch_size, sample_weight=sw, shuffle=False, verbose=0)
    assert hist.history["loss"][0] == pytest.approx(2.8)
    assert hist.history["weighted_mse"][0] == pytest.approx(3.5)
    assert hist.history["mse"][0] == pytest.approx(6.0)


def test_temporal_reference(make_model):
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    sw = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    for mode in (None, "temporal"):
        model = _identity(make_model, loss="mse", metrics=["mae"], weighted_metrics=["mse"],
                          sample_weight_mode=mode)
        logs = model.evaluate(x, np.zeros_like(x), sample_weight=sw, verbose=0,
                              return_dict=True)
        assert logs == pytest.approx({"loss": 8.25, "mse": 16.5, "mae": 5.5})


# fixed modules on purpose
@pytest.mark.filterwarnings(
    "ignore:The module has no trainable variables:kompile.KompileWarning")
def test_class_weight_reference(make_model):
    model = _identity(make_model, loss="mse")
    y = np.array([0, 1, 0, 1, 0], np.float32)
    hist = model.fit(X5, y, class_weight={0: 0, 1: 1}, batch_size=5, verbose=0)
    assert hist.history["loss"][0] == pytest.approx(0.8)
    # unlisted classes weigh 1.0; with sample_weight the two multiply
    hist = model.fit(X5, y, class_weight={0: 0.5}, sample_weight=np.full(5, 2.0, np.float32),
                     batch_size=5, verbose=0)
    errors = (X5 - y) ** 2
    expected = np.sum(errors * np.where(y == 0, 0.5, 1.0) * 2.0) / 5
    assert hist.history["loss"][0] == pytest.approx(expected)


def test_reductions(make_model):
    y = np.zeros(5, np.float32)
    sw = np.array([1, 1, 1, 1, 0], np.float32)
    for reduction, expected in [("sum", 14.0), ("mean_with_sample_weight", 3.5),
                                ("sum_over_batch_size", 2.8)]:
        model = _identity(make_model, loss=kp.losses.MeanSquaredError(reduction=reduction))
        assert model.evaluate(X5, y, sample_weight=sw, batch_size=5, verbose=0) == \
            pytest.approx(expected)
    with pytest.raises(ValueError, match="Invalid `reduction`.*'mean'"):
        kp.losses.MeanSquaredError(reduction="mean")


# fixed modules on purpose
@pytest.mark.filterwarnings(
    "ignore:The module has no trainable variables:kompile.KompileWarning")
def test_epoch_loss_is_batch_size_weighted(make_model):
    # batches of 2, 2, 1 with losses 0.5, 6.5, 16 -> (1 + 13 + 16) / 5 = 6.0 (not mean 7.67)
    model = _identity(make_model, loss="mse")
    hist = model.fit(X5, np.zeros(5, np.float32), batch_size=2, shuffle=False, verbose=0)
    assert hist.history["loss"][0] == pytest.approx(6.0)
