"""Interrupt a fit() anywhere, resume it with a new fit() and BackupAndRestore: the final
weights and History equal those of the uninterrupted run (the reference, computed in each
test). Covers the data position (``steps_per_epoch`` below the data size continues the
shuffled pass across epochs), mid-epoch backups (``save_freq`` in batches),
``steps_per_execution > 1`` and validation data whose position also carries across epochs,
on both backends. The model has dropout and batch norm, the optimizer Adam, so every piece
of state must come back for the weights to match bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp

from . import models


class _Interrupt(Exception):
    pass


class _CrashAt(kp.Callback):
    """Raises at the end of training batch ``at = (epoch, batch)``, or in ``on_epoch_end`` of
    epoch ``at_epoch_end`` (before BackupAndRestore saves, when listed first); records the
    batches it sees."""

    def __init__(self, at=None, at_epoch_end=None):
        super().__init__()
        self.at, self.at_epoch_end = at, at_epoch_end
        self.seen: list[tuple[int, int]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append((self.epoch, batch))
        if (self.epoch, batch) == self.at:
            raise _Interrupt

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch_end:
            raise _Interrupt


def _data(n, seed=1):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 4)).astype(np.float32)
    return x, (x @ r.normal(size=(4, 2))).astype(np.float32)


def _fit(backend, folder, crash, save_freq="epoch", spe=1, epochs=4, n=40, **fit_kw):
    """A fresh process's worth of training: seed, build, compile, fit."""
    if backend == "jax":
        import flax.nnx  # noqa: F401  (imported before seeding: importing JAX draws from NumPy)
    else:
        import torch  # noqa: F401
    kp.utils.set_random_seed(0)
    x, y = _data(n)
    model = kp.Model(models.build(backend, "dropout_bn")).compile(
        kp.optimizers.Adam(0.02), "mse", metrics=["mae"], steps_per_execution=spe)
    cbs = [crash] if folder is None else [
        crash, kp.callbacks.BackupAndRestore(folder, save_freq=save_freq)]
    hist = model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=cbs, **fit_kw)
    return model.get_weights(), {"epoch": hist.epoch, "history": hist.history}


def _check_resume(backend, tmp_path, crashes, **kw):
    """The uninterrupted run, then for each crash point: crash, resume (possibly crashing
    again), and compare with the reference."""
    ref_cb = _CrashAt()
    ref = _fit(backend, None, ref_cb, **kw)
    for i, crash in enumerate(crashes):
        folder = tmp_path / f"b{i}"
        with pytest.raises(_Interrupt):
            _fit(backend, folder, crash, **kw)
        assert (folder / "backup.safetensors").is_file()
        again = _CrashAt()
        weights, history = _fit(backend, folder, again, **kw)
        assert history["epoch"] == ref[1]["epoch"], (crash.at, crash.at_epoch_end)
        assert history["history"] == ref[1]["history"], (crash.at, crash.at_epoch_end)
        for got, want in zip(weights, ref[0], strict=True):
            np.testing.assert_array_equal(got, want, err_msg=str((crash.at,
                                                                  crash.at_epoch_end)))
        assert not folder.exists()
        yield crash, again.seen, ref_cb.seen


def test_steps_per_epoch_continues_the_pass_epoch_backups(backend, tmp_path):
    # 40 samples in batches of 8: 5 batches a pass, 3 an epoch, so passes straddle epochs
    crashes = [_CrashAt(at=(1, 1)), _CrashAt(at=(2, 0)), _CrashAt(at_epoch_end=2)]
    for crash, seen, ref_seen in _check_resume(backend, tmp_path, crashes, steps_per_epoch=3):
        restart = crash.at[0] if crash.at else crash.at_epoch_end
        assert seen == [s for s in ref_seen if s[0] >= restart]


def test_steps_per_epoch_mid_epoch_backups(backend, tmp_path):
    crashes = [_CrashAt(at=(e, b)) for e, b in [(0, 2), (1, 1), (1, 2), (2, 1), (3, 0)]]
    crashes.append(_CrashAt(at_epoch_end=1))  # after the backup of the epoch's last batch
    for crash, seen, ref_seen in _check_resume(backend, tmp_path, crashes, save_freq=1,
                                               steps_per_epoch=3):
        if crash.at:
            assert seen == ref_seen[ref_seen.index(crash.at):]  # that batch saved no backup


def test_steps_per_execution_mid_epoch(backend, tmp_path):
    # 5 batches an epoch in calls of 2: ends at batches 1, 3, 4; a backup every call
    crashes = [_CrashAt(at=(1, 3)), _CrashAt(at=(2, 4)), _CrashAt(at=(1, 1))]
    for crash, seen, ref_seen in _check_resume(backend, tmp_path, crashes, save_freq=1, spe=2,
                                               epochs=3):
        assert seen == ref_seen[ref_seen.index(crash.at):]  # that batch saved no backup


def test_validation_data_position_and_split(backend, tmp_path):
    # validation_steps=2 of 3 validation batches: the validation position carries across
    # epochs too; steps_per_epoch=3 of 4 training batches (validation_split keeps 32)
    xv, yv = _data(24, seed=2)
    crashes = [_CrashAt(at=(1, 1)), _CrashAt(at=(2, 2))]
    list(_check_resume(backend, tmp_path, crashes, save_freq=2, steps_per_epoch=3,
                       validation_data=(xv, yv), validation_steps=2))
    list(_check_resume(backend, tmp_path / "split", crashes, save_freq="epoch",
                       steps_per_epoch=3, validation_split=0.2, validation_steps=1,
                       validation_batch_size=4))
