# ruff: noqa: UP032  (the guide's callbacks, kept as written)
"""keras-io guides/writing_your_own_callbacks.py ("Writing your own callbacks"), Keras 3
version, run through kompile and through Keras 3 (JAX) side by side.

Changed from the guide: the model (``get_model`` returns a kp.Model around an nnx.Linear /
torch Linear instead of a Sequential of one Dense), the callbacks' base class
(``kp.callbacks.Callback``) and the data (synthetic arrays of MNIST's shapes instead of
``keras.datasets.mnist``). The callbacks' code is the guide's. The reference is Keras
itself: the lines the callbacks print (hooks, log keys, learning rates) must be the same.
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest

import kompile as kp

keras = pytest.importorskip("keras")
# Keras's own variables, read by np.array in the guide's scheduler, warn under NumPy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _callbacks(base):
    class CustomCallback(base):
        def on_train_begin(self, logs=None):
            keys = list(logs.keys())
            print("Starting training; got log keys: {}".format(keys))

        def on_train_end(self, logs=None):
            keys = list(logs.keys())
            print("Stop training; got log keys: {}".format(keys))

        def on_epoch_begin(self, epoch, logs=None):
            keys = list(logs.keys())
            print("Start epoch {} of training; got log keys: {}".format(epoch, keys))

        def on_epoch_end(self, epoch, logs=None):
            keys = list(logs.keys())
            print("End epoch {} of training; got log keys: {}".format(epoch, keys))

        def on_test_begin(self, logs=None):
            keys = list(logs.keys())
            print("Start testing; got log keys: {}".format(keys))

        def on_test_end(self, logs=None):
            keys = list(logs.keys())
            print("Stop testing; got log keys: {}".format(keys))

        def on_predict_begin(self, logs=None):
            keys = list(logs.keys())
            print("Start predicting; got log keys: {}".format(keys))

        def on_predict_end(self, logs=None):
            keys = list(logs.keys())
            print("Stop predicting; got log keys: {}".format(keys))

        def on_train_batch_begin(self, batch, logs=None):
            keys = list(logs.keys())
            print("...Training: start of batch {}; got log keys: {}".format(batch, keys))

        def on_train_batch_end(self, batch, logs=None):
            keys = list(logs.keys())
            print("...Training: end of batch {}; got log keys: {}".format(batch, keys))

        def on_test_batch_begin(self, batch, logs=None):
            keys = list(logs.keys())
            print("...Evaluating: start of batch {}; got log keys: {}".format(batch, keys))

        def on_test_batch_end(self, batch, logs=None):
            keys = list(logs.keys())
            print("...Evaluating: end of batch {}; got log keys: {}".format(batch, keys))

        def on_predict_batch_begin(self, batch, logs=None):
            keys = list(logs.keys())
            print("...Predicting: start of batch {}; got log keys: {}".format(batch, keys))

        def on_predict_batch_end(self, batch, logs=None):
            keys = list(logs.keys())
            print("...Predicting: end of batch {}; got log keys: {}".format(batch, keys))

    class EarlyStoppingAtMinLoss(base):
        def __init__(self, patience=0):
            super().__init__()
            self.patience = patience
            self.best_weights = None

        def on_train_begin(self, logs=None):
            self.wait = 0
            self.stopped_epoch = 0
            self.best = np.inf

        def on_epoch_end(self, epoch, logs=None):
            current = logs.get("loss")
            if np.less(current, self.best):
                self.best = current
                self.wait = 0
                self.best_weights = self.model.get_weights()
            else:
                self.wait += 1
                if self.wait >= self.patience:
                    self.stopped_epoch = epoch
                    self.model.stop_training = True
                    print("Restoring model weights from the end of the best epoch.")
                    self.model.set_weights(self.best_weights)

        def on_train_end(self, logs=None):
            if self.stopped_epoch > 0:
                print(f"Epoch {self.stopped_epoch + 1}: early stopping")

    class CustomLearningRateScheduler(base):
        def __init__(self, schedule):
            super().__init__()
            self.schedule = schedule

        def on_epoch_begin(self, epoch, logs=None):
            if not hasattr(self.model.optimizer, "learning_rate"):
                raise ValueError('Optimizer must have a "learning_rate" attribute.')
            lr = self.model.optimizer.learning_rate
            scheduled_lr = self.schedule(epoch, lr)
            self.model.optimizer.learning_rate = scheduled_lr
            print(f"\nEpoch {epoch}: Learning rate is {float(np.array(scheduled_lr))}.")

    return CustomCallback, EarlyStoppingAtMinLoss, CustomLearningRateScheduler


LR_SCHEDULE = [(3, 0.05), (6, 0.01), (9, 0.005), (12, 0.001)]


def lr_schedule(epoch, lr):
    if epoch < LR_SCHEDULE[0][0] or epoch > LR_SCHEDULE[-1][0]:
        return lr
    for i in range(len(LR_SCHEDULE)):
        if epoch == LR_SCHEDULE[i][0]:
            return LR_SCHEDULE[i][1]
    return lr


def _run(get_model, base):
    rng = np.random.default_rng(0)
    x_train = rng.uniform(size=(1000, 784)).astype("float32")
    y_train = rng.integers(0, 10, 1000).astype("float32")
    CustomCallback, EarlyStoppingAtMinLoss, CustomLearningRateScheduler = _callbacks(base)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model = get_model()
        model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0,
                  validation_split=0.5, callbacks=[CustomCallback()])
        model.evaluate(x_train, y_train, batch_size=128, verbose=0,
                       callbacks=[CustomCallback()])
        model.predict(x_train, batch_size=128, verbose=0, callbacks=[CustomCallback()])
        model = get_model()
        model.fit(x_train, y_train, batch_size=64, steps_per_epoch=5, epochs=15, verbose=0,
                  callbacks=[CustomLearningRateScheduler(lr_schedule)])
        model = get_model()
        model.fit(x_train, y_train, batch_size=64, steps_per_epoch=5, epochs=3, verbose=0,
                  callbacks=[EarlyStoppingAtMinLoss(patience=5)])
    return out.getvalue()


def test_the_callbacks_guide_prints_what_keras_prints(make_model, backend):
    def get_model():
        return kp.Model(make_model("linear", n_in=784, n_out=1)).compile(
            optimizer=kp.optimizers.RMSprop(learning_rate=0.1), loss="mean_squared_error",
            metrics=["mean_absolute_error"])

    def get_keras_model():
        model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.1),
                      loss="mean_squared_error", metrics=["mean_absolute_error"])
        return model

    got = _run(get_model, kp.callbacks.Callback)
    want = _run(get_keras_model, keras.callbacks.Callback)
    assert _norm(got) == _norm(want)


def _norm(text):
    """Key lists as sorted lists; numbers to 6 digits (Keras's learning rate is a float32
    variable: 0.10000000149011612 prints where kompile's float prints 0.1)."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"\[(.*)\]", lambda m: str(sorted(m.group(1).split(", "))), line)
        lines.append(re.sub(r"\d+\.\d+", lambda m: f"{float(m.group(0)):.6g}", line))
    return lines
