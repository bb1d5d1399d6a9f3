"""Keras 3.15's semantics where kompile differed (issue 23): callbacks (translated from
keras/src/callbacks/*_test.py), data arguments and output names.

References: the behaviour Keras's own tests assert (raise / warn / save), hand-counted
batch orders, and Keras 3 run on the same inputs where a number is compared.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import kompile as kp

from . import models


def _data(n=40):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype(np.float32), rng.normal(size=(n, 1)).astype(np.float32)


def _model(backend, metrics=None):
    return kp.Model(models.build(backend, "linear", n_in=4, n_out=1)).compile(
        kp.optimizers.SGD(0.01), "mae", metrics=metrics or ["mse"])


class Recorded:
    """A re-iterable of 9 batches of 10 (like a DataLoader with shuffle=False) that records
    which batch it yields."""

    def __init__(self, x, y):
        self.x, self.y, self.seen = x, y, []

    def __iter__(self):
        for i in range(len(self.x) // 10):
            self.seen.append(i)
            yield self.x[i * 10:(i + 1) * 10], self.y[i * 10:(i + 1) * 10]

    def __len__(self):
        return len(self.x) // 10


def test_reiterables_continue_across_epochs_under_steps_per_epoch(backend):
    x, y = _data(90)
    data = Recorded(x, y)
    _model(backend).fit(data, epochs=3, steps_per_epoch=3, verbose=0)
    assert data.seen == list(range(9))  # Keras: batches 0..8, not 0,1,2 three times
    data.seen.clear()
    _model(backend).fit(data, epochs=4, steps_per_epoch=4, verbose=0)
    assert data.seen == list(range(9)) + list(range(7))  # a new pass once one is used up
    data.seen.clear()
    _model(backend).fit(data, epochs=2, verbose=0)  # no steps_per_epoch: a pass per epoch
    assert data.seen == list(range(9)) * 2


def test_batch_size_with_a_dataset_warns_and_is_ignored(backend):
    x, y = _data(90)
    data = Recorded(x, y)
    with pytest.warns(UserWarning, match=r"`batch_size`=64 is ignored: `x` is a Recorded"):
        hist = _model(backend).fit(data, batch_size=64, epochs=1, verbose=0)
    ref = _model(backend).fit(Recorded(x, y), epochs=1, verbose=0)
    assert hist.history["loss"] == pytest.approx(ref.history["loss"], rel=1e-6)


# ------------------------------------------------------- keras/src/callbacks/*_test.py
def test_early_stopping_unknown_monitor_in_auto_mode_raises(backend):
    """early_stopping_test.test_early_stopping: monitor="unknown" raises ValueError."""
    x, y = _data()
    model = _model(backend)
    with pytest.raises(ValueError, match="monitor='unknown' with mode='auto'"):
        model.fit(x, y, batch_size=5, validation_data=(x, y), epochs=2, verbose=0,
                  callbacks=[kp.callbacks.EarlyStopping(patience=0, monitor="unknown")])
    for mode, monitor, want in [("max", "val_mse", "max"), ("min", "val_loss", "min"),
                                ("auto", "val_mse", "min"), ("auto", "loss", "min")]:
        stop = kp.callbacks.EarlyStopping(patience=0, monitor=monitor, mode=mode)
        model.fit(x, y, batch_size=5, validation_data=(x, y), epochs=2, verbose=0,
                  callbacks=[stop])
        assert stop.resolved_mode == want


def test_unknown_mode_warns_and_falls_back_to_auto():
    """model_checkpoint_test / early_stopping: mode="unknown" warns, uses auto."""
    for cls, kwargs in [(kp.callbacks.ModelCheckpoint, {"filepath": "m.safetensors"}),
                        (kp.callbacks.EarlyStopping, {}),
                        (kp.callbacks.ReduceLROnPlateau, {})]:
        with pytest.warns(UserWarning, match="mode 'unknown' is unknown"):
            cb = cls(mode="unknown", **kwargs)
        assert cb.mode == "auto"


def test_model_checkpoint_missing_monitor_warns_and_saves(backend, tmp_path):
    """model_checkpoint_test: save_best_only with a monitor not in the logs warns ("Can save
    best model only with ... available") and saves."""
    x, y = _data()
    path = str(tmp_path / "ckpt-{epoch}.weights.safetensors")
    cb = kp.callbacks.ModelCheckpoint(path, monitor="unknown", save_best_only=True,
                                      save_weights_only=True)
    with pytest.warns(UserWarning, match="Can save best model only with unknown available"):
        _model(backend).fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-1.weights.safetensors",
                                            "ckpt-2.weights.safetensors"]


def test_lambda_callback_sets_extra_keywords_as_attributes():
    """lambda_callback_test.test_lambda_callback_with_kwargs."""
    def custom_method():
        return "called"

    cb = kp.callbacks.LambdaCallback(custom_method=custom_method)
    assert cb.custom_method() == "called"


def test_make_or_restore_model(backend, tmp_path):
    """The training guide's make_or_restore_model: ModelCheckpoint of whole models, then
    kp.load_model of the latest file continues training exactly as the saved model."""
    x, y = _data()
    folder = tmp_path / "ckpt"
    folder.mkdir()

    def make_or_restore_model():
        checkpoints = [str(folder / name) for name in os.listdir(folder)]
        if checkpoints:
            latest = max(checkpoints, key=os.path.getctime)
            return kp.load_model(latest, models.build(backend, "linear", n_in=4, n_out=1))
        return _model(backend)

    model = make_or_restore_model()
    cb = kp.callbacks.ModelCheckpoint(str(folder / "ckpt-loss={loss:.2f}.safetensors"),
                                      save_freq=8)
    model.fit(x, y, batch_size=5, epochs=1, verbose=0, callbacks=[cb])
    assert len(os.listdir(folder)) == 1  # after batch 8
    restored = make_or_restore_model()
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for m in (model, restored):
        m.fit(x, y, batch_size=5, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_output_names_ignored_with_a_warning_for_dict_outputs(make_model):
    x = np.ones((4, 4), np.float32)
    with pytest.warns(UserWarning, match="`output_names` \\['p', 'q', 'r'\\] is ignored"):
        out = kp.Model(make_model("multi", n_in=4), output_names=["p", "q", "r"]).predict(
            x, verbose=0)
    assert sorted(out) == ["a", "m", "z"]


def test_no_unexpected_warning_on_plain_fit(backend):
    x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _model(backend).fit(x, y, epochs=1, verbose=0)


def test_torch_module_sees_one_call_per_batch():
    """Keras calls the model once per batch; kompile's own forward (the output structure)
    leaves no count behind: a Python counter and a buffer counter (BackupAndRestore's
    canary in Keras's tests) count the batches only."""
    torch = pytest.importorskip("torch")

    class Canary(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = torch.nn.Linear(4, 1)
            self.calls = 0
            self.register_buffer("counter", torch.zeros(()))

        def forward(self, x):
            self.calls += 1
            self.counter += 1
            return self.dense(x)

    module = Canary()
    model = kp.Model(module).compile("sgd", "mse")
    x, y = _data()
    model.fit(x, y, batch_size=10, epochs=2, verbose=0)  # 8 batches
    model.evaluate(x, y, batch_size=20, verbose=0)  # 2 more
    assert module.calls == 10 and float(module.counter) == 10.0
