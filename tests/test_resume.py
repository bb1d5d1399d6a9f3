"""BackupAndRestore resumes exactly: after a crash (an exception, or SIGKILL of the whole
process in the middle of epoch 3 of 5) a rerun of the same script ends with the same
weights and history as an uninterrupted run with the same seed."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kompile as kp

from . import resume_script

ROOT = Path(__file__).resolve().parent.parent


class _Interrupt(Exception):
    pass


class _CrashAt(kp.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise _Interrupt


def _counter(batches):
    return kp.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))


def _assert_same_run(weights, history, ref_weights, ref_history):
    assert len(weights) == len(ref_weights)
    for got, want in zip(weights, ref_weights):
        np.testing.assert_array_equal(got, want)
    assert history["epoch"] == ref_history["epoch"] == list(range(resume_script.EPOCHS))
    assert history["history"] == ref_history["history"]


_REFERENCE: dict = {}


def _reference(backend, tmp_path):
    """The uninterrupted run (the same whatever ``save_freq``), once per backend."""
    if backend not in _REFERENCE:
        model, hist = resume_script.train(backend, str(tmp_path / "ref"), 1)
        assert not (tmp_path / "ref").exists()  # delete_checkpoint: gone after a finished fit
        _REFERENCE[backend] = model.get_weights(), {"epoch": hist.epoch,
                                                    "history": hist.history}
    return _REFERENCE[backend]


def test_resume_after_an_exception_at_epoch_boundary(backend, tmp_path):
    ref_weights, ref_history = _reference(backend, tmp_path)
    backup = tmp_path / "backup"
    with pytest.raises(_Interrupt):  # during epoch index 2, after its batch 3
        resume_script.train(backend, str(backup), "epoch", callbacks=[_CrashAt(2, 3)])
    assert (backup / "backup.safetensors").is_file()
    batches = []
    model, hist = resume_script.train(backend, str(backup), "epoch",
                                      callbacks=[_counter(batches)])
    # 30 training samples in batches of 8: 5 batches an epoch; epoch 2 runs again in full
    assert batches == [0, 1, 2, 3, 4] * 3
    _assert_same_run(model.get_weights(), {"epoch": hist.epoch, "history": hist.history},
                     ref_weights, ref_history)
    assert not backup.exists()


def test_sigkill_mid_epoch_then_resume(backend, tmp_path):
    ref_weights, ref_history = _reference(backend, tmp_path)
    backup, out = tmp_path / "backup", tmp_path / "out.npz"
    cmd = [sys.executable, "-m", "tests.resume_script", backend, str(backup), "2", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "KOMPILE_KILL_AT"}
    killed = subprocess.run(cmd, cwd=ROOT, env={**env, "KOMPILE_KILL_AT": "2,2"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (backup / "backup.safetensors").is_file() and not out.exists()
    resumed = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    data = np.load(out)
    # save_freq=2 counts batches across epochs (5 an epoch): the last backup before the kill
    # was taken after batch 1 of epoch 2, so batches 2-4 run again, then 2 more epochs
    assert data["batches"].tolist() == [2, 3, 4] + [0, 1, 2, 3, 4] * 2
    weights = [data[f"arr_{i}"] for i in range(len(ref_weights))]
    _assert_same_run(weights, json.loads(str(data["history"])), ref_weights, ref_history)
    assert not backup.exists()


def test_backup_options(make_model, tmp_path):
    r = np.random.default_rng(0)
    x, y = r.normal(size=(16, 4)).astype(np.float32), r.normal(size=(16, 1)).astype(np.float32)
    model = kp.Model(make_model("linear")).compile("sgd", "mse")
    keep = kp.callbacks.BackupAndRestore(tmp_path / "keep", delete_checkpoint=False,
                                         double_checkpoint=True)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[keep])
    assert sorted(os.listdir(tmp_path / "keep")) == ["backup.safetensors",
                                                     "backup.safetensors.prev"]
    # a damaged latest backup: the previous one (end of epoch 1 of 2) is used instead
    (tmp_path / "keep" / "backup.safetensors").write_bytes(b"torn")
    batches = []
    model.fit(x, y, epochs=2, verbose=0, callbacks=[keep, _counter(batches)])
    assert len(batches) == 1  # epoch index 1 only: one batch of 32 samples
    with pytest.raises(ValueError, match="`save_freq` must be 'epoch', a positive number"):
        kp.callbacks.BackupAndRestore(tmp_path, save_freq="batch")
    with pytest.raises(ValueError, match="`backup_dir` must be a directory path"):
        kp.callbacks.BackupAndRestore("")
