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
from kompile import saving

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
    """The uninterrupted run, then one run per crash point in turn, each resuming from the
    backup the previous one left (a new process each time), then a last run to the end;
    it must equal the uninterrupted run. Returns the batches the last run and the reference
    saw."""
    ref_cb = _CrashAt()
    ref_weights, ref_history = _fit(backend, None, ref_cb, **kw)
    folder = tmp_path / "backup"
    for crash in crashes:
        with pytest.raises(_Interrupt):
            _fit(backend, folder, crash, **kw)
        assert (folder / "backup.safetensors").is_file()
    last = _CrashAt()
    weights, history = _fit(backend, folder, last, **kw)
    assert history == ref_history
    for got, want in zip(weights, ref_weights, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not folder.exists()
    return last.seen, ref_cb.seen


def test_steps_per_epoch_continues_the_pass_epoch_backups(backend, tmp_path):
    # 40 samples in batches of 8: 5 batches a pass, 3 an epoch, so passes straddle epochs
    # epoch 1 ends before its backup: the resume starts epoch 1 again, 3 batches into pass 0
    seen, ref_seen = _check_resume(backend, tmp_path, [_CrashAt(at_epoch_end=1)],
                                   steps_per_epoch=3, epochs=3)
    assert seen == [s for s in ref_seen if s[0] >= 1]  # the epoch runs again


def test_steps_per_epoch_mid_epoch_backups(backend, tmp_path):
    # passes: epoch 0 = pass 0 batches 0-2; epoch 1 = pass 0 batches 3-4 + pass 1 batch 0;
    # (1, 2): resumes after pass 0 is used up; (3, 0): resumes at epoch 2, step 3 of 3 (its
    # last batch was backed up, its end was not)
    seen, ref_seen = _check_resume(
        backend, tmp_path, [_CrashAt(at=(1, 2)), _CrashAt(at=(2, 1)), _CrashAt(at=(3, 0))],
        save_freq=1, steps_per_epoch=3)
    assert seen == ref_seen[ref_seen.index((3, 0)):]  # that batch saved no backup


def test_steps_per_execution_mid_epoch(backend, tmp_path):
    # a whole pass an epoch (5 batches) in calls of 2: ends at batches 1, 3, 4; a backup per
    # call; (1, 1): resumes at epoch 0, step 5 of 5
    seen, ref_seen = _check_resume(backend, tmp_path, [_CrashAt(at=(1, 1)),
                                                       _CrashAt(at=(1, 3))],
                                   save_freq=1, spe=2, epochs=3)
    assert seen == ref_seen[ref_seen.index((1, 3)):]


class _CrashInValidation(_CrashAt):
    def on_test_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.in_validation:
            raise _Interrupt


def test_validation_position_carries_across_epochs(backend, tmp_path):
    # validation_steps=2 of 3 validation batches: validation continues its pass across
    # epochs too (validation_split makes the same kind of source: tests/test_resume.py)
    xv, yv = _data(24, seed=2)
    crash = _CrashInValidation()
    crash.in_validation = (2, 1)  # in epoch 2's validation, after the backup of its last batch
    _check_resume(backend, tmp_path, [crash], save_freq=1, steps_per_epoch=3,
                  validation_data=(xv, yv), validation_steps=2, epochs=3)


def test_epoch_backups_let_unwatched_batches_fuse(tmp_path):
    """With epoch backups nothing watches training batches, so the JAX backend fuses them
    into calls of a measured size (pacing.py); the resumed run still equals the
    uninterrupted one (the call sizes may differ between runs; the numbers do not)."""

    class CrashAtEpochEnd(kp.Callback):  # watches epochs only
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise _Interrupt

    def run(folder, crash):
        import flax.nnx  # noqa: F401  (imported before seeding: importing JAX draws from NumPy)

        kp.utils.set_random_seed(0)
        x, y = _data(40)
        model = kp.Model(models.build("jax", "dropout_bn")).compile(kp.optimizers.Adam(0.02),
                                                                    "mse")
        cbs = [crash, kp.callbacks.BackupAndRestore(folder)] if folder else [crash]
        hist = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=cbs)
        assert model._backend.paced["train"]
        return model.get_weights(), hist.history

    ref_weights, ref_history = run(None, kp.Callback())
    with pytest.raises(_Interrupt):
        run(tmp_path / "b", CrashAtEpochEnd())
    weights, history = run(tmp_path / "b", kp.Callback())
    assert history == ref_history
    for got, want in zip(weights, ref_weights, strict=True):
        np.testing.assert_array_equal(got, want)


def _rewrite_as_version_1(path, epoch_begin_rng):
    """What the first backup format held: no version, no data positions, and NumPy's RNG
    as the epoch began (``epoch_begin_rng``) for a mid-epoch backup."""
    arrays, meta = saving.load_arrays(path)
    info = meta["info"]
    info.pop("version"), info.pop("data")
    if epoch_begin_rng is not None:
        numbers, keys = epoch_begin_rng
        info["numpy_rng"], arrays["extra/numpy_rng"] = numbers, keys
    arrays = {k: v for k, v in arrays.items()
              if k not in ("extra/train_rng", "extra/validation_rng")}
    saving.save_arrays(path, arrays, meta)


def test_backups_of_the_first_format(backend, tmp_path):
    # a whole pass an epoch: a first-format backup resumes exactly, mid-epoch (its NumPy RNG
    # state is the one the epoch's shuffle was drawn from) or at an epoch's end
    ref = _fit(backend, None, _CrashAt(), save_freq=1, epochs=3)
    folder = tmp_path / "b"
    path = folder / "backup.safetensors"
    for at in [(1, 2), (2, 0)]:  # backups at epoch 1 step 2, then step 5 (of 5)
        with pytest.raises(_Interrupt):
            _fit(backend, folder, _CrashAt(at=at), save_freq=1, epochs=3)
        arrays, meta = saving.load_arrays(path)
        info = meta["info"]
        _rewrite_as_version_1(path, (info["data"]["train"]["rng"], arrays["extra/train_rng"])
                              if info["step"] else None)
    weights, history = _fit(backend, folder, _CrashAt(), save_freq=1, epochs=3)
    assert history == ref[1]
    for got, want in zip(weights, ref[0], strict=True):
        np.testing.assert_array_equal(got, want)
    # steps_per_epoch below the data size: the first format cannot resume it exactly
    folder = tmp_path / "spe"
    with pytest.raises(_Interrupt):
        _fit(backend, folder, _CrashAt(at=(1, 0)), steps_per_epoch=3)
    _rewrite_as_version_1(folder / "backup.safetensors", None)
    with pytest.raises(ValueError, match="older kompile that did not record where the train "
                                         "data stood; with `steps_per_epoch` below"):
        _fit(backend, folder, _CrashAt(), steps_per_epoch=3)
    # and a newer format than this kompile reads is refused
    arrays, meta = saving.load_arrays(folder / "backup.safetensors")
    meta["info"]["version"] = 99
    saving.save_arrays(folder / "backup.safetensors", arrays, meta)
    with pytest.raises(ValueError, match="format version 99, newer than this kompile reads"):
        _fit(backend, folder, _CrashAt(), steps_per_epoch=3)


def _batches(n=5, seed=3):
    x, y = _data(8 * n, seed)
    return [(x[i:i + 8], y[i:i + 8]) for i in range(0, 8 * n, 8)]


def _fit_iterable(backend, folder, crash, data, epochs=3, **fit_kw):
    if backend == "jax":
        import flax.nnx  # noqa: F401
    else:
        import torch  # noqa: F401
    kp.utils.set_random_seed(0)
    model = kp.Model(models.build(backend, "dropout_bn")).compile(kp.optimizers.Adam(0.02),
                                                                   "mse")
    cbs = [crash] + ([] if folder is None else [kp.callbacks.BackupAndRestore(folder, 1)])
    hist = model.fit(data, epochs=epochs, verbose=0, callbacks=cbs, **fit_kw)
    return model.get_weights(), hist


def test_iterables_resume_from_the_iterators_position(backend, tmp_path):
    # a list of batches is read again from its start each epoch: a resumed epoch reads and
    # drops the batches that ran before the backup, and the run equals the uninterrupted one
    ref_weights, ref_hist = _fit_iterable(backend, None, _CrashAt(), _batches())
    with pytest.raises(_Interrupt):
        _fit_iterable(backend, tmp_path / "list", _CrashAt(at=(1, 3)), _batches())
    weights, hist = _fit_iterable(backend, tmp_path / "list", _CrashAt(), _batches())
    assert hist.history == ref_hist.history
    for got, want in zip(weights, ref_weights, strict=True):
        np.testing.assert_array_equal(got, want)
    if backend == "torch":  # DataLoaders that shuffle (their order comes from torch's RNG)
        import torch

        def loader(seed):
            x, y = _data(40, seed)
            data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
            return torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)

        def run(folder, crash):
            return _fit_iterable(backend, folder, crash, loader(3),
                                 validation_data=loader(4))

        ref_weights, ref_hist = run(None, _CrashAt())
        for at in [(0, 2), (2, 1)]:  # the crashed run resumes the pass of epoch 0, then 1
            with pytest.raises(_Interrupt):
                run(tmp_path / "dl", _CrashAt(at=at))
        weights, hist = run(tmp_path / "dl", _CrashAt())
        assert hist.history == ref_hist.history
        for got, want in zip(weights, ref_weights, strict=True):
            np.testing.assert_array_equal(got, want)
    # a generator's position is its own: the resumed epoch (epoch 1 from step 3) reads on
    # from where the (new) generator stands, dropping nothing, as Keras does
    pulled = []

    def generate():
        for i, batch in enumerate(_batches(10)):
            pulled.append(i)
            yield batch

    with pytest.raises(_Interrupt):
        _fit_iterable(backend, tmp_path / "gen", _CrashAt(at=(1, 3)), generate(),
                      steps_per_epoch=4)
    pulled.clear()
    seen = _CrashAt()
    _, hist = _fit_iterable(backend, tmp_path / "gen", seen, generate(), steps_per_epoch=4)
    assert seen.seen == [(1, 3), (2, 0), (2, 1), (2, 2), (2, 3)]
    assert pulled == [0, 1, 2, 3, 4] and hist.epoch == [0, 1, 2]


def test_torch_on_a_gpu_resumes_with_the_devices_rng(tmp_path):
    """Dropout on a CUDA device draws from the device's generator: it is in the backup too."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")

    def run(folder, crash):
        kp.utils.set_random_seed(0)
        x, y = _data(40)
        model = kp.Model(models.build("torch", "dropout_bn").to("cuda")).compile(
            kp.optimizers.Adam(0.02), "mse")
        cbs = [crash] + ([kp.callbacks.BackupAndRestore(folder, save_freq=1)] if folder else [])
        hist = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=cbs)
        return model.get_weights(), hist.history

    ref_weights, ref_history = run(None, _CrashAt())
    with pytest.raises(_Interrupt):
        run(tmp_path / "b", _CrashAt(at=(1, 2)))
    weights, history = run(tmp_path / "b", _CrashAt())
    assert history == ref_history
    for got, want in zip(weights, ref_weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_cuda_rng_states_for_other_devices_warn(tmp_path):
    """A backup holding the RNG states of CUDA devices this process does not have: restored
    without them, with a warning that says what differs."""
    torch = pytest.importorskip("torch")
    folder = tmp_path / "b"
    with pytest.raises(_Interrupt):
        _fit("torch", folder, _CrashAt(at=(1, 1)), save_freq=1, epochs=2)
    arrays, meta = saving.load_arrays(folder / "backup.safetensors")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    arrays["extra/torch_cuda_rng"] = np.zeros((count + 1, 16), np.uint8)
    saving.save_arrays(folder / "backup.safetensors", arrays, meta)
    with pytest.warns(UserWarning, match=f"RNG states of {count + 1} CUDA devices and this "
                                         f"process sees {count}; they are not restored"):
        _fit("torch", folder, _CrashAt(), save_freq=1, epochs=2)
