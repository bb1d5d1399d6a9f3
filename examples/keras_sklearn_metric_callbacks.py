"""Evaluating scikit-learn metrics in a callback, run with kompile on a PyTorch module.

Source: keras-team/keras-io, examples/keras_recipes/sklearn_metric_callbacks.py (lukewood).
Changed: the model is a torch ``nn.Module`` with the same layers (Conv 32 -> max-pool ->
Conv 64 -> max-pool -> flatten -> Dropout(0.5) -> Dense(10, softmax); channels first, so the
images are transposed once, as torch users do); the data are scikit-learn's digits upsampled
to 28x28 (no download) instead of MNIST; the callback keeps its values in a list and prints
them instead of writing a TensorFlow summary (``tf.summary`` needs TensorFlow), and reads the
result with ``float()`` instead of TensorFlow's ``.numpy()``.
Unchanged: the callback (no ``super().__init__()``, ``self.model.predict`` inside
``on_epoch_end``, a ``Mean("jaccard_score")`` metric updated with the per-class scores),
to_categorical, compile("categorical_crossentropy", "adam", ["accuracy"]),
fit(batch_size=128, epochs=15, validation_split=0.1).

    python examples/keras_sklearn_metric_callbacks.py [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import jaccard_score
from torch import nn

import kompile as kp


class JaccardScoreCallback(kp.callbacks.Callback):
    """Computes the Jaccard score and logs the results."""

    def __init__(self, name, x_test, y_test, log):
        self.x_test = x_test
        self.y_test = y_test
        self.keras_metric = kp.metrics.Mean("jaccard_score")
        self.epoch = 0
        self.name = name
        self.log = log

    def on_epoch_end(self, batch, logs=None):
        self.epoch += 1
        self.keras_metric.reset_state()
        predictions = self.model.predict(self.x_test)
        jaccard_value = jaccard_score(
            np.argmax(predictions, axis=-1), self.y_test, average=None, zero_division=0.0
        )
        self.keras_metric.update_state(jaccard_value)
        self._write_metric(self.keras_metric.name, float(self.keras_metric.result()))

    def _write_metric(self, name, value):
        self.log.append((self.epoch, name, value))
        print(f"{self.name} epoch {self.epoch}: {name} = {value:.4f}")


def load_digits_28() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's digits as 28x28 uint8 images (3x nearest upsampling, 2 pixels of border);
    the last 297 are the test set."""
    digits = load_digits()
    images = np.pad(digits.images.repeat(3, axis=1).repeat(3, axis=2), ((0, 0), (2, 2), (2, 2)))
    images = (images * 255 / 16).astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    return (images[:-297], labels[:-297]), (images[-297:], labels[-297:])


class ConvNet(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.5))
        self.dense = nn.Linear(5 * 5 * 64, num_classes)

    def forward(self, x):
        return torch.softmax(self.dense(self.features(x)), dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 epochs on 256 images")
    args = parser.parse_args()
    torch.manual_seed(0)

    # Model / data parameters
    num_classes = 10

    # The data, split between train and test sets
    (x_train, y_train), (x_test, y_test) = load_digits_28()

    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    # Make sure images have shape (1, 28, 28): torch puts channels first
    x_train = np.expand_dims(x_train, 1)
    x_test = np.expand_dims(x_test, 1)
    print("x_train shape:", x_train.shape)
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")

    # Convert class vectors to binary class matrices.
    y_train = kp.utils.to_categorical(y_train, num_classes)
    y_test = kp.utils.to_categorical(y_test, num_classes)

    model = kp.Model(ConvNet(num_classes))

    batch_size = 128
    epochs = 15
    if args.quick:
        x_train, y_train, epochs = x_train[:256], y_train[:256], 2
        x_test, y_test = x_test[:64], y_test[:64]

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    log: list[tuple[int, str, float]] = []
    callbacks = [JaccardScoreCallback("model", x_test, np.argmax(y_test, axis=-1), log)]
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_split=0.1,
        callbacks=callbacks,
        verbose=2,
    )

    final = log[-1][2]
    print("Final jaccard_score:", final)
    if len(log) != epochs:
        raise SystemExit(f"the callback ran {len(log)} times in {epochs} epochs")
    if not args.quick and final < 0.7:
        raise SystemExit(f"jaccard score {final:.3f} is below 0.7")


if __name__ == "__main__":
    main()
