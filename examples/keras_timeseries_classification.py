"""Timeseries classification from scratch (FordA), run with kompile on a Flax NNX module.

Source: keras-team/keras-io, examples/timeseries/timeseries_classification_from_scratch.py
(hfawaz).
Changed: the fully convolutional network is a Flax NNX module with the same layers (3 x
[Conv1D(64, 3, "same") -> BatchNorm -> ReLU], global average pooling, Dense(softmax)); the data
are synthetic univariate series of length 500 with labels -1/1 like FordA (no download); the best
checkpoint is a ``.safetensors`` file in a temporary directory, restored with
``model.load_weights`` instead of ``keras.models.load_model("best_model.h5")``; no plots.
Unchanged: the label standardisation and shuffling, the callbacks (ModelCheckpoint
save_best_only on val_loss, ReduceLROnPlateau, EarlyStopping), compile("adam",
"sparse_categorical_crossentropy", ["accuracy"]), fit(batch_size=32, validation_split=0.2).

    python examples/keras_timeseries_classification.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
from flax import nnx
from sklearn.metrics import accuracy_score

import kompile as kp


def make_series(n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """FordA-like data: z-normalised noisy series; class 1 carries a burst at a random place."""
    y = rng.choice([-1, 1], size=n)
    t = np.arange(length)
    x = rng.normal(0.0, 1.0, (n, length)) + np.sin(t / rng.uniform(3, 8, (n, 1)))
    start = rng.integers(0, length - 60, n)
    for i in np.nonzero(y == 1)[0]:
        x[i, start[i]:start[i] + 60] += 2.5 * np.sin(np.arange(60) / 2.0)
    x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    return x, y


class FCN(nnx.Module):
    def __init__(self, channels: int, num_classes: int, rngs: nnx.Rngs):
        self.convs = nnx.List([nnx.Conv(c, 64, kernel_size=(3,), padding="SAME", rngs=rngs)
                               for c in (channels, 64, 64)])
        self.norms = nnx.List([nnx.BatchNorm(64, rngs=rngs) for _ in range(3)])
        self.dense = nnx.Linear(64, num_classes, rngs=rngs)

    def __call__(self, x):
        for conv, norm in zip(self.convs, self.norms):
            x = nnx.relu(norm(conv(x)))
        x = x.mean(axis=1)  # GlobalAveragePooling1D
        return nnx.softmax(self.dense(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 epochs on 160 short series")
    args = parser.parse_args()
    kp.utils.set_random_seed(0)

    rng = np.random.default_rng(0)
    n_train, n_test, length = (160, 64, 176) if args.quick else (1200, 400, 500)
    x_train, y_train = make_series(n_train, length, rng)
    x_test, y_test = make_series(n_test, length, rng)

    x_train = x_train.reshape((x_train.shape[0], x_train.shape[1], 1))
    x_test = x_test.reshape((x_test.shape[0], x_test.shape[1], 1))

    num_classes = len(np.unique(y_train))

    idx = np.random.permutation(len(x_train))
    x_train = x_train[idx]
    y_train = y_train[idx]

    y_train[y_train == -1] = 0
    y_test[y_test == -1] = 0

    model = kp.Model(FCN(x_train.shape[-1], num_classes, nnx.Rngs(0)))

    epochs = 2 if args.quick else 40
    batch_size = 32

    with tempfile.TemporaryDirectory() as workdir:
        best = os.path.join(workdir, "best_model.safetensors")
        callbacks = [
            kp.callbacks.ModelCheckpoint(
                best, save_best_only=True, monitor="val_loss"
            ),
            kp.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=20, min_lr=0.0001
            ),
            kp.callbacks.EarlyStopping(monitor="val_loss", patience=50, verbose=1),
        ]
        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        history = model.fit(
            x_train,
            y_train,
            batch_size=batch_size,
            epochs=epochs,
            callbacks=callbacks,
            validation_split=0.2,
            verbose=1,
        )

        model.load_weights(best)

    y_pred = model.predict(x_test).argmax(axis=1)
    accuracy = accuracy_score(y_pred, y_test)
    print("Test accuracy", accuracy)
    print("best val_loss", min(history.history["val_loss"]))
    if not args.quick and accuracy < 0.9:
        raise SystemExit(f"test accuracy {accuracy:.3f} is below 0.9")


if __name__ == "__main__":
    main()
