"""Flax's MNIST example, its CNN as written, trained by kompile instead of a hand-written loop.

Source: google/flax, examples/mnist/train.py (CNN, get_datasets, train_and_evaluate) and
examples/mnist/configs/default.py (learning_rate=0.1, momentum=0.9, batch_size=128,
num_epochs=10).
Changed: the data are scikit-learn's digits upsampled from 8x8 to 28x28 (no tensorflow_datasets
download); the training loop (``train_step``/``eval_step`` with ``nnx.value_and_grad``,
``nnx.Optimizer`` and ``nnx.MultiMetric``) is replaced by ``kp.Model(model).compile(...)`` and
``fit(validation_data=test set)``, which compute the same loss (softmax cross-entropy with integer
labels, from logits) and accuracy each epoch on the train and test sets; the summary writer is
kompile's ``TensorBoard`` callback; no orbax export.
Unchanged: the ``CNN`` class, including its ``__call__(self, x, rngs)`` signature (kompile passes
an ``nnx.Rngs`` it owns), ``CNN(rngs=nnx.Rngs(0))`` and ``optax.sgd(learning_rate, momentum)``.

    python examples/flax_mnist.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from functools import partial

import numpy as np
import optax
from flax import nnx
from sklearn.datasets import load_digits

import kompile as kp


class CNN(nnx.Module):
  """A simple CNN model."""

  def __init__(self, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
    self.batch_norm1 = nnx.BatchNorm(32, rngs=rngs)
    self.dropout1 = nnx.Dropout(rate=0.025)
    self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
    self.batch_norm2 = nnx.BatchNorm(64, rngs=rngs)
    self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
    self.linear1 = nnx.Linear(3136, 256, rngs=rngs)
    self.dropout2 = nnx.Dropout(rate=0.025)
    self.linear2 = nnx.Linear(256, 10, rngs=rngs)

  def __call__(self, x, rngs: nnx.Rngs):
    x = self.avg_pool(nnx.relu(self.batch_norm1(self.dropout1(self.conv1(x), rngs=rngs))))
    x = self.avg_pool(nnx.relu(self.batch_norm2(self.conv2(x))))
    x = x.reshape(x.shape[0], -1)  # flatten
    x = nnx.relu(self.dropout2(self.linear1(x), rngs=rngs))
    x = self.linear2(x)
    return x


def get_datasets(n_test: int = 297) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """Digits as {'image': (n, 28, 28, 1) float32 in [0, 1], 'label': (n,) int}."""
  digits = load_digits()
  images = np.pad(np.kron(digits.images, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2)))
  images = (images / 16.0).astype(np.float32)[..., None]
  labels = digits.target
  train_ds = {'image': images[:-n_test], 'label': labels[:-n_test]}
  test_ds = {'image': images[-n_test:], 'label': labels[-n_test:]}
  return train_ds, test_ds


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--quick', action='store_true', help='1 epoch on 256 images')
  args = parser.parse_args()

  learning_rate, momentum, batch_size, num_epochs = 0.1, 0.9, 128, 10
  train_ds, test_ds = get_datasets()
  if args.quick:
    train_ds = {k: v[:256] for k, v in train_ds.items()}
    test_ds = {k: v[:64] for k, v in test_ds.items()}
    num_epochs = 1

  # Instantiate the model.
  model = CNN(rngs=nnx.Rngs(0))

  trainer = kp.Model(model)
  trainer.compile(
      optimizer=optax.sgd(learning_rate, momentum),
      loss=kp.losses.SparseCategoricalCrossentropy(from_logits=True),
      metrics=['accuracy'],
  )
  with tempfile.TemporaryDirectory() as workdir:
    history = trainer.fit(
        train_ds['image'], train_ds['label'],
        batch_size=batch_size, epochs=num_epochs,
        validation_data=(test_ds['image'], test_ds['label']),
        callbacks=[kp.callbacks.TensorBoard(workdir)],
        verbose=2,
    )
  for epoch in history.epoch:
    h = {k: v[epoch] for k, v in history.history.items()}
    print(f"epoch: {epoch + 1:2d}, train_loss: {h['loss']:.4f}, "
          f"train_accuracy: {h['accuracy'] * 100:.2f}, test_loss: {h['val_loss']:.4f}, "
          f"test_accuracy: {h['val_accuracy'] * 100:.2f}")
  if not args.quick and history.history['val_accuracy'][-1] < 0.9:
    raise SystemExit('test accuracy is below 0.9')


if __name__ == '__main__':
  main()
