"""Keras's ``keras/src/trainers/trainer_test.py``, the compile/fit cases, translated case by case.

Keras's ``ExampleModel`` (a ``Dense(units, use_bias=False, kernel_initializer="ones")``) and its
struct/list models are in ``keras_modules``. Each case asserts Keras's expected numbers (those
printed in Keras's test, or measured with Keras 3.15 on JAX where Keras's test only bounds them).
Left out: hook-count and stop tests (``tests/test_callbacks.py``), sparse/ragged tensors,
tf.data/grain/PyDataset adapters, custom ``train_step``/``compute_loss`` overrides, retracing
counters, state trees and TF determinism (not part of kompile's contract).
"""

import numpy as np
import pytest

import kompile as kp

from . import keras_modules as km


def example(backend, units=3, n_in=4):
    return kp.Model(km.ones_dense(backend, n_in, units))


class BatchCounter(kp.Callback):
    """Counts training batches per epoch and records the begin indices."""

    def __init__(self):
        super().__init__()
        self.per_epoch, self.begins = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append(0)

    def on_train_batch_begin(self, batch, logs=None):
        self.begins.append(batch)

    def on_train_batch_end(self, batch, logs=None):
        self.per_epoch[-1] += 1


# ----------------------------------------------------------------------------- fit / evaluate


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("use_steps_per_epoch", [False, True])
def test_fit_flow(backend, mode, use_steps_per_epoch):
    model = example(backend).compile(
        kp.optimizers.SGD(), kp.losses.MeanSquaredError(),
        metrics=[kp.metrics.MeanSquaredError()], run_eagerly=mode == "eager")
    x, y = np.ones((100, 4), np.float32), np.zeros((100, 3), np.float32)
    # Keras: steps_per_epoch=7 with 5 batches of arrays warns and trains 5 per epoch
    hist = model.fit(x, y, batch_size=20, epochs=3, verbose=0,
                     steps_per_epoch=7 if use_steps_per_epoch else None)
    # Keras's test: [14.5, 11.5, 8.5] with atol=1.0; measured Keras 3.15 (JAX):
    assert hist.history["mean_squared_error"] == pytest.approx(
        [14.402392, 10.991338, 8.388157], rel=1e-5)
    assert hist.history["loss"] == pytest.approx(hist.history["mean_squared_error"], rel=1e-6)


def test_fit_with_val_split_history_params(backend):
    model = example(backend).compile(kp.optimizers.SGD(), "mse")
    x, y = np.ones((100, 4), np.float32), np.zeros((100, 3), np.float32)
    hist = model.fit(x, y, batch_size=20, epochs=3, validation_split=0.2, verbose=0)
    # measured with Keras 3.15: {'verbose': 0, 'epochs': 3, 'steps': 4} (SPEC 6)
    assert hist.params == {"epochs": 3, "steps": 4, "verbose": 0}


def test_fit_with_val_split(backend):
    model = example(backend).compile(kp.optimizers.SGD(), "mse", metrics=["mse"])
    x, y = np.ones((100, 4), np.float32), np.zeros((100, 3), np.float32)
    hist = model.fit(x, y, batch_size=20, epochs=3, validation_split=0.2, verbose=0)
    assert {"loss", "val_loss"} <= set(hist.history)
    assert len(hist.history["val_loss"]) == 3


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_evaluate_flow(backend, mode):
    model = example(backend).compile(
        kp.optimizers.SGD(), kp.losses.MeanSquaredError(),
        metrics=[kp.metrics.MeanSquaredError()], run_eagerly=mode == "eager")
    x, y = np.ones((100, 4), np.float32), np.zeros((100, 3), np.float32)
    assert model.evaluate(x, y, batch_size=16, verbose=0) == pytest.approx([16.0, 16.0])
    out = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert isinstance(out, dict) and set(out) == {"loss", "mean_squared_error"}
    assert out["mean_squared_error"] == pytest.approx(16.0)


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_predict_flow(backend, mode):
    model = example(backend)
    if mode == "eager":
        model.compile(run_eagerly=True)
    out = model.predict(np.ones((100, 4), np.float32), batch_size=16, verbose=0)
    np.testing.assert_allclose(out, 4 * np.ones((100, 3)))


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_predict_flow_struct(backend, mode):
    model = kp.Model(km.struct_model(backend))
    if mode == "eager":
        model.compile(run_eagerly=True)
    x = {"x_one": np.ones((100, 4), np.float32), "x_two": np.ones((100, 4), np.float32)}
    out = model.predict(x, batch_size=16, verbose=0)
    assert isinstance(out, dict) and len(out) == 2
    np.testing.assert_allclose(out["y_one"], 4 * np.ones((100, 3)))
    np.testing.assert_allclose(out["y_two"], 4 * np.ones((100, 3)))


# ----------------------------------------------------------------------------- steps_per_execution


@pytest.mark.parametrize("steps_per_execution", [3, 101])
def test_steps_per_execution_steps_count(backend, steps_per_execution):
    x, y = np.ones((100, 4), np.float32), np.ones((100, 1), np.float32)
    model = example(backend, units=1).compile("sgd", "mse",
                                              steps_per_execution=steps_per_execution)
    counter = BatchCounter()
    hist = model.fit(x, y, batch_size=16, epochs=2, callbacks=[counter], verbose=0)
    calls = 1 + (100 - 1) // (steps_per_execution * 16)
    assert counter.per_epoch == [calls, calls]
    model_2 = example(backend, units=1).compile("sgd", "mse", steps_per_execution=1)
    hist_2 = model_2.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert hist.history["loss"] == pytest.approx(hist_2.history["loss"], rel=1e-6)
    np.testing.assert_allclose(model.get_weights()[0], model_2.get_weights()[0], rtol=1e-6)
    np.testing.assert_allclose(model.predict(x, batch_size=16, verbose=0),
                               model_2.predict(x, batch_size=16, verbose=0), rtol=1e-6)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(model_2.evaluate(x, y, verbose=0))


def _uneven_batches():
    sizes, i, j = [2, 3, 4], 0, 0
    while i < 100:
        n = sizes[j % 3]
        yield np.arange(i, min(i + n, 100), dtype=np.float32)[:, None]
        i, j = i + n, j + 1


@pytest.mark.parametrize("steps_per_execution", [1, 50])
def test_predict_preserve_order(backend, steps_per_execution):
    model = kp.Model(km.packed(backend, lambda x: x)).compile(
        "sgd", "mse", steps_per_execution=steps_per_execution)
    preds = model.predict(_uneven_batches(), verbose=0)
    np.testing.assert_array_equal(preds[:, 0], np.arange(len(preds), dtype=np.float32))
    assert len(preds) == 100


@pytest.mark.parametrize("steps_per_execution", [1, 50])
def test_predict_generator(backend, steps_per_execution):
    def batches():
        for i in range(0, 10, 2):
            yield (np.arange(i, i + 2, dtype=np.float32)[:, None],)

    model = kp.Model(km.packed(backend, lambda x: x)).compile(
        "sgd", "mse", steps_per_execution=steps_per_execution)
    preds = model.predict(batches(), verbose=0)
    np.testing.assert_array_equal(preds[:, 0], np.arange(10, dtype=np.float32))


def test_steps_per_execution_steps_count_without_training(backend):
    class Begins(kp.Callback):
        def __init__(self):
            super().__init__()
            self.test, self.predict = [], []

        def on_test_batch_begin(self, batch, logs=None):
            self.test.append(batch)

        def on_predict_batch_begin(self, batch, logs=None):
            self.predict.append(batch)

    x, y = np.ones((100, 4), np.float32), np.ones((100, 1), np.float32)
    model = example(backend, units=1).compile(loss="mse", steps_per_execution=3)
    cb = Begins()
    model.predict(x, batch_size=16, callbacks=[cb], verbose=0)
    model.evaluate(x, y, batch_size=16, callbacks=[cb], verbose=0)
    assert cb.predict == [0, 3, 6] and cb.test == [0, 3, 6]


# ----------------------------------------------------------------------------- steps_per_epoch

# distinct samples and shuffle=False, so a restart of the data at each epoch changes the weights
X_SPE = (np.arange(320, dtype=np.float32).reshape(80, 4) / 320)
Y_SPE = np.ones((80, 1), np.float32)
# measured with Keras 3.15 (JAX), Dense(1, ones, no bias), sgd, batch 8, shuffle=False
W_ONE_PASS_x4 = [0.5806386, 0.5792452, 0.57785183, 0.57645893]   # 4 epochs of 10 batches
W_TWO_PASSES = [0.7347822, 0.7338168, 0.73285156, 0.7318865]     # 20 batches in all


@pytest.mark.parametrize("steps_per_epoch,per_epoch,weights", [
    (10, [10, 10, 10, 10], W_ONE_PASS_x4),       # match_one_epoch
    (5, [5, 5, 5, 5], W_TWO_PASSES),             # match_multi_epoch
    pytest.param(9, [9, 1, 9, 1], W_TWO_PASSES,  # not_match_too_low
                 marks=pytest.mark.xfail(strict=True, reason="kompile differs (README table): "
                                         "every epoch runs steps_per_epoch batches, a new pass "
                                         "starting mid-epoch; Keras cuts the epoch short")),
    (11, [10, 10, 10, 10], W_ONE_PASS_x4),       # not_match_but_high_enough
])
def test_steps_per_epoch(backend, steps_per_epoch, per_epoch, weights):
    model = example(backend, units=1).compile("sgd", "mse")
    counter = BatchCounter()
    model.fit(X_SPE, Y_SPE, batch_size=8, epochs=4, steps_per_epoch=steps_per_epoch,
              shuffle=False, callbacks=[counter], verbose=0)
    assert counter.per_epoch == per_epoch
    np.testing.assert_allclose(model.get_weights()[0].ravel(), weights, rtol=1e-5)


@pytest.mark.parametrize("steps_per_epoch,per_epoch,weights", [
    (10, [5, 5, 5, 5], W_ONE_PASS_x4),           # match_one_epoch: 10 batches = 5 calls
    # match_multi_epoch: kompile differs. Keras 3.15 measured W_16_BATCHES here, which is not
    # what its own steps_per_execution=1 run gives; kompile's equals its spe=1 run (SPEC 5)
    (4, [2, 2, 2, 2], None),
    (12, [5, 5, 5, 5], W_ONE_PASS_x4),           # not_match_but_high_enough
])
def test_steps_per_execution_steps_per_epoch(backend, steps_per_epoch, per_epoch, weights):
    model = example(backend, units=1).compile("sgd", "mse", steps_per_execution=2)
    counter = BatchCounter()
    model.fit(X_SPE, Y_SPE, batch_size=8, epochs=4, steps_per_epoch=steps_per_epoch,
              shuffle=False, callbacks=[counter], verbose=0)
    assert counter.per_epoch == per_epoch
    if weights is None:  # the same batches one per call
        one = example(backend, units=1).compile("sgd", "mse", steps_per_execution=1)
        one.fit(X_SPE, Y_SPE, batch_size=8, epochs=4, steps_per_epoch=steps_per_epoch,
                shuffle=False, verbose=0)
        weights = one.get_weights()[0].ravel()
    np.testing.assert_allclose(model.get_weights()[0].ravel(), weights, rtol=1e-5)


def test_fit_with_different_batch_size_same_loss(backend):
    x = np.random.default_rng(0).random((100, 4)).astype(np.float32)
    y = np.ones((100, 1), np.float32)
    # Keras freezes the model (trainable=False); a zero learning rate does the same here
    model = example(backend, units=1).compile(kp.optimizers.SGD(learning_rate=0.0), "mse")
    loss1 = model.fit(x, y, batch_size=80, verbose=0).history["loss"]
    loss2 = model.fit(x, y, batch_size=100, verbose=0).history["loss"]
    assert loss1 == pytest.approx(loss2, rel=1e-6)


def test_evaluate_with_different_batch_size_same_loss(backend):
    x = np.random.default_rng(0).random((100, 4)).astype(np.float32)
    y = np.ones((100, 1), np.float32)
    model = example(backend, units=1).compile(loss="mse")
    assert model.evaluate(x, y, batch_size=80, verbose=0) == pytest.approx(
        model.evaluate(x, y, batch_size=100, verbose=0), rel=1e-6)


def test_evaluate_fixed_batch_dim_graph_matches_eager(backend):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype(np.float32), rng.normal(size=(32, 1)).astype(np.float32)

    def batches():
        for i in range(0, 32, 4):
            yield x[i:i + 4], y[i:i + 4]

    results = []
    for eager in (False, True):
        model = example(backend, units=1).compile(loss="mse", metrics=["mae"],
                                                  run_eagerly=eager)
        results.append(model.evaluate(batches(), verbose=0, return_dict=True)["mae"])
    assert results[0] == pytest.approx(results[1], abs=1e-5)
    assert results[0] == pytest.approx(np.mean(np.abs(x.sum(1, keepdims=True) - y)), rel=1e-5)


# ----------------------------------------------------------------------------- misc


def test_adds_loss_scaling_optimizer(backend):
    x, y = np.ones((128, 1), np.float32), np.zeros((128, 1), np.float32)
    model = kp.Model(km.ones_dense(backend, 1, 1), dtype_policy="mixed_float16")
    model.compile("rmsprop", "mse")
    model.fit(x, y, batch_size=32, verbose=0)
    assert isinstance(model.optimizer, kp.optimizers.LossScaleOptimizer)
    model = kp.Model(km.ones_dense(backend, 1, 1), dtype_policy="mixed_float16")
    model.compile("rmsprop", "mse", auto_scale_loss=False)
    assert not isinstance(model.optimizer, kp.optimizers.LossScaleOptimizer)
    model = kp.Model(km.ones_dense(backend, 1, 1), dtype_policy="mixed_bfloat16")
    model.compile("rmsprop", "mse")
    assert not isinstance(model.optimizer, kp.optimizers.LossScaleOptimizer)


@pytest.mark.filterwarnings("ignore:The module has no trainable variables")  # on purpose
def test_training_arg(backend):
    model = kp.Model(km.training_model(backend)).compile("rmsprop", "mse")
    x, y = np.ones((128, 1), np.float32), np.zeros((128, 1), np.float32)
    assert model.fit(x, y, batch_size=32, verbose=0).history["loss"] == pytest.approx([1.0])
    assert model.evaluate(x, y, batch_size=32, verbose=0) == pytest.approx(0.0)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.zeros((128, 1)))


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_on_batch_methods(backend, mode):
    model = example(backend).compile(
        kp.optimizers.SGD(), kp.losses.MeanSquaredError(),
        metrics=[kp.metrics.MeanSquaredError()], run_eagerly=mode == "eager")
    x, y = np.ones((100, 4), np.float32), np.zeros((100, 3), np.float32)
    sw = np.arange(100, dtype=np.float32) / 50.0
    logs = model.train_on_batch(x, y)
    assert isinstance(logs, list) and len(logs) == 2
    assert logs[0] == pytest.approx(16.0)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert isinstance(logs, dict) and len(logs) == 2
    assert logs["loss"] == pytest.approx(15.158, abs=1e-3)
    logs = model.test_on_batch(x, y)
    assert isinstance(logs, list) and len(logs) == 2
    assert logs[0] == pytest.approx(14.360, abs=1e-3)
    logs = model.test_on_batch(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(14.360, abs=1e-3)
    out = model.predict_on_batch(x)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out[0], [3.789511] * 3, rtol=1e-5)
    # with sample weights
    assert model.train_on_batch(x, y, sw)[0] == pytest.approx(14.217, abs=1e-3)
    assert model.test_on_batch(x, y, sw)[0] == pytest.approx(13.476, abs=1e-3)
    np.testing.assert_allclose(model.predict_on_batch(x)[0], [3.689468] * 3, rtol=1e-5)
    # with class weights (targets of zeros: class 0 by argmax)
    logs = model.train_on_batch(x, y, class_weight={1: 0.3, 0: 0.2})
    assert logs[0] == pytest.approx(2.722, abs=1e-3)


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_on_batch_methods_without_training(backend, mode):
    model = example(backend).compile(loss=kp.losses.MeanSquaredError(),
                                     metrics=[kp.metrics.MeanSquaredError()],
                                     run_eagerly=mode == "eager")
    x, y = np.ones((100, 4), np.float32), np.zeros((100, 3), np.float32)
    out = model.predict_on_batch(x)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out[0], [4.0, 4.0, 4.0])
    logs = model.test_on_batch(x, y)
    assert isinstance(logs, list) and logs[0] == pytest.approx(16.0)
    logs = model.test_on_batch(x, y, return_dict=True)
    assert len(logs) == 2 and logs["loss"] == pytest.approx(16.0)


def test_nested_input_predict(backend):
    rng = np.random.default_rng(0)
    x1, x2 = rng.random((2, 3, 4)).astype(np.float32)
    model = kp.Model(km.packed(backend, lambda x: x[0] + x[1]))
    assert model.predict((x1, x2), verbose=0).shape == (3, 4)
    model = kp.Model(km.packed(backend, lambda x: x["a"] + x["b"]))
    np.testing.assert_allclose(model.predict({"a": x1, "b": x2}, verbose=0), x1 + x2, rtol=1e-6)


def test_for_eval_epoch_iterator(backend):
    model = example(backend).compile("adam", "mse", metrics=["mean_absolute_error"])
    x, y = np.ones((16, 4), np.float32), np.zeros((16, 3), np.float32)
    model.fit(x, y, batch_size=4, validation_data=(x, y), verbose=0)
    # kompile differs: Keras's functional model has a fixed input rank, so reshaped validation
    # data fails there; a module applies to any shape it accepts and targets are checked
    # against each call's own outputs (issue 13 item 6), so (1, 16, 4) -> (1, 16, 3) works
    hist = model.fit(x, y, batch_size=4, verbose=0,
                     validation_data=(x.reshape((-1, 16, 4)), y.reshape((-1, 16, 3))))
    assert np.isfinite(hist.history["val_loss"][0])
    # ...and a fit with the original validation data afterwards works
    hist = model.fit(x, y, batch_size=4, validation_data=(x, y), verbose=0)
    assert "val_mean_absolute_error" in hist.history


def test_recompile(backend):
    model = example(backend, n_in=2).compile("sgd", "mse", metrics=["mean_squared_error"])
    x, y = np.ones((3, 2), np.float32), np.ones((3, 3), np.float32)
    hist_1 = model.fit(x, y, verbose=0).history
    eval_1 = model.evaluate(x, y, verbose=0, return_dict=True)
    model.compile("sgd", "mse", metrics=["mean_absolute_error"])
    hist_2 = model.fit(x, y, verbose=0).history
    eval_2 = model.evaluate(x, y, verbose=0, return_dict=True)
    assert sorted(hist_1) == sorted(eval_1) == ["loss", "mean_squared_error"]
    assert sorted(hist_2) == sorted(eval_2) == ["loss", "mean_absolute_error"]


def test_evaluate_return_list_respect_metrics_order(backend):
    def metrics_zero(y_true, y_pred):
        return 0.0

    def metrics_one(y_true, y_pred):
        return 1.0

    x, y = np.ones((3, 2), np.float32), np.ones((3, 3), np.float32)
    model = example(backend, n_in=2).compile("sgd", "mse", metrics=[metrics_zero, metrics_one])
    out = model.evaluate(x, y, verbose=0)
    assert len(out) == 3 and out[1:] == [0.0, 1.0]
    model.compile("sgd", "mse", metrics=[metrics_one, metrics_zero])
    out = model.evaluate(x, y, verbose=0)
    assert len(out) == 3 and out[1:] == [1.0, 0.0]


def test_nested_inputs(backend):
    model = kp.Model(km.list_input_model(backend)).compile("sgd", "mse", metrics=["mse"])
    x, y = [np.ones((3, 2), np.float32), np.ones((3, 3), np.float32)], np.ones((3, 2), np.float32)
    assert model.fit(x, y, verbose=0).history["loss"] == pytest.approx([16.0])
    assert model.train_on_batch(x, y)[0] == pytest.approx(14.44, abs=1e-2)
    assert model.evaluate(x, y, verbose=0)[0] == pytest.approx(13.0321, abs=1e-3)
    assert model.test_on_batch(x, y)[0] == pytest.approx(13.0321, abs=1e-3)
    assert model.predict(x, verbose=0).shape == (3, 2)
    assert model.predict_on_batch(x).shape == (3, 2)


def test_validation_data_infinite_generator(backend):
    class Recorder(kp.Callback):
        def __init__(self):
            super().__init__()
            self.train_counter = self.val_counter = 0

        def on_train_batch_end(self, batch, logs=None):
            self.train_counter += 1

        def on_test_batch_end(self, batch, logs=None):
            self.val_counter += 1

    def infinite_gen():
        while True:
            yield np.ones((2, 2), np.float32), np.ones((2, 3), np.float32)

    model = example(backend, n_in=2).compile("sgd", "mse", metrics=["mse"])
    rec = Recorder()
    model.fit(infinite_gen(), validation_data=infinite_gen(), steps_per_epoch=3,
              validation_steps=4, epochs=1, callbacks=[rec], verbose=0)
    assert (rec.train_counter, rec.val_counter) == (3, 4)


def test_loss_weights(backend):
    x, zeros = np.ones((40, 4), np.float32), np.zeros((40, 3), np.float32)
    model = example(backend).compile(kp.optimizers.SGD(), kp.losses.MeanSquaredError(),
                                     metrics=[kp.metrics.MeanSquaredError()], loss_weights=0.2)
    hist = model.fit(x, zeros, batch_size=20, epochs=3, verbose=0).history
    assert hist["loss"] == pytest.approx([3.182979, 3.115617, 3.049681], abs=1e-3)

    model = kp.Model(km.struct_model(backend)).compile(
        kp.optimizers.SGD(), {"y_one": kp.losses.MeanSquaredError(),
                              "y_two": kp.losses.MeanSquaredError()},
        metrics={"y_one": kp.metrics.MeanSquaredError(), "y_two": kp.metrics.MeanSquaredError()},
        loss_weights={"y_one": 0.1, "y_two": 0.2})
    hist = model.fit({"x_one": x, "x_two": x}, {"y_one": zeros, "y_two": zeros}, batch_size=20,
                     epochs=3, verbose=0).history
    assert hist["loss"] == pytest.approx([4.778718, 4.694403, 4.611693], abs=1e-3)

    model = kp.Model(km.list_output_model(backend)).compile(
        kp.optimizers.SGD(), [kp.losses.MeanSquaredError(), kp.losses.MeanSquaredError()],
        metrics=[kp.metrics.MeanSquaredError(), kp.metrics.MeanSquaredError()],
        loss_weights=[0.1, 0.2])
    hist = model.fit(x, [zeros, zeros], batch_size=20, epochs=3, verbose=0).history
    assert hist["loss"] == pytest.approx([4.778718, 4.694403, 4.611693], abs=1e-3)


def test_partial_loss_partial_label(backend):
    d = km.dense(backend, 2, 3)
    partial = kp.Model(km.packed(backend, lambda x: [d(x), d(x), d(x)]))
    partial.module.d = d
    partial.compile(loss=["mse", None, None])
    full = kp.Model(km.packed(backend, lambda x: [d(x), d(x), d(x)]))
    full.module.d = d
    full.compile(loss=["mse", "mse", "mse"])
    x, y = np.ones((32, 2), np.float32), np.ones((32, 3), np.float32)
    partial_logs = partial.evaluate(x, y, verbose=0, return_dict=True)
    logs = full.evaluate(x, [y] * 3, verbose=0, return_dict=True)
    assert partial_logs["loss"] * 3 == pytest.approx(logs["loss"])


# ----------------------------------------------------------------------------- data adapters


def _adapter_data(kind, backend):
    """Keras's create_dataset: 100 samples of x (4,), y (3,), batches of 16 (or 5 for arrays)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4)).astype(np.float32)
    y = rng.integers(0, 2, (100, 3)).astype(np.float32)
    if kind == "np_array":
        return (x, y), {"batch_size": 5}
    if kind in ("generator", "generator_infinite"):
        def gen():
            while True:
                for i in range(0, 100, 16):
                    yield x[i:i + 16], y[i:i + 16]
                if kind == "generator":
                    return
        return (gen(),), {"steps_per_epoch": 20} if kind == "generator_infinite" else {}
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, IterableDataset, TensorDataset

    if kind == "torch_dataloader_tensor":
        return (DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                           batch_size=16),), {}

    class Iterable(IterableDataset):
        def __iter__(self):
            for i in range(100):
                yield torch.from_numpy(x[i]), torch.from_numpy(y[i])

    class IterableWithLen(Iterable):
        def __len__(self):
            return 100

    dataset = IterableWithLen() if kind == "torch_dataloader_iterable_with_len" else Iterable()
    return (DataLoader(dataset, batch_size=16),), {}


ADAPTERS = ["np_array", "generator", "generator_infinite", "torch_dataloader_tensor",
            "torch_dataloader_iterable",
            "torch_dataloader_iterable_with_len"]


@pytest.mark.parametrize("class_weight", [None, {0: 1, 1: 2}])
@pytest.mark.parametrize("kind", ADAPTERS)
def test_fit_with_data_adapter(backend, kind, class_weight):
    data, kw = _adapter_data(kind, backend)
    model = example(backend).compile(kp.optimizers.Adagrad(), kp.losses.MeanSquaredError(),
                                     metrics=[kp.metrics.MeanSquaredError()])
    if kind == "generator":
        # kompile differs: a finite generator is used up by the first epoch; fit warns and stops
        # there. Keras 3.15 goes on and trains each later epoch on the 2 batches it peeked at
        # to infer the data's spec (measured: 20, 2, 2 batches).
        with pytest.warns(UserWarning, match="ran out"):
            hist = model.fit(*data, epochs=3, verbose=0, class_weight=class_weight, **kw)
        assert hist.epoch == [0] and np.isfinite(hist.history["loss"][0])
        return
    hist = model.fit(*data, epochs=3, verbose=0, class_weight=class_weight, **kw)
    assert len(hist.history["loss"]) == 3 and np.all(np.isfinite(hist.history["loss"]))
    if class_weight is None and kind not in ("generator", "generator_infinite"):
        assert hist.history["loss"] == pytest.approx(hist.history["mean_squared_error"])


# ----------------------------------------------------------------------------- live state


def _counter_model(backend):
    """Keras's CounterModel: a Dense(3) and three counters the callbacks increment."""
    if backend == "jax":
        import jax.numpy as jnp
        from flax import nnx

        class Counter(nnx.Module):
            def __init__(self):
                self.dense = km.dense(backend, 3, 3, ones=False, bias=True)
                self.train_counter = nnx.Variable(jnp.zeros(()))
                self.test_counter = nnx.Variable(jnp.zeros(()))
                self.predict_counter = nnx.Variable(jnp.zeros(()))

            def __call__(self, x):
                return self.dense(x)

        return Counter()
    import torch
    from torch import nn

    class TCounter(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = km.dense(backend, 3, 3, ones=False, bias=True)
            for name in ("train_counter", "test_counter", "predict_counter"):
                self.register_buffer(name, torch.zeros(()))

        def forward(self, x):
            return self.dense(x)

    return TCounter()


def _add_one(module, name):
    counter = getattr(module, name)
    if hasattr(counter, "add_"):
        counter.add_(1)
    else:
        counter[...] = counter[...] + 1


def _read(module, name):
    counter = getattr(module, name)
    return float(counter.item() if hasattr(counter, "item") else counter[...])


def test_callbacks_can_update_state_at_batch_boundary(backend):

    class CounterCallback(kp.Callback):
        def __init__(self):
            super().__init__()
            self.calls = {"train": 0, "test": 0, "predict": 0}

        def on_train_batch_end(self, batch, logs=None):
            _add_one(self.model.module, "train_counter")
            self.calls["train"] += 1

        def on_test_batch_end(self, batch, logs=None):
            _add_one(self.model.module, "test_counter")
            self.calls["test"] += 1

        def on_predict_batch_end(self, batch, logs=None):
            _add_one(self.model.module, "predict_counter")
            self.calls["predict"] += 1

    model = kp.Model(_counter_model(backend)).compile("sgd", "mse", metrics=["mse"],
                                                      run_eagerly=True)
    cb = CounterCallback()
    ones = np.ones((4, 3), np.float32)
    model.fit(ones, ones, callbacks=[cb], epochs=3, batch_size=1, verbose=0,
              validation_data=(np.ones((2, 3), np.float32), np.ones((2, 3), np.float32)))
    assert (cb.calls["train"], _read(model.module, "train_counter")) == (12, 12)
    assert (cb.calls["test"], _read(model.module, "test_counter")) == (6, 6)
    model.predict(ones, callbacks=[cb], batch_size=1, verbose=0)
    assert (cb.calls["predict"], _read(model.module, "predict_counter")) == (4, 4)


def test_rng_updated_during_predict(backend, request):
    """Keras's TestTimeDropout: dropout applied at inference too; two predicts differ."""
    if backend == "jax":
        import jax
        from flax import nnx

        class TestTimeDropout(nnx.Module):
            def __init__(self):
                self.rngs = nnx.Rngs(0)

            def __call__(self, x):
                keep = jax.random.bernoulli(self.rngs.dropout(), 0.5, x.shape)
                return x * keep / 0.5

        module = TestTimeDropout()
    else:
        import torch
        from torch import nn

        class TTestTimeDropout(nn.Module):
            def forward(self, x):
                return x * torch.bernoulli(torch.full_like(x, 0.5)) / 0.5

        module = TTestTimeDropout()
    model = kp.Model(module).compile("rmsprop", "mse")
    x = np.ones((32, 20), np.float32)
    out_1, out_2 = model.predict(x, verbose=0), model.predict(x, verbose=0)
    assert np.mean(np.abs(out_1 - out_2)) > 0.01
