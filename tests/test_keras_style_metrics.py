"""Keras-style metrics (issue 23): ``kp.metrics.Metric`` subclasses written with Keras's
protocol (add_variable, update_state, result, reset_state) inside compiled steps on both
backends, and Keras metric/loss objects given to compile.

References: NumPy counts and means over the model's own predictions (SGD(0) keeps the
weights fixed, so every batch sees the same model), and Keras 3's own metric classes run
on the same predictions.
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp

keras = pytest.importorskip("keras")


def _true_positives_class(backend, base=None):
    """The keras-io guide's CategoricalTruePositives ("Training & evaluation with the
    built-in methods", keras-io guides/training_with_built_in_methods.py) with only its
    base class changed; on torch, keras.ops (JAX here) is replaced by torch's functions."""
    if backend == "jax":
        from keras import ops

        class CategoricalTruePositives(base or kp.metrics.Metric):
            def __init__(self, name="categorical_true_positives", **kwargs):
                super().__init__(name=name, **kwargs)
                self.true_positives = self.add_variable(
                    shape=(), name="ctp", initializer="zeros"
                )

            def update_state(self, y_true, y_pred, sample_weight=None):
                y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
                values = ops.cast(y_true, "int32") == ops.cast(y_pred, "int32")
                values = ops.cast(values, "float32")
                if sample_weight is not None:
                    sample_weight = ops.cast(sample_weight, "float32")
                    values = ops.multiply(values, sample_weight)
                self.true_positives.assign_add(ops.sum(values))

            def result(self):
                return self.true_positives

            def reset_state(self):
                # The state of the metric will be reset at the start of each epoch.
                self.true_positives.assign(0.0)

        return CategoricalTruePositives
    import torch

    class TorchCategoricalTruePositives(kp.metrics.Metric):
        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = torch.argmax(y_pred, dim=1).reshape(-1, 1)
            values = (y_true.to(torch.int32) == y_pred.to(torch.int32)).float()
            if sample_weight is not None:
                values = values * sample_weight.float()
            self.true_positives.assign_add(values.sum())

        def result(self):
            return self.true_positives

        def reset_state(self):
            self.true_positives.assign(0.0)

    return TorchCategoricalTruePositives


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    return x, (x[:, :1] + 0.3 * x[:, 1:2] > 0).astype(np.int32)


def test_the_guides_categorical_true_positives_ports_by_its_base_class(make_model, backend):
    x, y = _data()
    metric_cls = _true_positives_class(backend)
    model = kp.Model(make_model("linear", n_in=4, n_out=2)).compile(
        kp.optimizers.SGD(0.0), kp.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[metric_cls()])
    hist = model.fit(x, y, batch_size=16, epochs=2, verbose=0)  # 3 batches, the last of 8
    pred = model.predict(x, verbose=0)
    want = float((np.argmax(pred, 1)[:, None] == y).sum())
    # Keras's own class (keras.metrics.Metric) over the same batches: an epoch sum
    ref_keras = _true_positives_class("jax", keras.metrics.Metric)()
    for s in range(0, 40, 16):
        ref_keras.update_state(y[s:s + 16], pred[s:s + 16])
    assert float(ref_keras.result()) == want
    assert hist.history["categorical_true_positives"] == [want, want]  # reset per epoch
    logs = model.evaluate(x, y, batch_size=8, return_dict=True, verbose=0)
    assert logs["categorical_true_positives"] == want
    # sample weights reach update_state for weighted_metrics only, as in Keras
    w = np.linspace(0, 1, 40).astype(np.float32)
    model.compile(kp.optimizers.SGD(0.0), kp.losses.SparseCategoricalCrossentropy(True),
                  metrics=[metric_cls(name="plain")], weighted_metrics=[metric_cls()])
    logs = model.evaluate(x, y, sample_weight=w, return_dict=True, verbose=0)
    ref_keras.reset_state()  # (its (batch, 1) values times (batch,) weights broadcast)
    for s in range(0, 40, 32):
        ref_keras.update_state(y[s:s + 32], pred[s:s + 32], sample_weight=w[s:s + 32])
    assert logs["categorical_true_positives"] == pytest.approx(float(ref_keras.result()),
                                                                rel=1e-5)
    assert logs["plain"] == want
    # standalone use, as in Keras
    m = metric_cls()
    m.update_state(_as_backend(backend, y[:16]), _as_backend(backend, pred[:16]))
    assert float(m.result()) == float((np.argmax(pred[:16], 1)[:, None] == y[:16]).sum())
    assert [v.name for v in m.variables] == ["ctp"]
    m.reset_state()
    assert float(m.result()) == 0.0


def _as_backend(backend, a):
    if backend == "jax":
        return a
    import torch

    return torch.as_tensor(a)


class WeightedMeanError(kp.metrics.Metric):
    """A two-variable Keras-style mean (result = total / count), written with array
    arithmetic that works on JAX and torch arrays alike."""

    def __init__(self, name="weighted_mean_error"):
        super().__init__(name=name)
        self.total = self.add_variable(name="total")
        self.count = self.add_weight(name="count", initializer=0.0)

    def update_state(self, y_true, y_pred, sample_weight=None):
        err = abs(y_pred - y_true)
        if sample_weight is not None:
            err = err * sample_weight.reshape(-1, 1)
            self.count.assign_add(sample_weight.sum())
        else:
            self.count.assign_add(err.shape[0])
        self.total.assign_add(err.sum())

    def result(self):
        return self.total / self.count


def test_a_keras_style_mean_logs_its_epoch_result_not_a_mean_of_batches(make_model, backend):
    x, _ = _data()
    y = np.random.default_rng(1).normal(size=(40, 1)).astype(np.float32)
    model = kp.Model(make_model("linear", n_in=4, n_out=1)).compile(kp.optimizers.SGD(0.0), "mse",
        weighted_metrics=[WeightedMeanError()])
    w = np.linspace(0.1, 2, 40).astype(np.float32)
    hist = model.fit(x, y, sample_weight=w, batch_size=16, epochs=1, verbose=0)
    err = np.abs(model.predict(x, verbose=0) - y)[:, 0]
    want = float((err * w).sum() / w.sum())  # batches of 16, 16, 8: a batch mean differs
    assert hist.history["weighted_mean_error"][0] == pytest.approx(want, rel=1e-5)
    assert model.evaluate(x, y, batch_size=7, return_dict=True, verbose=0)[
        "weighted_mean_error"] == pytest.approx(float(err.mean()), rel=1e-5)


def test_keras_metric_and_loss_objects_are_converted_or_refused(make_model, backend):
    x, y = _data()
    model = kp.Model(make_model("linear", n_in=4, n_out=2)).compile(
        kp.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy()])
    logs = model.evaluate(x, y, batch_size=16, return_dict=True, verbose=0)
    pred = model.predict(x, verbose=0)
    ref_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, pred)
    assert logs["loss"] == pytest.approx(float(ref_loss), rel=1e-5)
    ref = keras.metrics.SparseCategoricalAccuracy()
    ref.update_state(y, pred)
    assert logs["sparse_categorical_accuracy"] == pytest.approx(float(ref.result()))

    class KerasCustom(keras.metrics.Metric):
        def update_state(self, y_true, y_pred, sample_weight=None):
            pass

        def result(self):
            return 0.0

    with pytest.raises(TypeError, match=r"The Keras metric KerasCustom .* has no kompile "
                                        r"equivalent.*subclass kp.metrics.Metric instead"):
        kp.metrics.get(KerasCustom())
    with pytest.raises(TypeError, match=r"The Keras metric MeanIoU .* no kompile equivalent"):
        kp.Model(make_model("linear", n_in=4, n_out=2)).compile(
            "sgd", "mse", metrics=[keras.metrics.MeanIoU(num_classes=2)])
