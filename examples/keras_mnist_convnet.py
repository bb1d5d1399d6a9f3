"""Simple MNIST convnet, run with kompile on a Flax NNX module.

Source: keras-team/keras-io, examples/vision/mnist_convnet.py (fchollet).
Changed: the model is written as a Flax NNX module (the same layers: Conv 32 -> max-pool ->
Conv 64 -> max-pool -> flatten -> Dropout(0.5) -> Dense(10, softmax)); the data are
scikit-learn's digits upsampled from 8x8 to 28x28 (no download) instead of MNIST.
Unchanged: to_categorical, compile("categorical_crossentropy", "adam", ["accuracy"]),
fit(batch_size=128, epochs=15, validation_split=0.1), evaluate.

    python examples/keras_mnist_convnet.py [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
from flax import nnx
from sklearn.datasets import load_digits

import kompile as kp


def load_data(n_test: int = 297) -> tuple[tuple[np.ndarray, np.ndarray],
                                          tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's digits as 28x28 uint8 images (3.5x nearest upsampling, padded)."""
    digits = load_digits()
    images = np.kron(digits.images, np.ones((3, 3)))             # (n, 24, 24), values 0..16
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))           # (n, 28, 28)
    images = (images * (255 / 16)).astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    return (images[:-n_test], labels[:-n_test]), (images[-n_test:], labels[-n_test:])


class ConvNet(nnx.Module):
    def __init__(self, num_classes: int, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), padding="VALID", rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), padding="VALID", rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)
        self.dense = nnx.Linear(5 * 5 * 64, num_classes, rngs=rngs)

    def __call__(self, x):
        x = nnx.max_pool(nnx.relu(self.conv1(x)), window_shape=(2, 2), strides=(2, 2))
        x = nnx.max_pool(nnx.relu(self.conv2(x)), window_shape=(2, 2), strides=(2, 2))
        x = self.dropout(x.reshape(x.shape[0], -1))
        return nnx.softmax(self.dense(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 epoch on 256 images")
    args = parser.parse_args()

    # Model / data parameters
    num_classes = 10

    (x_train, y_train), (x_test, y_test) = load_data()

    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    # Make sure images have shape (28, 28, 1)
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    print("x_train shape:", x_train.shape)
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")

    # convert class vectors to binary class matrices
    y_train = kp.utils.to_categorical(y_train, num_classes)
    y_test = kp.utils.to_categorical(y_test, num_classes)

    model = kp.Model(ConvNet(num_classes, nnx.Rngs(0)))

    batch_size = 128
    epochs = 15
    if args.quick:
        x_train, y_train, epochs = x_train[:256], y_train[:256], 1
        x_test, y_test = x_test[:64], y_test[:64]

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

    score = model.evaluate(x_test, y_test, verbose=0)
    print("Test loss:", score[0])
    print("Test accuracy:", score[1])
    if not args.quick and score[1] < 0.85:
        raise SystemExit(f"test accuracy {score[1]:.3f} is below 0.85")


if __name__ == "__main__":
    main()
