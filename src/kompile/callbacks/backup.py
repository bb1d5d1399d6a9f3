"""BackupAndRestore: survive an interrupted fit() and resume it exactly.

At the end of every epoch (or every ``save_freq`` batches) the whole training state goes
into one safetensors file in ``backup_dir``, written atomically (kompile.saving), so a
kill during a save leaves the previous backup intact. A later ``fit`` with the same
callback finds the file in ``on_train_begin`` and restores:

- weights, batch statistics, the module's RNG state (Flax ``nnx.Rngs``), optimizer state,
  loss scale and, mid-epoch, the running training metrics (the backend's ``state_dict``);
- NumPy's global RNG as at the save (it draws the shuffle order of later passes), and torch's
  global RNGs (dropout: the CPU generator and, once CUDA is in use, every device's) as at
  the save;
- where the data stands (``data/sources.py``): for each array source, training and
  validation, the NumPy RNG state its current pass was shuffled from and the batches of it
  used, so that a pass continued across epochs (``steps_per_epoch`` or ``validation_steps``
  below the data size) is shuffled again identically and read on after the last batch saved;
  for a re-iterable, torch's RNG state as its pass began;
- the epoch and batch to continue from, and the epochs already done in ``History``, so the
  resumed ``fit`` returns the same history as an uninterrupted one **[decision]** (Keras
  returns only the epochs run after the restart, and with an integer ``save_freq`` restarts
  the interrupted epoch from its first batch; here it continues after the last saved batch).

So for array data, interrupting at any point and resuming equals the uninterrupted run, bit
for bit (tests/test_resume_positions.py). File format: ``version`` 2 in the information; a
backup without it (format 1: no data positions, NumPy's RNG as the epoch began for a
mid-epoch backup) is resumed where that is exact (one pass per epoch) and refused by the loop
where it is not.

Exact resumption needs the same run: the backup records the batch size, the number of
samples (array data) and, for a mid-epoch backup, ``steps_per_execution``, and a ``fit``
that differs in any of them is refused with a ValueError naming the difference (replaying
"step 4" with another batch size would skip or repeat data silently). A file in
``backup_dir`` that is not a kompile backup (corrupt, or another kind of checkpoint) gets
"not a valid kompile file". A file where ``backup_dir`` should be is refused when training
starts. A re-iterable (a list of batches, a ``DataLoader``) is resumed exactly too: its
position is torch's RNG state as its pass began, and the resumed epoch reads that pass again
up to its step. A generator's position is its own: it is read on from where it stands (as
Keras).
A backup whose weights or optimizer state hold NaN or infinity (a diverged run,
TerminateOnNaN) is not written: a warning names the epoch, the last finite backup stays and
is kept at the end of training even with ``delete_checkpoint=True``.
Other callbacks' own state (EarlyStopping's patience count, ...) is not part of the backup,
as in Keras. When training ends normally the backup is deleted (``delete_checkpoint=True``).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from .. import saving
from ..file_checks import fspath, history_problem
from ..warn import KompileWarning
from .base import Callback
from .monitor import batches_run

FILE = "backup.safetensors"
VERSION = 2  # 2: the data positions ("data"); 1 (no "version"): NumPy's RNG at epoch begin


def _rng_to_file(state: Any) -> tuple[list[Any], np.ndarray]:
    """NumPy's ``get_state()`` as JSON numbers plus the 624 keys (an array for the file)."""
    _, keys, pos, has_gauss, cached = state
    return [int(pos), int(has_gauss), float(cached)], np.asarray(keys, np.uint32)


def _rng_from_file(numbers: list[Any], keys: np.ndarray) -> tuple[Any, ...]:
    pos, has_gauss, cached = numbers
    return ("MT19937", np.asarray(keys, np.uint32), int(pos), int(has_gauss), float(cached))


def backup_problem(info: dict[str, Any], extra: dict[str, Any]) -> str | None:
    """The first damaged field of a backup's information, as ``"<field>: <reason>"``."""
    for key, kind, what in (("epoch", int, "an integer"), ("step", int, "an integer"),
                            ("numpy_rng", list, "a list"), ("history", dict, "a JSON object")):
        value = info.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return (f"info.{key}: missing or not {what}; it holds no "
                    "BackupAndRestore backup (is it another kind of checkpoint?).")
    for key in ("epoch", "step"):
        if info[key] < 0:
            return f"info.{key}: {info[key]} is negative."
    numbers, keys = info["numpy_rng"], extra.get("numpy_rng")
    if len(numbers) != 3 or not all(isinstance(n, int | float) for n in numbers) \
            or keys is None or np.shape(keys) != (624,):
        return "info.numpy_rng: its NumPy RNG state is damaged."
    problem = history_problem(info["history"], "info.history")
    if problem:
        return problem
    data = info.get("data", {})
    for name, pos in data.items() if isinstance(data, dict) else [("data", data)]:
        if pos is not None and not (
                isinstance(pos, dict) and isinstance(pos.get("pos"), int)
                and pos["pos"] >= 0 and isinstance(pos.get("started"), bool)
                and (pos.get("rng") is None or (
                    isinstance(pos["rng"], list) and len(pos["rng"]) == 3
                    and np.shape(extra.get(f"{name}_rng", ())) == (624,)))
                and (not pos.get("torch_rng") or f"{name}_torch_rng" in extra)):
            return f"info.data.{name}: its record of the {name} data position is damaged."
    version = info.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version > VERSION:
        return (f"info.version: it is a backup of format version {version!r}, newer than "
                f"this kompile reads ({VERSION}); upgrade kompile to resume from it.")
    if not isinstance(info.get("run", {}), dict):
        return "info.run: not a JSON object."
    return None


class RunMismatchError(ValueError):
    """A backup written by a fit() with other settings (batch size, samples, ...)."""


class BackupAndRestore(Callback):
    """Back up the training state to ``backup_dir`` and resume from it after a crash.

    Args:
        backup_dir: The folder holding the backup file (created when needed; removed at
            the end of a successful run when ``delete_checkpoint`` is ``True``).
        save_freq: ``"epoch"`` (default: at the end of every epoch), a number of training
            batches between backups, or ``False`` (never write; only restore).
        double_checkpoint: Keep the previous backup next to the new one, and fall back to
            it if the new one cannot be read. Default ``False``.
        delete_checkpoint: Delete the backup when training ends normally. Default ``True``.

    Example:
        >>> import kompile as kp
        >>> backup = kp.callbacks.BackupAndRestore("backup", save_freq=100)
        >>> backup.save_freq
        100
    """

    def __init__(self, backup_dir: Any, save_freq: Any = "epoch", double_checkpoint: bool = False,
                 delete_checkpoint: bool = True):
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore: `backup_dir` must be a directory path; received "
                             f"{backup_dir!r}.")
        if save_freq not in ("epoch", False) and (
                isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError("BackupAndRestore: `save_freq` must be 'epoch', a positive number of "
                             f"batches or False; received {save_freq!r}.")
        self.backup_dir = fspath(backup_dir, "backup_dir")
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        if save_freq not in ("epoch", False):
            # only then does it watch batches: with epoch backups the JAX backend may still
            # fuse unwatched batches into one call (pacing.py)
            self.on_train_batch_end = self._count_batches  # type: ignore[method-assign]
        self.path = os.path.join(self.backup_dir, FILE)
        self.prev_path = self.path + ".prev"
        self._reset()

    def _reset(self) -> None:
        self._records: dict[str, Any] = {"epoch": [], "history": {}}
        self._epoch = 0
        self._since_save = 0
        self._last_batch = -1
        self._resume_at: tuple[int, int] | None = None
        self._kept = False  # a non-finite save was skipped: keep the last finite backup

    # ------------------------------------------------------------------ restore
    def on_train_begin(self, logs=None):
        self._reset()
        saving.check_folder(self.backup_dir, "BackupAndRestore", "backup_dir")
        candidates = [p for p in (self.path, self.prev_path) if os.path.isfile(p)]
        if not candidates:
            return
        try:
            info, extra = saving.load_training_state(self.model, candidates[0], self._check)
        except RunMismatchError:
            raise
        except ValueError:
            if len(candidates) < 2:
                raise
            info, extra = saving.load_training_state(self.model, candidates[1], self._check)
        np.random.set_state(_rng_from_file(info["numpy_rng"], extra["numpy_rng"]))
        self.model.fit_run.backend.restore_global_rng(extra)  # torch's generators
        data = info.get("data")  # None: written before data positions were recorded
        if data is not None:
            data = {name: None if pos is None else {
                **pos, "rng": None if pos["rng"] is None
                else _rng_from_file(pos["rng"], extra[f"{name}_rng"]),
                "torch_rng": extra[f"{name}_torch_rng"] if pos.get("torch_rng") else None}
                for name, pos in data.items()}
        self._records = info["history"]
        self._resume_at = (info["epoch"], info["step"])
        self.model.fit_run.resume = {"epoch": info["epoch"], "step": info["step"], "data": data,
                                     "history": info["history"]}  # taken by the loop

    def _run(self) -> dict[str, Any]:
        run = self.model.fit_run
        return {} if run is None else run.record()

    def _check(self, info: dict[str, Any], extra: dict[str, Any]) -> str | None:
        """Why this backup cannot be resumed (None when it can): a file that is not a
        BackupAndRestore backup or a damaged field (``"<field>: <reason>"``), or one written
        by a different run (RunMismatchError)."""
        problem = backup_problem(info, extra)
        if problem:
            return problem
        epoch, step, epochs = info["epoch"], info["step"], self.params.get("epochs")
        history_epochs = info["history"]["epoch"]
        if history_epochs and history_epochs[-1] >= epoch:
            return (f"info.history.epoch: it records epoch {history_epochs[-1]}, not before "
                    f"the backup's epoch {epoch}.")
        if isinstance(epochs, int) and (epoch > epochs or (step and epoch >= epochs)):
            raise RunMismatchError(
                f"BackupAndRestore: the backup in {self.backup_dir!r} stands at epoch {epoch} "
                f"(step {step}), outside this fit() of {epochs} epochs. Run fit() with the "
                "epochs of the interrupted run, or delete the backup directory to start "
                "afresh.")
        stored, now = info.get("run", {}), self._run()
        names = ["batch_size", "samples"] + (["steps_per_execution"] if info["step"] else [])
        diffs = [f"{k}={stored[k]!r} then, {now[k]!r} now" for k in names
                 if stored.get(k) is not None and now.get(k) is not None
                 and stored[k] != now[k]]
        if diffs:
            raise RunMismatchError(
                f"BackupAndRestore: the backup in {self.backup_dir!r} (epoch {info['epoch']}, "
                f"step {info['step']}) was written by a different run: "
                f"{'; '.join(diffs)}. Resuming would replay the wrong batches. Run fit() with "
                "the same data and settings, or delete the backup directory to start afresh.")
        return None

    # ------------------------------------------------------------------ save
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        resumed = self._resume_at is not None and self._resume_at[0] == epoch
        self._last_batch = self._resume_at[1] - 1 if resumed else -1
        self._resume_at = None

    def _count_batches(self, batch: int, logs: Any = None) -> None:
        self._since_save += batches_run(batch, self._last_batch)
        self._last_batch = batch
        if self._since_save >= self.save_freq:
            self._since_save = 0
            self._save(self._epoch, batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self._records["epoch"].append(epoch)
        for key, value in (logs or {}).items():  # as History records them
            self._records["history"].setdefault(key, []).append(value)
        if self.save_freq == "epoch":
            self._save(epoch + 1, 0)

    def _save(self, epoch: int, step: int) -> None:
        numpy_rng, keys = _rng_to_file(np.random.get_state())
        run = self.model.fit_run
        positions: dict[str, Any] = {} if run is None else run.position()
        info: dict[str, Any] = {
                "version": VERSION, "epoch": epoch, "step": step, "numpy_rng": numpy_rng,
                "history": self._records, "run": self._run(), "data": {}}
        extra = {"numpy_rng": keys}
        for name, pos in positions.items():
            if pos is not None and pos["rng"] is not None:
                rng, extra[f"{name}_rng"] = _rng_to_file(pos["rng"])
                pos = {**pos, "rng": rng}
            if pos is not None and pos.get("torch_rng") is not None:  # an iterable's pass
                extra[f"{name}_torch_rng"] = np.asarray(pos["torch_rng"], np.uint8)
                pos = {**pos, "torch_rng": True}
            info["data"][name] = pos
        if run is not None:  # torch's global generators (JAX's keys are in the state)
            extra.update(run.backend.global_rng())
        self._write(info, extra, epoch, step)

    def _write(self, info: dict[str, Any], extra: dict[str, Any], epoch: int,
               step: int) -> None:
        moved = self.double_checkpoint and os.path.isfile(self.path)
        if moved:
            os.replace(self.path, self.prev_path)
        try:
            saving.save_training_state(self.model, self.path, info, extra, finite_only=True)
        except saving.NonFiniteError as err:  # nothing was written
            if moved:
                os.replace(self.prev_path, self.path)
            self._kept = True
            where = f"epoch {epoch}" if not step else f"epoch {epoch + 1}, batch {step}"
            warnings.warn(f"BackupAndRestore: not backing up at {where}: {err}. The backup "
                          f"in {self.backup_dir!r} keeps the last finite state and is not "
                          "deleted when training ends.", KompileWarning, stacklevel=3)

    # ------------------------------------------------------------------ finish
    def on_train_end(self, logs=None):
        if not self.delete_checkpoint or self._kept:
            return
        for path in (self.path, self.prev_path):
            if os.path.isfile(path):
                os.remove(path)
        try:
            os.rmdir(self.backup_dir)  # only if nothing else lives there
        except OSError:
            pass
