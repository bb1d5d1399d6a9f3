"""Checkpoints never store NaN or infinite weights over a file (issue 20, item 3).

A run diverges at the first batch of its third epoch (a batch of NaN features), and
TerminateOnNaN stops it after that batch. ModelCheckpoint (per epoch, fixed name) and
BackupAndRestore must keep what they held after epoch 2: the reference is the weights
read with ``get_weights`` at the end of epoch 2 by a LambdaCallback listed before them.
"""

import math

import numpy as np
import pytest
from safetensors.numpy import load_file

import kompile as kp
from kompile import saving

from . import models

STEPS = 3  # batches per epoch


def _batches(nan_at):
    """A generator of batches of 8; the batch with index ``nan_at`` holds NaN features."""
    r = np.random.default_rng(0)
    for i in range(4 * STEPS):
        x = r.normal(size=(8, 4)).astype(np.float32)
        y = x @ np.ones((4, 2), np.float32)
        if i == nan_at:
            x[:] = np.nan
        yield x, y


def _model(backend):
    return kp.Model(models.build(backend, "mlp", n_in=4, hidden=8, n_out=2)).compile(
        kp.optimizers.SGD(0.01), "mse")


def _fit(model, callbacks, nan_at=2 * STEPS):
    seen = {}
    record = kp.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.setdefault(epoch, model.get_weights()))
    model.fit(_batches(nan_at), steps_per_epoch=STEPS, epochs=4, verbose=0,
              callbacks=[record, kp.callbacks.TerminateOnNaN(), *callbacks])
    return seen


def _same(arrays, weights):
    for a, w in zip(arrays, weights, strict=True):
        np.testing.assert_array_equal(a, w)


@pytest.mark.parametrize("weights_only", [True, False])
def test_model_checkpoint_keeps_the_last_finite_weights(backend, tmp_path, weights_only):
    model = _model(backend)
    path = str(tmp_path / "ckpt.safetensors")
    # default monitor val_loss is not in the logs: the weights themselves are checked
    ckpt = kp.callbacks.ModelCheckpoint(path, save_weights_only=weights_only)
    with pytest.warns(UserWarning, match=r"ModelCheckpoint: not saving at epoch 3: the "
                      r"weights are not finite \(variable .* holds NaN"):
        seen = _fit(model, [ckpt])
    assert sorted(seen) == [0, 1, 2]  # TerminateOnNaN stopped the run in epoch 3
    assert not all(np.isfinite(w).all() for w in model.get_weights())
    stored = load_file(path)
    prefix = "" if weights_only else "weights/"
    names = list(model._backend.weights_dict())
    _same([stored[prefix + n] for n in names], seen[1])
    fresh = _model(backend)
    fresh.load_weights(path)
    _same(fresh.get_weights(), seen[1])


def test_model_checkpoint_skips_a_nonfinite_monitored_value(backend, tmp_path):
    model = _model(backend)
    path = str(tmp_path / "ckpt-{epoch}.safetensors")
    ckpt = kp.callbacks.ModelCheckpoint(path, monitor="loss", save_weights_only=True)
    with pytest.warns(UserWarning, match=r"not saving at epoch 3: `loss` is nan"):
        _fit(model, [ckpt])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-1.safetensors",
                                                          "ckpt-2.safetensors"]


def test_save_best_only_keeps_the_best_after_nan(backend, tmp_path):
    model = _model(backend)
    path = str(tmp_path / "best.safetensors")
    ckpt = kp.callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=True,
                                        save_weights_only=True)
    losses = []
    loss_log = kp.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: losses.append(
        logs["loss"]))
    seen = _fit(model, [loss_log, ckpt])  # a NaN is no improvement: nothing to skip
    assert math.isnan(losses[2]) and ckpt.best == min(losses[:2])
    fresh = _model(backend)
    fresh.load_weights(path)
    _same(fresh.get_weights(), seen[int(np.argmin(losses[:2]))])


def test_backup_keeps_the_last_finite_state(backend, tmp_path):
    model = _model(backend)
    backup = kp.callbacks.BackupAndRestore(tmp_path / "backup")
    with pytest.warns(UserWarning, match=r"BackupAndRestore: not backing up at epoch 3: "
                      r"variable .* holds NaN or infinite values.* not deleted"):
        seen = _fit(model, [backup])
    # the run ended (TerminateOnNaN), yet the last finite backup is kept
    stored = load_file(str(tmp_path / "backup" / "backup.safetensors"))
    state = {k: v for k, v in stored.items() if not k.startswith(("extra/", "state/metrics/"))}
    assert all(np.isfinite(v).all() for v in state.values() if v.dtype.kind == "f")
    # resuming from it gives the weights after epoch 2
    resumed = _model(backend)
    resumed.fit(_batches(None), steps_per_epoch=STEPS, epochs=2, verbose=0,
                callbacks=[kp.callbacks.BackupAndRestore(tmp_path / "backup",
                                                         save_freq=False)])
    _same(resumed.get_weights(), seen[1])


def test_batch_level_backup_skips_nonfinite(backend, tmp_path):
    model = _model(backend)
    backup = kp.callbacks.BackupAndRestore(tmp_path / "b", save_freq=1)
    with pytest.warns(UserWarning, match=r"not backing up at epoch 1, batch 2"):
        _fit(model, [backup], nan_at=1)


def test_first_nonfinite_reads_every_float_dtype():
    import ml_dtypes

    ok = {"a": np.ones(3, np.float32), "i": np.array([2**31 - 1], np.int32)}
    assert saving.first_nonfinite(ok) is None
    bad = {**ok, "b": np.array([1, np.inf], ml_dtypes.bfloat16)}
    assert saving.first_nonfinite(bad) == "b"
    assert saving.first_nonfinite({"metrics/x": np.array(np.nan)}, skip=("metrics/",)) is None
