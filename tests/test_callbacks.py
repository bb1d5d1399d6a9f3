"""Callbacks against scripted log sequences, Keras 3's own callbacks and NumPy references.

EarlyStopping and ReduceLROnPlateau decisions are compared with Keras 3's callbacks fed the
same sequences; end-to-end tests run on both backends, script the monitored value with a
LambdaCallback and compare weights with snapshots or with a NumPy SGD trajectory.
"""

import csv
import math
import os
import types

import numpy as np
import pytest

import kompile as kp
from kompile.callbacks.monitor import direction

from . import models

# ----------------------------------------------------------------------------- helpers


def _regression(n=16, n_in=4, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, n_in)).astype(np.float32)
    y = (x @ r.normal(size=(n_in, 1)) + 0.5).astype(np.float32)
    return x, y


def _sgd_reference(x, y, lrs, n_in=4):
    """Full-batch SGD on mse from models.init_weights, in float64 NumPy."""
    w, b = (a.astype(np.float64) for a in models.init_weights(n_in, 1))
    n = len(x)
    for lr in lrs:
        err = x @ w + b - y
        w, b = w - lr * 2.0 / n * x.T @ err, b - lr * 2.0 / n * err.sum(0)
    return w, b


def _kernel_bias(model):
    weights = model.get_weights()
    kernel = next(a for a in weights if a.ndim == 2)
    bias = next(a for a in weights if a.ndim == 1)
    return kernel, bias


def _scripted(values, key="val_score", snapshots=None, model_ref=None):
    """A LambdaCallback putting ``values[epoch]`` into the epoch logs (and snapshotting)."""

    def on_epoch_end(epoch, logs):
        logs[key] = values[epoch]
        if snapshots is not None:
            snapshots.append([a.copy() for a in model_ref[0].get_weights()])

    return kp.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def _linear_sgd(make_model, lr=0.1):
    return kp.Model(make_model("linear")).compile(kp.optimizers.SGD(lr), "mse")


# ----------------------------------------------------------------------------- monitor


def test_monitor_direction_from_names():
    assert direction("val_loss") == "min" and direction("z_loss") == "min"
    assert direction("val_sparse_categorical_accuracy") == "max"
    assert direction("acc") == "max" and direction("val_auc_1") == "max"
    assert direction("mean_absolute_error") == "min" and direction("out_mae") == "min"
    assert direction("false_positives") == "min" and direction("true_positives") == "max"
    assert direction("something") is None
    cb = kp.callbacks.EarlyStopping(monitor="something")
    cb.set_model(types.SimpleNamespace(stop_training=False))
    with pytest.raises(ValueError, match="monitor='something' with mode='auto'.*mode='max'"):
        cb.on_epoch_end(0, {"something": 1.0})
    with pytest.raises(ValueError, match="`mode` must be one of 'auto', 'min', 'max'; "
                                         "received 'minimum'"):
        kp.callbacks.ReduceLROnPlateau(mode="minimum")


def test_missing_monitor_warns_with_available_logs():
    cb = kp.callbacks.EarlyStopping(monitor="val_loss")
    cb.set_model(types.SimpleNamespace(stop_training=False))
    with pytest.warns(UserWarning, match="`val_loss`, which is not in the logs. Available "
                                         "logs: loss"):
        cb.on_epoch_end(0, {"loss": 1.0})


# ----------------------------------------------------------------------------- EarlyStopping

ES_CASES = [
    ({"patience": 2}, [1.0, 0.9, 0.95, 0.91, 0.8, 0.85, 0.86, 0.87]),
    ({"patience": 1, "min_delta": 0.05}, [1.0, 0.97, 0.9, 0.89, 0.7, 0.69, 0.5]),
    ({"patience": 2, "baseline": 0.8}, [1.0, 0.9, 0.85, 0.7, 0.75, 0.72, 0.71]),
    ({"patience": 1, "start_from_epoch": 3}, [1.0, 2.0, 3.0, 0.5, 0.6, 0.7, 0.4]),
    ({"patience": 2, "mode": "max", "monitor": "val_acc"},
     [0.5, 0.6, 0.55, 0.58, 0.7, 0.65, 0.66, 0.64]),
    ({"patience": 0}, [1.0, 0.9, 0.95, 0.8]),
    ({"patience": 3, "baseline": 0.5}, [1.0, 0.9, 0.8, 0.7, 0.6]),
]


def _drive(cb, model, monitor, values):
    cb.set_model(model)
    cb.on_train_begin({})
    for epoch, value in enumerate(values):
        cb.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            return epoch
    return None


@pytest.mark.keras
@pytest.mark.parametrize("kwargs,values", ES_CASES)
def test_early_stopping_matches_keras(kwargs, values):
    keras = pytest.importorskip("keras")
    monitor = kwargs.get("monitor", "val_loss")
    ours, theirs = kp.callbacks.EarlyStopping(**kwargs), keras.callbacks.EarlyStopping(**kwargs)
    m1, m2 = (types.SimpleNamespace(stop_training=False) for _ in range(2))
    assert _drive(ours, m1, monitor, values) == _drive(theirs, m2, monitor, values)
    assert (ours.stopped_epoch, ours.best_epoch, ours.wait) == \
        (theirs.stopped_epoch, theirs.best_epoch, theirs.wait)
    assert ours.best == pytest.approx(float(theirs.best))


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_restores_best_weights(make_model, restore):
    x, y = _regression()
    scores = [1.0, 0.8, 0.9, 0.7, 0.75, 0.72, 0.71, 0.74, 0.73]
    snaps: list = []
    ref: list = []
    model = _linear_sgd(make_model)
    ref.append(model)
    stop = kp.callbacks.EarlyStopping(monitor="val_score", mode="min", patience=3,
                                      restore_best_weights=restore)
    hist = model.fit(x, y, batch_size=16, epochs=9, verbose=0,
                     callbacks=[_scripted(scores, snapshots=snaps, model_ref=ref), stop])
    assert hist.epoch == list(range(7))  # best at epoch 3, patience 3 -> stops after epoch 6
    assert stop.stopped_epoch == 6 and stop.best_epoch == 3
    expected = snaps[3] if restore else snaps[6]
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(snaps[3][0], snaps[6][0])


# ----------------------------------------------------------------------------- learning rate

RLROP_CASES = [
    ({"patience": 2, "factor": 0.5}, [1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.94, 0.95, 0.96]),
    ({"patience": 1, "factor": 0.1, "cooldown": 2, "min_lr": 1e-3},
     [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9]),
    ({"patience": 1, "min_delta": 0.1, "mode": "max", "monitor": "val_acc"},
     [0.1, 0.15, 0.3, 0.35, 0.5, 0.45]),
]


@pytest.mark.keras
@pytest.mark.parametrize("kwargs,values", RLROP_CASES)
def test_reduce_lr_on_plateau_matches_keras(kwargs, values):
    keras = pytest.importorskip("keras")
    monitor = kwargs.get("monitor", "val_loss")
    ours = kp.callbacks.ReduceLROnPlateau(**kwargs)
    theirs = keras.callbacks.ReduceLROnPlateau(**kwargs)
    fake_ours = types.SimpleNamespace(learning_rate=0.1, stop_training=False)
    fake_theirs = types.SimpleNamespace(optimizer=types.SimpleNamespace(learning_rate=0.1),
                                        stop_training=False)
    ours.set_model(fake_ours)
    theirs.set_model(fake_theirs)
    ours.on_train_begin({})
    theirs.on_train_begin({})
    for epoch, value in enumerate(values):
        logs_ours, logs_theirs = {monitor: value}, {monitor: value}
        ours.on_epoch_end(epoch, logs_ours)
        theirs.on_epoch_end(epoch, logs_theirs)
        assert logs_ours["learning_rate"] == pytest.approx(logs_theirs["learning_rate"])
        assert fake_ours.learning_rate == pytest.approx(
            float(fake_theirs.optimizer.learning_rate)), epoch


def _counting_linear():
    """A Flax linear model counting its Python calls: under jit, one per trace."""
    import jax.numpy as jnp
    from flax import nnx

    traces = {"n": 0}

    class CountingDense(nnx.Module):
        def __init__(self):
            w, b = models.init_weights(4, 1)
            self.kernel, self.bias = nnx.Param(jnp.asarray(w)), nnx.Param(jnp.asarray(b))

        def __call__(self, x):
            traces["n"] += 1
            return x @ self.kernel + self.bias

    return CountingDense(), traces


def test_reduce_lr_on_plateau_changes_jitted_lr_without_retrace(backend):
    x, y = _regression()
    if backend == "jax":
        module, traces = _counting_linear()
    else:
        module, traces = models.build("torch", "linear"), None
    model = kp.Model(module).compile(kp.optimizers.SGD(0.1), "mse")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    if backend == "jax":
        assert model.jit_compile is True
        after_first = traces["n"]
    # mode='max' on a falling loss: no improvement after the first epoch of this fit, so
    # with patience 1 the rate halves at the end of every later epoch
    plateau = kp.callbacks.ReduceLROnPlateau(monitor="loss", mode="max", patience=1,
                                             factor=0.5, min_delta=0.0)
    hist = model.fit(x, y, batch_size=16, epochs=5, initial_epoch=1, verbose=0,
                     callbacks=[plateau])
    lrs = [0.1, 0.1, 0.1, 0.05, 0.025]  # the rate each epoch ran with
    assert hist.history["learning_rate"] == pytest.approx(lrs[1:], rel=1e-6)
    assert model.learning_rate == pytest.approx(0.0125, rel=1e-6)
    w, b = _sgd_reference(x, y, lrs)
    kernel, bias = _kernel_bias(model)
    np.testing.assert_allclose(kernel, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, b, rtol=1e-5, atol=1e-6)
    if backend == "jax":
        assert traces["n"] == after_first  # the new rates reached the compiled step as data


def test_learning_rate_scheduler(make_model):
    x, y = _regression()
    model = _linear_sgd(make_model, lr=0.2)
    seen = []
    sched = kp.callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr / 2)
    hist = model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[
        sched, kp.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(
            model.learning_rate))])
    assert seen == pytest.approx([0.2, 0.2, 0.1, 0.05])
    assert hist.history["learning_rate"] == pytest.approx([0.2, 0.2, 0.1, 0.05])
    w, b = _sgd_reference(x, y, [0.2, 0.2, 0.1, 0.05])
    np.testing.assert_allclose(_kernel_bias(model)[0], w, rtol=1e-5, atol=1e-6)
    # the one-argument form, and a schedule returning garbage
    model.fit(x, y, batch_size=16, epochs=1, verbose=0,
              callbacks=[kp.callbacks.LearningRateScheduler(lambda epoch: 0.01)])
    assert model.learning_rate == pytest.approx(0.01)
    with pytest.raises(ValueError, match="must return a float; received 'fast'"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[kp.callbacks.LearningRateScheduler(lambda e, lr: "fast")])


def test_learning_rate_needs_a_built_model(make_model):
    model = _linear_sgd(make_model)
    with pytest.raises(ValueError, match="created at the first training batch"):
        model.learning_rate  # noqa: B018


# ----------------------------------------------------------------------------- ModelCheckpoint


def test_model_checkpoint_writes_only_on_improvement(make_model, tmp_path):
    from safetensors.numpy import load_file

    x, y = _regression()
    scores = [1.0, 1.2, 0.8, 0.8, 0.5, 0.6]
    snaps, ref = [], []
    model = _linear_sgd(make_model)
    ref.append(model)
    ckpt = kp.callbacks.ModelCheckpoint(
        str(tmp_path / "ckpt-{epoch:02d}-{val_score:.2f}.safetensors"), monitor="val_score",
        mode="min", save_best_only=True, save_weights_only=True)
    model.fit(x, y, batch_size=16, epochs=6, verbose=0,
              callbacks=[_scripted(scores, snapshots=snaps, model_ref=ref), ckpt])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-01-1.00.safetensors",
                                            "ckpt-03-0.80.safetensors",
                                            "ckpt-05-0.50.safetensors"]
    for name, epoch in [("ckpt-01-1.00", 0), ("ckpt-03-0.80", 2), ("ckpt-05-0.50", 4)]:
        saved = load_file(str(tmp_path / f"{name}.safetensors"))  # safetensors' own reader
        kernel = next(a for a in snaps[epoch] if a.ndim == 2)
        np.testing.assert_array_equal(saved["kernel"], kernel)
    assert ckpt.best == 0.5


def test_model_checkpoint_batch_frequency_and_template_errors(make_model, tmp_path):
    x, y = _regression(20)
    model = _linear_sgd(make_model)
    ckpt = kp.callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch}-{batch}.safetensors"),
                                        save_weights_only=True, save_freq=2)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[ckpt])
    assert sorted(os.listdir(tmp_path)) == sorted(
        f"w-{e}-{b}.safetensors" for e, b in [(1, 2), (1, 4), (2, 1), (2, 3), (2, 5)])
    bad = kp.callbacks.ModelCheckpoint(str(tmp_path / "c-{val_acc:.2f}"), save_weights_only=True)
    with pytest.raises(KeyError, match=r"cannot fill the filepath template.*'val_acc'"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[bad])
    with pytest.raises(ValueError, match="`save_freq` must be 'epoch' or a positive number"):
        kp.callbacks.ModelCheckpoint("x", save_freq="batch")


# ----------------------------------------------------------------------------- CSVLogger


def test_csv_logger_appends_on_resume(make_model, tmp_path):
    x, y = _regression()
    path = tmp_path / "log.csv"
    model = _linear_sgd(make_model)
    h1 = model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y),
                   callbacks=[kp.callbacks.CSVLogger(path, append=True)])
    h2 = model.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, verbose=0,
                   validation_data=(x, y), callbacks=[kp.callbacks.CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3"]
    losses = h1.history["loss"] + h2.history["loss"]
    assert [float(r[1]) for r in rows[1:]] == losses
    assert [float(r[2]) for r in rows[1:]] == h1.history["val_loss"] + h2.history["val_loss"]
    # append=False starts over
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[kp.callbacks.CSVLogger(path)])
    with open(path, newline="") as f:
        assert len(list(csv.reader(f))) == 2


def test_csv_logger_separator_and_missing_validation(make_model, tmp_path):
    x, y = _regression()
    path = tmp_path / "log.tsv"
    model = _linear_sgd(make_model)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y),
              validation_freq=2, callbacks=[kp.callbacks.CSVLogger(path, separator="\t")])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch\tloss\tval_loss"
    assert lines[1].endswith("\tNA") and not lines[2].endswith("NA")


# ----------------------------------------------------------------------------- TensorBoard


def test_tensorboard_event_files_read_back(make_model, tmp_path):
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    x, y = _regression(16)
    model = _linear_sgd(make_model)
    tb = kp.callbacks.TensorBoard(tmp_path, update_freq=3, histogram_freq=2)
    hist = model.fit(x, y, batch_size=4, epochs=3, verbose=0, validation_data=(x[:8], y[:8]),
                     callbacks=[tb])

    def read(sub):
        acc = ea_mod.EventAccumulator(str(tmp_path / sub),
                                      size_guidance={ea_mod.SCALARS: 0, ea_mod.HISTOGRAMS: 0})
        acc.Reload()
        return acc

    train, val = read("train"), read("validation")
    events = train.Scalars("epoch_loss")
    assert [e.step for e in events] == [0, 1, 2]
    assert [e.value for e in events] == pytest.approx(hist.history["loss"], rel=1e-6)
    assert [e.value for e in train.Scalars("epoch_learning_rate")] == pytest.approx([0.1] * 3)
    assert [e.step for e in train.Scalars("batch_loss")] == [3, 6, 9, 12]  # 12 batches
    assert [e.value for e in val.Scalars("epoch_loss")] == pytest.approx(
        hist.history["val_loss"], rel=1e-6)
    assert [e.step for e in val.Scalars("evaluation_loss_vs_iterations")] == [4, 8, 12]
    assert "kernel/histogram" in train.Tags()["histograms"]
    assert [e.step for e in train.Histograms("kernel/histogram")] == [0, 2]
    with pytest.raises(ValueError, match="`embeddings_freq` is a TensorFlow feature"):
        kp.callbacks.TensorBoard(tmp_path, embeddings_freq=2)  # (profile_batch: a trace now)


# ----------------------------------------------------------------------------- misc


def test_terminate_on_nan(make_model):
    x, y = _regression(16)
    x[5, 0] = np.nan
    model = _linear_sgd(make_model)
    batches = []
    count = kp.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    hist = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0,
                     callbacks=[count, kp.callbacks.TerminateOnNaN()])
    assert batches == [0, 1] and hist.epoch == [0]
    assert math.isnan(hist.history["loss"][0])
    model = _linear_sgd(make_model)
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 1"):
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0,
                  callbacks=[kp.callbacks.TerminateOnNaN(raise_error=True)])


def test_lambda_callback_hooks(make_model):
    x, y = _regression(8)
    events = []
    cb = kp.callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append("begin"),
        on_epoch_begin=lambda e, logs: events.append(f"e{e}"),
        on_batch_end=lambda b, logs: events.append(f"b{b}:{logs['loss'] > 0}"),
        on_epoch_end=lambda e, logs: events.append(sorted(logs)),
        on_test_end=lambda logs: events.append("test"),
        on_train_end=lambda logs: events.append("end"))
    model = _linear_sgd(make_model)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, validation_data=(x, y), callbacks=[cb])
    assert events == ["begin", "e0", "b0:True", "b1:True", "test", ["loss", "val_loss"], "end"]
    with pytest.raises(TypeError, match="unexpected keyword argument 'on_epoch_finish'"):
        kp.callbacks.LambdaCallback(on_epoch_finish=print)
