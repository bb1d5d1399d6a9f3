"""kompile demo: a small Flax NNX CNN on scikit-learn's digits (shipped with the package).

    make demo        # or: .venv/bin/python examples/digits_demo.py

Trains with ``compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])``,
validates on a split, evaluates on held-out data and saves the training curves.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np
from flax import nnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import kompile as kp


class DigitsCNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 16, kernel_size=(3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(16, 32, kernel_size=(3, 3), rngs=rngs)
        self.dropout = nnx.Dropout(0.2, rngs=rngs)
        self.head = nnx.Linear(32 * 4 * 4, 10, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.conv1(x))
        x = nnx.max_pool(nnx.relu(self.conv2(x)), window_shape=(2, 2), strides=(2, 2))
        x = self.dropout(x.reshape(x.shape[0], -1))
        return nnx.softmax(self.head(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--plot", default="training_curves.png")
    args = parser.parse_args()

    kp.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]  # (1797, 8, 8, 1)
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)

    model = kp.Model(DigitsCNN(nnx.Rngs(0)))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=args.epochs,
                        validation_split=0.15, verbose=1)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"\nheld-out test: loss {loss:.4f} - accuracy {accuracy:.4f} "
          f"({len(x_test)} images never seen in training)")
    history.plot(args.plot)
    print(f"training curves saved to {args.plot}")
    probs = model.predict(x_test[:8], verbose=0)
    print("first predictions:", np.argmax(probs, axis=1), "true:", y_test[:8])
    # the trained weights live in the module itself
    assert jnp.allclose(model.module(jnp.asarray(x_test[:8])), probs, atol=1e-5)
    if accuracy < 0.95:
        raise SystemExit(f"accuracy {accuracy:.3f} is below the expected 0.95")


if __name__ == "__main__":
    main()
