"""Hook dispatch, hook-call counts and stopping, translated from Keras's own tests.

Sources: ``keras/src/trainers/trainer_test.py`` (StepCount / StepObserver, the steps-per-
execution counts, ``test_callback_methods_keys``, ``test_validation_data_infinite_generator``,
``test_stop_loop``, the counters of ``test_callbacks_can_update_state_at_batch_boundary``).
Keras's numbers are kept; the one deliberate difference (SPEC 5) is that the end index of
the last ``steps_per_execution`` call of an epoch is truncated to the epoch's last batch
(Keras reports ``begin + N - 1`` even past the data). Every test runs on both backends.
"""

import json

import numpy as np
import pytest

import kompile as kp
from kompile.callbacks.base import LazyLogs, format_value

from . import models


def _example_model(backend, units=1, n_in=4, spe=1, metrics=None, lr=0.01):
    module = models.build(backend, "linear", n_in=n_in, n_out=units)
    return kp.Model(module).compile(kp.optimizers.SGD(lr), "mse", metrics=metrics,
                                    steps_per_execution=spe)


class StepCount(kp.Callback):
    """Keras's StepCount: counts per epoch through the old hook names ``on_batch_*``."""

    def __init__(self, steps_per_execution, num_batches):
        super().__init__()
        self.spe, self.num_batches = steps_per_execution, num_batches
        self.begin_count = self.end_count = 0
        self.epoch_begin_count = self.epoch_end_count = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.begin_count = self.end_count = 0
        self.epoch_begin_count += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end_count += 1

    def on_batch_begin(self, batch, logs=None):
        assert batch == self.begin_count * self.spe, "Batch index is not correct"
        self.begin_count += 1

    def on_batch_end(self, batch, logs=None):
        self.end_count += 1
        # Keras: end_count * spe - 1; kompile truncates the last call to the epoch
        assert batch == min(self.end_count * self.spe, self.num_batches) - 1


class StepObserver(kp.Callback):
    def __init__(self):
        super().__init__()
        self.begin_count = self.end_count = 0
        self.epoch_begin_count = self.epoch_end_count = 0
        self.batch_loss_history = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_begin_count += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end_count += 1

    def on_batch_begin(self, batch, logs=None):
        self.begin_count += 1

    def on_batch_end(self, batch, logs=None):
        self.end_count += 1
        self.batch_loss_history.append(logs["mse"])


@pytest.mark.parametrize("spe", [3, 101])
def test_steps_per_execution_steps_count(backend, spe):
    data_size, batch_size, epochs = 100, 16, 2
    x, y = np.ones((data_size, 4), np.float32), np.ones((data_size, 1), np.float32)
    model = _example_model(backend, spe=spe)
    step_count = StepCount(spe, num_batches=7)
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=[step_count],
                        verbose=0)
    assert step_count.begin_count == 1 + (data_size - 1) // (spe * batch_size)
    assert step_count.end_count == step_count.begin_count
    assert step_count.epoch_begin_count == epochs == step_count.epoch_end_count
    model_2 = _example_model(backend, spe=1)
    history_2 = model_2.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    np.testing.assert_allclose(history.history["loss"], history_2.history["loss"], rtol=1e-5)
    for a, b in zip(model.get_weights(), model_2.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5)


@pytest.mark.parametrize("case", ["match_one_epoch", "not_match_but_high_enough"])
def test_steps_per_execution_steps_per_epoch(backend, case):
    batch_size, epochs, spe = 8, 2, 2
    num_batches = 5 * spe
    steps_per_epoch = num_batches if case == "match_one_epoch" else num_batches + spe
    x = np.ones((num_batches * batch_size, 4), np.float32)
    y = np.ones((num_batches * batch_size, 1), np.float32)
    model = _example_model(backend, spe=spe, metrics=["mse"])
    observer = StepObserver()
    with pytest.warns(UserWarning) if case != "match_one_epoch" else _no_warning():
        model.fit(x, y, batch_size=batch_size, epochs=epochs, steps_per_epoch=steps_per_epoch,
                  callbacks=[observer], verbose=0, shuffle=False)
    assert observer.begin_count == epochs * min(steps_per_epoch, num_batches) // spe
    assert observer.end_count == observer.begin_count
    assert observer.epoch_begin_count == epochs == observer.epoch_end_count
    model_2 = _example_model(backend, spe=1, metrics=["mse"])
    observer_2 = StepObserver()
    model_2.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=[observer_2], verbose=0,
                shuffle=False)
    np.testing.assert_allclose(observer.batch_loss_history,
                               observer_2.batch_loss_history[spe - 1::spe], rtol=1e-5)
    for a, b in zip(model.get_weights(), model_2.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5)


class _no_warning:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def test_steps_per_execution_steps_count_without_training(backend):
    class Count(kp.Callback):
        def __init__(self):
            super().__init__()
            self.test_count = self.predict_count = 0
            self.batches = [0, 3, 6]

        def on_test_batch_begin(self, batch, logs=None):
            assert batch == self.batches[self.test_count]
            self.test_count += 1

        def on_predict_batch_begin(self, batch, logs=None):
            assert batch == self.batches[self.predict_count]
            self.predict_count += 1

    x, y = np.ones((100, 4), np.float32), np.ones((100, 1), np.float32)
    model = _example_model(backend, spe=3)
    count = Count()
    model.predict(x, batch_size=16, callbacks=[count], verbose=0)
    assert count.predict_count == 3
    model.evaluate(x, y, batch_size=16, callbacks=[count], verbose=0)
    assert count.test_count == 3


@pytest.mark.parametrize("spe", [1, 3])
def test_callback_methods_keys(backend, spe):
    seen = {}

    class Keys(kp.Callback):
        pass

    def recorder(hook):
        def record(*args):
            logs = args[-1]
            assert logs is not None, hook
            seen.setdefault(hook, set()).add(tuple(sorted(logs.keys())))
        return record

    cb = Keys()
    for hook in ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
                 "on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end",
                 "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
                 "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end"):
        setattr(cb, hook, recorder(hook))  # hooks assigned on the instance
    model = _example_model(backend, units=3, spe=spe, metrics=["mean_absolute_error"])
    x, y = np.ones((16, 4), np.float32), np.zeros((16, 3), np.float32)
    model.fit(x, y, callbacks=[cb], batch_size=4, validation_data=(x, y), verbose=0)
    model.evaluate(x, y, batch_size=4, callbacks=[cb], verbose=0)
    model.predict(x, batch_size=4, callbacks=[cb], verbose=0)
    metrics = ("loss", "mean_absolute_error")
    with_val = (*metrics, "val_loss", "val_mean_absolute_error")
    assert seen == {
        "on_train_begin": {()}, "on_train_end": {with_val}, "on_epoch_begin": {()},
        "on_epoch_end": {with_val}, "on_test_begin": {()}, "on_test_end": {metrics},
        "on_predict_begin": {()}, "on_predict_end": {()}, "on_train_batch_begin": {()},
        "on_train_batch_end": {metrics}, "on_test_batch_begin": {()},
        "on_test_batch_end": {metrics}, "on_predict_batch_begin": {()},
        "on_predict_batch_end": {("outputs",)},
    }


def test_validation_data_infinite_generator(backend):
    model = _example_model(backend, units=3, n_in=2, metrics=["mse"])

    class Recorder(kp.Callback):
        def __init__(self):
            self.train_counter = self.val_counter = 0  # Keras's test skips super().__init__

        def on_train_batch_end(self, *args, **kwargs):
            self.train_counter += 1

        def on_test_batch_end(self, *args, **kwargs):
            self.val_counter += 1

    def infinite_gen():
        while True:
            yield np.ones((2, 2), np.float32), np.ones((2, 3), np.float32)

    recorder = Recorder()
    model.fit(infinite_gen(), validation_data=infinite_gen(), steps_per_epoch=3,
              validation_steps=4, epochs=1, shuffle=False, callbacks=[recorder], verbose=0)
    assert (recorder.train_counter, recorder.val_counter) == (3, 4)


@pytest.mark.parametrize("spe", [1, 2])
@pytest.mark.parametrize("method, gerund, hook", [("fit", "training", "train"),
                                                  ("evaluate", "evaluating", "test"),
                                                  ("predict", "predicting", "predict")])
def test_stop_loop(backend, method, gerund, hook, spe):
    model = _example_model(backend, units=3, n_in=2, spe=spe, metrics=["mse"])

    class Stopper(kp.Callback):
        def __init__(self, stop_count):
            self.stop_count, self.counter = stop_count, 0
            setattr(self, f"on_{hook}_batch_end", self.batch_end)

        def batch_end(self, *args, **kwargs):
            self.counter += 1
            if self.counter == self.stop_count:
                setattr(self.model, f"stop_{gerund}", True)

    def infinite_gen():
        while True:
            x, y = np.ones((2, 2), np.float32), np.ones((2, 3), np.float32)
            yield (x,) if method == "predict" else (x, y)

    stopper = Stopper(5)
    getattr(model, method)(infinite_gen(), callbacks=[stopper], verbose=0)
    assert stopper.counter == 5
    # the flag is reset when the loop starts again: arrays run all their batches
    x, y = np.ones((12, 2), np.float32), np.ones((12, 3), np.float32)
    counter = Stopper(10**6)
    args = (x,) if method == "predict" else (x, y)
    getattr(model, method)(*args, batch_size=2, callbacks=[counter], verbose=0)
    assert counter.counter == -(-6 // spe)


def test_batch_boundary_counters(backend):
    """The call counts of Keras's test_callbacks_can_update_state_at_batch_boundary."""
    counts = {"train": 0, "test": 0, "predict": 0}
    cb = kp.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: counts.__setitem__("train", counts["train"] + 1),
        on_test_batch_end=lambda b, logs: counts.__setitem__("test", counts["test"] + 1),
        on_predict_batch_end=lambda b, logs: counts.__setitem__("predict",
                                                                counts["predict"] + 1))
    model = _example_model(backend, units=3, n_in=3, metrics=["mse"])
    ones = np.ones((4, 3), np.float32)
    model.fit(ones, ones, callbacks=[cb], epochs=3, batch_size=1, verbose=0,
              validation_data=(ones[:2], ones[:2]))
    assert (counts["train"], counts["test"]) == (12, 6)
    model.predict(ones, callbacks=[cb], batch_size=1, verbose=0)
    assert counts["predict"] == 4


# ----------------------------------------------------------------------------- dispatch


def test_aliases_and_instance_hooks(backend):
    calls = []

    class Old(kp.Callback):  # only the old names: called for training batches
        def on_batch_begin(self, batch, logs=None):
            calls.append(("old_begin", batch))

        def on_batch_end(self, batch, logs=None):
            calls.append(("old_end", batch, sorted(logs)))

    class Both(kp.Callback):  # Keras: the new name wins, the old one is not called too
        def on_train_batch_end(self, batch, logs=None):
            calls.append(("new_end", batch))

        def on_batch_end(self, batch, logs=None):
            calls.append(("never", batch))

    plain = kp.Callback()
    plain.on_train_batch_end = lambda batch, logs: calls.append(("instance", batch))
    plain.on_batch_begin = lambda batch, logs: calls.append(("instance_old", batch))
    x, y = np.ones((4, 4), np.float32), np.ones((4, 1), np.float32)
    model = _example_model(backend)
    model.fit(x, y, batch_size=2, verbose=0, callbacks=[Old(), Both(), plain])
    assert calls == [("old_begin", 0), ("instance_old", 0), ("old_end", 0, ["loss"]),
                     ("new_end", 0), ("instance", 0),
                     ("old_begin", 1), ("instance_old", 1), ("old_end", 1, ["loss"]),
                     ("new_end", 1), ("instance", 1)]
    calls.clear()
    model.evaluate(x, y, batch_size=2, verbose=0, callbacks=[Old()])  # training hooks only
    assert calls == []


@pytest.mark.parametrize("spe", [1, 2])
def test_predict_batch_end_outputs(backend, spe):
    module = models.build(backend, "multi", n_in=4)
    model = kp.Model(module).compile("sgd", "mse", steps_per_execution=spe)
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    got = []
    cb = kp.callbacks.LambdaCallback(
        on_predict_batch_end=lambda batch, logs: got.append((batch, logs["outputs"])))
    full = model.predict(x, batch_size=3, verbose=0, callbacks=[cb])
    assert [b for b, _ in got] == ([0, 1, 2, 3] if spe == 1 else [1, 3])
    for _, out in got:
        assert list(out) == list(full) and all(isinstance(v, np.ndarray) for v in out.values())
    for key in full:  # the batches' outputs, in order, are the whole prediction
        np.testing.assert_array_equal(np.concatenate([out[key] for _, out in got]), full[key])
    assert [len(out["z"]) for _, out in got] == ([3, 3, 3, 1] if spe == 1 else [6, 4])


def test_unread_batch_logs_cost_no_host_sync(backend):
    passed = []

    class Counter(kp.Callback):
        def on_train_batch_end(self, batch, logs=None):
            passed.append(logs or {})  # Keras's idiom; keeps the logs, never reads them

    model = _example_model(backend)
    model.fit(np.ones((8, 4), np.float32), np.ones((8, 1), np.float32), batch_size=2,
              verbose=0, callbacks=[Counter()])
    assert len(passed) == 4 and all(isinstance(lg, LazyLogs) for lg in passed)
    assert all(lg._values is None for lg in passed)  # never computed: no transfer
    assert json.loads(json.dumps(dict(passed[-1]))) == {"loss": passed[-1]["loss"]}
    assert passed[-1]["loss"] >= 0 and passed[-1]._values is not None


def test_train_abort_hook(backend):
    events = []

    class Boom(kp.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    cb = kp.callbacks.LambdaCallback(on_train_abort=lambda err: events.append(type(err)),
                                     on_train_end=lambda logs: events.append("end"))
    model = _example_model(backend)
    with pytest.raises(KeyboardInterrupt):
        model.fit(np.ones((4, 4), np.float32), np.ones((4, 1), np.float32), epochs=3,
                  verbose=0, callbacks=[cb, Boom()])
    assert events == [KeyboardInterrupt]


# ----------------------------------------------------------------------------- formatting


def test_format_value_like_keras():
    cases = {1.2e-05: "1.2000e-05", -2e-4: "-2.0000e-04", 0.0: "0.0000", 0.5: "0.5000",
             1e-3: "0.0010", 1234.5678: "1234.5678", float("nan"): "nan",
             float("inf"): "inf"}
    for value, text in cases.items():
        assert format_value(value) == text
    assert format_value([1e-5, 0.25]) == "[1.0000e-05, 0.2500]"


@pytest.mark.filterwarnings("ignore:The module has no trainable variables")  # on purpose
def test_small_losses_print_in_scientific_notation(backend, tmp_path, capsys):
    x = np.zeros((4, 1), np.float32)
    y = np.full((4, 1), np.sqrt(1.2e-5), np.float32)  # identity model: loss = 1.2e-05
    model = kp.Model(models.build(backend, "identity")).compile(kp.optimizers.SGD(0.0), "mse")
    ckpt = kp.callbacks.ModelCheckpoint(str(tmp_path / "w.safetensors"), monitor="loss",
                                        save_best_only=True, save_weights_only=True, verbose=1)
    model.fit(x, y, epochs=1, batch_size=4, verbose=2, callbacks=[ckpt])
    out = capsys.readouterr().out
    assert "loss: 1.2000e-05" in out and "loss: 0.0000" not in out
    assert "loss improved from inf to 1.2000e-05" in out
