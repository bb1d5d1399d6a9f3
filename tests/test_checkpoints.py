"""Weights and training-state files (kompile.saving, Model.save_weights/load_weights/summary).

Files are read back with safetensors' own reader; a training state restored into another
model must continue training exactly as the original does.
"""

import os

import numpy as np
import pytest

import kompile as kp
from kompile import saving

from . import models


def _data(n=24, n_in=4, n_out=2, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, n_in)).astype(np.float32)
    return x, (x @ r.normal(size=(n_in, n_out))).astype(np.float32)


def _model(backend, kind="dropout_bn", **kw):
    return kp.Model(models.build(backend, kind, **kw)).compile(kp.optimizers.Adam(0.01), "mse")


def _assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for p, q in zip(wa, wb):
        np.testing.assert_array_equal(p, q)


def test_save_and_load_weights_round_trip(backend, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    x, y = _data()
    trained = _model(backend)
    trained.fit(x, y, batch_size=8, epochs=2, verbose=0)
    path = tmp_path / "w.safetensors"
    trained.save_weights(path)
    arrays = load_file(str(path))  # safetensors' own reader
    assert {"dense/kernel", "dense/bias", "bn/scale", "bn/bias"} <= set(arrays) or \
        {"dense.kernel", "dense.bias", "bn.weight", "bn.bias"} <= set(arrays)
    with safe_open(str(path), "np") as f:
        assert '"format": "kompile.weights"' in f.metadata()["kompile"]
    fresh = kp.Model(models.build(backend, "dropout_bn"))
    fresh.load_weights(path)  # no compile needed
    _assert_same_weights(fresh, trained)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), trained.predict(x, verbose=0))
    with pytest.raises(FileExistsError, match="overwrite=False"):
        trained.save_weights(path, overwrite=False)


def test_load_weights_errors(backend, tmp_path):
    path = tmp_path / "w.safetensors"
    kp.Model(models.build(backend, "linear", n_in=4)).save_weights(path)
    other = kp.Model(models.build(backend, "linear", n_in=3))
    with pytest.raises(ValueError, match=r"do not match this model's architecture: variable "
                                         r"'kernel' has shape \(\d+, \d+\) in this module but "
                                         r"\(\d+, \d+\) in the file"):
        other.load_weights(path)
    with pytest.raises(ValueError, match="do not match this model's architecture: .*is not in "
                                         "the file.*which this module does not have"):
        kp.Model(models.build(backend, "dropout_bn")).load_weights(path)
    with pytest.raises(FileNotFoundError, match="No weights or checkpoint file at"):
        other.load_weights(tmp_path / "nope.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a valid kompile file: it is not a safetensors"):
        other.load_weights(tmp_path / "junk.safetensors")


def test_a_crash_mid_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    saving.save_arrays(path, {"a": np.ones(3, np.float32)}, {"format": "kompile.weights"})

    def crash(fd):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk on fire"):
        saving.save_arrays(path, {"a": np.zeros(3, np.float32)}, {"format": "kompile.weights"})
    monkeypatch.undo()
    arrays, meta = saving.load_arrays(path)
    np.testing.assert_array_equal(arrays["a"], np.ones(3, np.float32))
    assert os.listdir(tmp_path) == ["w.safetensors"]  # no temporary file left behind


def test_arrays_numpy_lacks_round_trip(tmp_path):
    import ml_dtypes

    values = {"bf": np.array([1.5, -2.25], dtype=ml_dtypes.bfloat16),
              "key": np.array([[1, 2]], np.uint32), "flag": np.array(True),
              "empty": np.zeros((0, 3), np.float32)}
    saving.save_arrays(tmp_path / "a.safetensors", values, {"x": [1, 2]})
    arrays, meta = saving.load_arrays(tmp_path / "a.safetensors")
    assert meta["x"] == [1, 2]
    for name, value in values.items():
        assert arrays[name].dtype == value.dtype and arrays[name].shape == value.shape
        np.testing.assert_array_equal(arrays[name], value)


def test_training_state_restores_optimizer_and_rng(backend, tmp_path):
    x, y = _data()
    path = tmp_path / "state.safetensors"
    original = _model(backend)
    original.fit(x, y, batch_size=8, epochs=2, verbose=0)
    saving.save_training_state(original, path, {"note": "hi"}, {"extra": np.arange(3)})
    restored, control = _model(backend), _model(backend)
    for m in (restored, control):  # build them, then drift away from the original
        m.fit(x[:8] * 3, y[:8], batch_size=8, epochs=1, verbose=0)
    info, extra = saving.load_training_state(restored, path)
    assert info == {"note": "hi"} and extra["extra"].tolist() == [0, 1, 2]
    _assert_same_weights(restored, original)
    for m in (original, restored, control):
        kp.utils.set_random_seed(7)  # same shuffle (and torch dropout) for all three
        m.fit(x, y, batch_size=8, epochs=2, verbose=0)
    _assert_same_weights(restored, original)  # Adam moments, BN, dropout RNG all restored
    assert not np.array_equal(control.get_weights()[0], original.get_weights()[0])
    with pytest.raises(ValueError, match="holds weights only"):
        original.save_weights(tmp_path / "w.safetensors")
        saving.load_training_state(original, tmp_path / "w.safetensors")


def test_full_checkpoint_loads_with_load_weights(backend, tmp_path):
    x, y = _data()
    model = _model(backend)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[
        kp.callbacks.ModelCheckpoint(str(tmp_path / "full-{epoch}.safetensors"))])
    fresh = kp.Model(models.build(backend, "dropout_bn"))
    fresh.load_weights(tmp_path / "full-1.safetensors")
    _assert_same_weights(fresh, model)
    other = "torch" if backend == "jax" else "jax"
    if other == "torch" and not models.torch_ready():
        return
    foreign = _model(other)
    foreign.fit(x, y, batch_size=8, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=f"written by the {backend} backend"):
        saving.load_training_state(foreign, tmp_path / "full-1.safetensors")


def test_summary_counts_parameters(backend):
    lines = []
    model = kp.Model(models.build(backend, "dropout_bn"))
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert 'Model: "DropoutBN"' in text
    assert "Trainable params: 14" in text  # dense 4x2+2, batch norm scale and bias 2+2
    assert "kernel" in text and "(4, 2)" in text
    if backend == "jax":
        assert "Non-trainable params: 4" in text  # batch-norm mean and variance
        lines.clear()
        model.summary(np.zeros((3, 4), np.float32), print_fn=lines.append)
        assert "DropoutBN Summary" in lines[0] and "BatchNorm" in lines[0]
        assert model.count_params() == 14 + 4
    else:
        assert "BatchNorm1d" in text  # the module's repr
        # Keras's count: parameters and buffers (torch adds num_batches_tracked, one scalar)
        assert model.count_params() == 14 + 4 + 1
