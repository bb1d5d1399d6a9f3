"""Training run for the kill-and-resume test (tests/test_resume.py).

``train(backend, backup_dir, save_freq)`` fits a small model for 5 epochs with
BackupAndRestore (dropout, batch norm, Adam, shuffling, validation: every piece of state a
resume must restore). Run as ``python -m tests.resume_script BACKEND BACKUP_DIR SAVE_FREQ
OUT.npz``: it trains and writes the final weights, history and the batches it ran to OUT.npz. With
``KOMPILE_KILL_AT="epoch,batch"`` set, the process sends SIGKILL to itself at the end of
that training batch (after BackupAndRestore has had its turn), so nothing gets to clean up.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np

EPOCHS = 5


def _killer():
    import kompile as kp

    epoch_batch = os.environ.get("KOMPILE_KILL_AT")
    if not epoch_batch:
        return []
    kill_epoch, kill_batch = (int(v) for v in epoch_batch.split(","))

    class Kill(kp.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == (kill_epoch, kill_batch):
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)

    return [Kill()]


def train(backend: str, backup_dir: str, save_freq, callbacks=()):
    import kompile as kp
    from tests import models

    if backend == "jax":
        import flax.nnx  # noqa: F401  (importing JAX draws from NumPy's RNG: import, then seed)
    else:
        import torch  # noqa: F401  (set_random_seed seeds torch only once it is imported)
    kp.utils.set_random_seed(0)
    r = np.random.default_rng(1)
    x = r.normal(size=(48, 4)).astype(np.float32)
    y = (x @ r.normal(size=(4, 2))).astype(np.float32)
    model = kp.Model(models.build(backend, "dropout_bn")).compile(
        kp.optimizers.Adam(0.02), "mse", metrics=["mae"])
    backup = kp.callbacks.BackupAndRestore(backup_dir, save_freq=save_freq)
    history = model.fit(x, y, batch_size=8, epochs=EPOCHS, validation_split=0.25, verbose=0,
                        callbacks=[backup, *callbacks, *_killer()])
    return model, history


def main() -> None:
    backend, backup_dir, save_freq, out = sys.argv[1:5]
    save_freq = save_freq if save_freq == "epoch" else int(save_freq)
    import kompile as kp

    batches = []
    count = kp.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    model, history = train(backend, backup_dir, save_freq, callbacks=[count])
    np.savez(out, *model.get_weights(), batches=np.asarray(batches),
             history=json.dumps({"epoch": history.epoch, "history": history.history}))


if __name__ == "__main__":
    main()
