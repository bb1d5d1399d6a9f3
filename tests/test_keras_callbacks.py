"""Keras's callback tests (``keras/src/callbacks/*_test.py``), translated case by case.

Each Keras ``Sequential`` of ``Dense`` layers becomes the same stack of ``nnx.Linear`` /
``torch.nn.Linear`` (``_stack``); the data, arguments and assertions are Keras's. Left out:
logging through ``absl`` (kompile prints), Keras's ``DummyModel`` weight restoring (kompile's
EarlyStopping snapshots its backend; ``tests/test_callbacks.py`` covers restoring), and the
BackupAndRestore/TerminateOnNaN interplay (``tests/test_resume.py``). Where kompile differs by
design the case says so: an unknown ``monitor`` warns (Keras raises), and ``y`` holding
``inf`` is refused before training (Keras trains to NaN), so the TerminateOnNaN cases make
the loss overflow with Keras's other recipe (kernels of 1e5).
"""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

import kompile as kp

TRAIN_SAMPLES, TEST_SAMPLES, INPUT_DIM, BATCH_SIZE = 10, 10, 3, 4


def _stack(backend, sizes, n_in, relu=(), const=None, seed=0, softmax=False):
    """``Sequential([Dense(s) for s in sizes])``; ``relu`` lists the layers with a relu,
    ``softmax`` puts one on the last, ``const`` fills every kernel (Keras's
    ``initializers.Constant``), biases start at 0."""
    rng = np.random.default_rng(seed)
    dims = [n_in, *sizes]
    kernels = [np.full((a, b), const, np.float32) if const is not None
               else rng.uniform(-0.8, 0.8, (a, b)).astype(np.float32)
               for a, b in zip(dims[:-1], dims[1:])]
    if backend == "jax":
        import jax
        import jax.numpy as jnp
        from flax import nnx

        class Stack(nnx.Module):
            def __init__(self):
                self.layers = nnx.List([nnx.Linear(a, b, rngs=nnx.Rngs(i))
                                        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))])
                for layer, k in zip(self.layers, kernels):
                    layer.kernel[...] = jnp.asarray(k)

            def __call__(self, x):
                for i, layer in enumerate(self.layers):
                    x = layer(x)
                    x = jax.nn.relu(x) if i in relu else x
                return jax.nn.softmax(x) if softmax else x

        return Stack()
    import torch
    from torch import nn

    mods = []
    for i, k in enumerate(kernels):
        lin = nn.Linear(*k.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(k.T))
            lin.bias.zero_()
        mods += [lin, nn.ReLU()] if i in relu else [lin]
    return nn.Sequential(*mods, *([nn.Softmax(-1)] if softmax else []))


def _rand(*shape, seed=1337):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _one_hot(n, seed):
    labels = np.random.default_rng(seed).choice(2, size=n)
    return np.eye(2, dtype=np.float32)[labels]


# ----------------------------------------------------------------------------- EarlyStopping


def test_early_stopping_modes(backend):
    x_train, y_train = _rand(10, 5, seed=1), _rand(10, 1, seed=2)
    x_test, y_test = _rand(10, 5, seed=3), _rand(10, 1, seed=4)
    model = kp.Model(_stack(backend, [1, 1], 5, relu=(0, 1))).compile(
        "adam", "mae",
        metrics=["mse", "acc", "accuracy", "hinge", kp.metrics.F1Score(name="f1_score")])
    cases = [("max", "val_mse", "max"), ("min", "val_loss", "min"), ("auto", "val_mse", "min"),
             ("auto", "loss", "min"), ("auto", "acc", "max"), ("auto", "val_accuracy", "max"),
             ("auto", "hinge", "min"), ("auto", "f1_score", "max")]
    for mode, monitor, expected_mode in cases:
        stop = kp.callbacks.EarlyStopping(patience=0, monitor=monitor, mode=mode)
        hist = model.fit(x_train, y_train, batch_size=5, validation_data=(x_test, y_test),
                         callbacks=[stop], epochs=2, verbose=0)
        assert stop.resolved_mode == expected_mode, monitor
        assert monitor in hist.history
    # an unknown monitor in auto mode raises at the first epoch end, as in Keras
    with pytest.raises(ValueError, match="monitor='unknown' with mode='auto'"):
        model.fit(x_train, y_train, batch_size=5, validation_data=(x_test, y_test),
                  callbacks=[kp.callbacks.EarlyStopping(monitor="unknown")], epochs=2,
                  verbose=0)


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_early_stopping_patience(patience):
    losses = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]
    stopper = kp.callbacks.EarlyStopping(monitor="loss", patience=patience)
    stopper.set_model(_FakeModel())
    stopper.on_train_begin()
    for epoch, loss in enumerate(losses):
        stopper.on_epoch_end(epoch=epoch, logs={"loss": loss})
        if stopper.model.stop_training:
            break
    assert stopper.stopped_epoch == max(patience, 1) + 2


class _FakeModel:
    stop_training = False


def test_early_stopping_reuse(backend):
    data = _rand(100, 1, seed=5)
    labels = np.where(data > 0.5, 1, 0).astype(np.float32)
    model = kp.Model(_stack(backend, [1, 1], 1, relu=(0, 1))).compile("sgd", "mae",
                                                                      metrics=["mse"])
    stopper = kp.callbacks.EarlyStopping(monitor="mse", patience=3)
    assert len(model.fit(data, labels, callbacks=[stopper], verbose=0, epochs=20).epoch) >= 3
    assert len(model.fit(data, labels, callbacks=[stopper], verbose=0, epochs=20).epoch) >= 3


def test_early_stopping_state_reset_across_fit_calls():
    stopper = kp.callbacks.EarlyStopping(monitor="loss", patience=3)
    stopper.set_model(_FakeModel())
    stopper.on_train_begin()
    stopper.best, stopper.wait, stopper.stopped_epoch, stopper.best_epoch = 0.1, 3, 5, 5
    stopper.best_weights = object()
    stopper.on_train_begin()
    assert stopper.best is None and stopper.wait == 0 and stopper.stopped_epoch == 0
    assert stopper.best_epoch == 0 and stopper.best_weights is None


@pytest.mark.parametrize("kwargs,least", [({"baseline": 0.6, "patience": 3}, 3),
                                          ({"start_from_epoch": 2, "patience": 3}, 5),
                                          ({"start_from_epoch": 2, "patience": 0}, 2)])
def test_early_stopping_baseline_and_start_from_epoch(backend, kwargs, least):
    x_train, y_train = _rand(10, 5, seed=6), _rand(10, 1, seed=7)
    model = kp.Model(_stack(backend, [1, 1], 5, relu=(0, 1))).compile("sgd", "mae",
                                                                      metrics=["mse"])
    stopper = kp.callbacks.EarlyStopping(monitor="mse", **kwargs)
    hist = model.fit(x_train, y_train, callbacks=[stopper], verbose=0, epochs=20)
    assert len(hist.epoch) >= least


def test_early_stopping_without_improvement_on_baseline_stops_at_patience():
    # Keras's second DummyModel case: nothing beats the baseline -> 5 epochs; best is epoch 2
    stop = kp.callbacks.EarlyStopping(monitor="val_loss", patience=5, baseline=0.5)
    stop.set_model(_FakeModel())
    stop.on_train_begin()
    trained = 0
    for epoch, loss in enumerate([0.9, 0.8, 0.7, 0.71, 0.72, 0.73]):
        trained += 1
        stop.on_epoch_end(epoch, logs={"val_loss": loss})
        if stop.model.stop_training:
            break
    assert trained == 5 and stop.best_epoch == 2


# ----------------------------------------------------------------------------- learning rate


def _lr_model(backend, lr):
    x_train, y_train = _rand(10, 3, seed=8), _one_hot(10, seed=9)
    model = kp.Model(_stack(backend, [5, 2], 3)).compile(kp.optimizers.Adam(lr), "mse")
    return model, x_train, y_train


@pytest.mark.parametrize("kwargs,epochs,expected", [
    ({"min_delta": 100}, 2, 0.01),                           # test_reduces_lr_with_model_fit
    ({"min_delta": 10, "min_lr": 0.005}, 4, 0.005),          # test_honors_min_lr
    ({"min_delta": 100, "cooldown": 2}, 4, 0.001),           # test_cooldown
])
def test_reduce_lr_on_plateau_in_fit(backend, kwargs, epochs, expected):
    model, x, y = _lr_model(backend, 0.1)
    reduce_lr = kp.callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss",
                                               **kwargs)
    model.fit(x, y, validation_data=(_rand(10, 3, seed=10), _one_hot(10, seed=11)),
              callbacks=[reduce_lr], epochs=epochs, verbose=0)
    assert model.learning_rate == pytest.approx(expected, rel=1e-6)


def test_reduce_lr_on_plateau_state_reset_across_fit_calls():
    reduce_lr = kp.callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="loss",
                                               min_delta=0, cooldown=2)
    reduce_lr.on_train_begin()
    reduce_lr.best, reduce_lr.wait, reduce_lr.cooldown_counter = 0.5, 3, 2
    reduce_lr.on_train_begin()
    assert reduce_lr.best is None and reduce_lr.wait == 0 and reduce_lr.cooldown_counter == 0


@pytest.mark.parametrize("callback", [
    lambda: kp.callbacks.ReduceLROnPlateau(patience=1, factor=0.1, min_delta=100),
    lambda: kp.callbacks.LearningRateScheduler(lambda step, lr: lr / 2),
])
def test_learning_rate_callbacks_refuse_a_schedule(backend, callback):
    model, x, y = _lr_model(backend, 0.1)
    model.compile(kp.optimizers.Adam(kp.schedules.PolynomialDecay(
        initial_learning_rate=0.1, decay_steps=10)), "mse")
    with pytest.raises(TypeError, match="schedule"):
        model.fit(x, y, validation_data=(x, y), callbacks=[callback()], epochs=2, verbose=0)


def test_learning_rate_scheduler_updates_and_logs(backend, capsys):
    model, x, y = _lr_model(backend, 0.001)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[
        kp.callbacks.LearningRateScheduler(lambda step: 1.0 / (2.0 + step), verbose=1)])
    assert model.learning_rate == 0.5
    assert "LearningRateScheduler setting learning rate to 0.5" in capsys.readouterr().out
    # test_schedule_dependent_on_previous_learning_rate
    model.compile(kp.optimizers.Adam(0.03), "mse")
    model.fit(x, y, epochs=2, verbose=0,
              callbacks=[kp.callbacks.LearningRateScheduler(lambda step, lr: lr / 2)])
    assert model.learning_rate == pytest.approx(0.03 / 4.0, rel=1e-6)
    # test_learning_rate_in_history
    hist = model.fit(x, y, epochs=1, verbose=0,
                     callbacks=[kp.callbacks.LearningRateScheduler(lambda step, lr: 0.5)])
    assert type(hist.history["learning_rate"][0]) is float
    assert hist.history["learning_rate"][0] == 0.5


# ----------------------------------------------------------------------------- CSVLogger


def test_csv_logger(backend, tmp_path):
    path = tmp_path / "log.tsv"
    sep = "\t"
    x_train, y_train = _rand(TRAIN_SAMPLES, INPUT_DIM, seed=12), _rand(TRAIN_SAMPLES, 1, seed=13)
    val = (_rand(TEST_SAMPLES, INPUT_DIM, seed=14), _rand(TEST_SAMPLES, 1, seed=15))

    def make_model():
        return kp.Model(_stack(backend, [2, 1], INPUT_DIM, relu=(0,))).compile(
            "sgd", "mse", metrics=["mse"])

    # case 1, a new file with the given separator
    make_model().fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=val, epochs=1,
                     verbose=0, callbacks=[kp.callbacks.CSVLogger(path, separator=sep)])
    with open(path) as f:
        assert csv.Sniffer().sniff(f.read()).delimiter == sep
    # case 2, append to the file (no second header); case 3, the same object reused
    model = make_model()
    cbks = [kp.callbacks.CSVLogger(path, separator=sep, append=True)]
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=val, callbacks=cbks,
              epochs=1, verbose=0)
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=val, callbacks=cbks,
              epochs=2, verbose=0)
    lines = path.read_text().splitlines()
    assert all(line.count(sep) == 4 for line in lines)
    assert len(lines) == 5 and len(re.findall("epoch", " ".join(lines))) == 1
    path.unlink()
    # val_loss is in every row with validation_freq > 1: "NA" where validation did not run
    hist = make_model().fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=val,
                            validation_freq=3, epochs=5, verbose=0,
                            callbacks=[kp.callbacks.CSVLogger(path, separator=sep)])
    with open(path) as f:
        for idx, row in enumerate(csv.DictReader(f, delimiter=sep), 1):
            assert row["val_loss"] == (str(hist.history["val_loss"][0]) if idx == 3 else "NA")


def _exploding(backend):
    """Keras's TerminateOnNaN model: five Dense(2, relu) with kernels of 1e5, then Dense(2)."""
    return kp.Model(_stack(backend, [2] * 5 + [2], INPUT_DIM, relu=range(5), const=1e5))


def test_terminate_on_nan_with_csv_logger(backend, tmp_path):
    # test_TerminateOnNaN and test_stop_training_csv: the loss overflows in the first epoch
    path = tmp_path / "csv_logger.csv"
    model = _exploding(backend).compile("sgd", "mean_squared_error")
    hist = model.fit(_rand(TRAIN_SAMPLES, INPUT_DIM), _one_hot(TRAIN_SAMPLES, 1),
                     batch_size=BATCH_SIZE, epochs=20, verbose=0,
                     validation_data=(_rand(TEST_SAMPLES, INPUT_DIM, seed=2),
                                      _one_hot(TEST_SAMPLES, 3)),
                     callbacks=[kp.callbacks.TerminateOnNaN(), kp.callbacks.CSVLogger(path)])
    loss = hist.history["loss"]
    assert len(loss) == 1 and not np.isfinite(loss[0])
    with open(path) as f:
        values = [row for row in csv.reader(f) if row]
    assert any(v in ("nan", "inf") for v in values[-1]), values


def test_terminate_on_nan_raise_error_skips_on_train_end(backend):
    class Tracking(kp.callbacks.Callback):
        train_end_called = False

        def on_train_end(self, logs=None):
            self.train_end_called = True

    tracking = Tracking()
    model = _exploding(backend).compile("sgd", "mse")
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 0"):
        model.fit(_rand(2, INPUT_DIM), _one_hot(2, 1), batch_size=1, epochs=1, verbose=0,
                  callbacks=[tracking, kp.callbacks.TerminateOnNaN(raise_error=True)])
    assert not tracking.train_end_called


@pytest.mark.parametrize("raise_error", [False, True])
def test_terminate_on_nan_normal_training(backend, raise_error):
    model = kp.Model(_stack(backend, [1], 1)).compile("sgd", "mse")
    x = np.array([[1.0], [2.0]], np.float32)
    hist = model.fit(x, x, epochs=2, verbose=0,
                     callbacks=[kp.callbacks.TerminateOnNaN(raise_error=raise_error)])
    assert len(hist.history["loss"]) == 2


def test_monitoring_a_vector_metric(backend, tmp_path):
    # found translating test_early_stopping: F1Score() logs one value per class; with one
    # class (Keras's Dense(1) model) it is that value, with more it cannot be ordered
    x, y = _rand(12, 5, seed=16), _one_hot(12, 17)
    model = kp.Model(_stack(backend, [2], 5)).compile("sgd", "mse",
                                                     metrics=[kp.metrics.F1Score()])
    checkpoint = kp.callbacks.ModelCheckpoint(tmp_path / "best.weights.safetensors",
                                              monitor="f1_score", mode="max",
                                              save_best_only=True, save_weights_only=True)
    for callback in (kp.callbacks.EarlyStopping(monitor="f1_score", mode="max"),
                     kp.callbacks.ReduceLROnPlateau(monitor="f1_score", mode="max"),
                     checkpoint):
        with pytest.raises(ValueError, match=r"`monitor`='f1_score' is a vector of 2 values"):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    y1 = y[:, :1]
    model = kp.Model(_stack(backend, [1], 5)).compile("sgd", "mse",
                                                     metrics=[kp.metrics.F1Score()])
    model.fit(x, y1, epochs=2, verbose=0, callbacks=[checkpoint])
    assert checkpoint.best is not None and (tmp_path / "best.weights.safetensors").exists()


# ----------------------------------------------------------------------------- ModelCheckpoint
# test_model_checkpoint_options and test_model_checkpoint_loading; files are .safetensors
# (kompile refuses .keras/.h5 names), Keras's metrics.Accuracy("acc") is the "acc" string.


def _checkpoint_model(backend):
    return kp.Model(_stack(backend, [5, 3], INPUT_DIM, relu=(0,), softmax=True)).compile(
        "sgd", "categorical_crossentropy", metrics=["acc"])


def _checkpoint_data():
    rng = np.random.default_rng(42)
    x = rng.normal(size=(60, INPUT_DIM)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]
    return (x[:30], y[:30]), (x[30:], y[30:])


def _fit(model, callback, data, batch_size=5, epochs=1):
    (x, y), val = data
    model.fit(x, y, batch_size=batch_size, validation_data=val, callbacks=[callback],
              epochs=epochs, verbose=0)


@pytest.mark.parametrize("kwargs,saved", [
    ({"monitor": "val_loss", "mode": "auto"}, True),                              # case 1
    ({"monitor": "val_loss", "mode": "min"}, True),                               # case 2
    ({"monitor": "val_acc", "mode": "max"}, True),                                # case 3
    ({"monitor": "val_acc", "mode": "max", "save_best_only": True}, True),        # case 4
    ({"monitor": "val_acc", "mode": "max", "save_best_only": True,
      "initial_value_threshold": -0.01}, True),                                   # case 11
    ({"monitor": "val_loss", "save_best_only": True}, True),                      # case 12
    ({"monitor": "val_loss", "mode": "min", "save_best_only": True,
      "initial_value_threshold": 0}, False),                                      # case 13
    ({"monitor": "val_loss", "save_best_only": True,
      "initial_value_threshold": 0}, False),                                      # case 14
])
def test_model_checkpoint_options(backend, tmp_path, kwargs, saved):
    path = tmp_path / "subdir" / "checkpoint.safetensors"  # the folder is created
    _fit(_checkpoint_model(backend), kp.callbacks.ModelCheckpoint(path, **kwargs),
         _checkpoint_data())
    assert path.exists() == saved


def test_model_checkpoint_unknown_monitor_and_auc_threshold(backend, tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    model = _checkpoint_model(backend)
    # case 5: an unknown monitor warns and saves (Keras 3.15)
    with pytest.warns(UserWarning, match="Can save best model only with unknown available"):
        _fit(model, kp.callbacks.ModelCheckpoint(path, monitor="unknown", save_best_only=True,
                                                 mode="min"), _checkpoint_data())
    assert path.exists()
    path.unlink()
    # case 15: "auto" reads val_auc as "max"; nothing beats 1
    model.compile("sgd", "categorical_crossentropy", metrics=[kp.metrics.AUC()])
    _fit(model, kp.callbacks.ModelCheckpoint(path, monitor="val_auc", save_best_only=True,
                                             initial_value_threshold=1), _checkpoint_data())
    assert not path.exists()
    # case 6: an unknown mode warns and falls back to auto
    with pytest.warns(UserWarning, match="ModelCheckpoint mode 'unknown' is unknown"):
        assert kp.callbacks.ModelCheckpoint(path, mode="unknown").mode == "auto"


@pytest.mark.parametrize("weights_only", [False, True])
def test_model_checkpoint_save_freq_in_batches(backend, tmp_path, weights_only):
    # cases 8a/8b: 5 batches an epoch, save_freq=15 -> epochs 3, 6, 9
    template = str(tmp_path / "checkpoint.epoch{epoch:02d}.safetensors")
    _fit(_checkpoint_model(backend),
         kp.callbacks.ModelCheckpoint(template, save_freq=15, save_weights_only=weights_only),
         _checkpoint_data(), batch_size=6, epochs=10)
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == [template.format(epoch=e).rsplit("/", 1)[1] for e in (3, 6, 9)]
    # cases 10a/10b: the batch in the name, save_freq=1, 2 batches an epoch
    folder = tmp_path / "batches"
    template = str(folder / "checkpoint.epoch{epoch:02d}batch{batch:02d}.safetensors")
    _fit(_checkpoint_model(backend),
         kp.callbacks.ModelCheckpoint(template, save_freq=1, save_weights_only=weights_only),
         _checkpoint_data(), batch_size=15, epochs=5)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"checkpoint.epoch{e:02d}batch{b:02d}.safetensors" for e in range(1, 6) for b in (1, 2))


def test_model_checkpoint_loading(backend, tmp_path):
    path = tmp_path / "checkpoint.weights.safetensors"
    model = _checkpoint_model(backend)
    _fit(model, kp.callbacks.ModelCheckpoint(path, save_best_only=True, save_weights_only=True),
         _checkpoint_data())
    new_model = kp.Model(_stack(backend, [5, 3], INPUT_DIM, relu=(0,), seed=9, softmax=True))
    new_model.load_weights(path)
    for ref, got in zip(model.get_weights(), new_model.get_weights(), strict=True):
        np.testing.assert_allclose(got, ref)
