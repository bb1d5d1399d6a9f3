"""Cases of Keras's ``keras/src/losses/losses_test.py`` that the parity tests do not reach.

Keras's whole losses test file was run against ``kompile.losses`` (its import swapped): every
case of the losses kompile has passes except message wording, ``dtype=`` and config
round-trips through Keras's serialiser and ``SyntaxWarning`` for one-class categorical outputs.
Two bugs found: ``SparseCategoricalCrossentropy(axis=...)`` other than -1 (torch's
channels-first convention) broke, in the function and in ``fit``'s checks (the numbers below
are those of Keras's torch branch of the ``*_different_axis`` tests); and a loss object called
directly broadcast mismatched targets silently (``fit`` refused them already).
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp
from kompile import losses

from . import models

try:  # tests/ is a package
    from .test_losses_parity import TOL, run_backends
except ImportError:  # tests/ on sys.path
    from test_losses_parity import TOL, run_backends  # type: ignore[no-redef]

Y_TRUE = np.array([[0, 1, 1, 0], [1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 0, 1]])
Y_PRED = np.array([  # (4, 4, 2): classes last; Keras's test moves them to axis 0
    [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.2, 0.8]],
    [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
    [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]],
    [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.4]],
], np.float32)
EXPECTED = (-np.log(0.2) - np.log(0.4)) / 16.0  # Keras: expected.sum() / 16.0


def _on_backends(fn, *arrays):
    return run_backends(fn, [arrays], jit_all=False)


@pytest.mark.parametrize("axis,moved", [(0, lambda p: np.moveaxis(p, 2, 0)),
                                        (1, lambda p: np.stack([np.moveaxis(p, 2, 0)] * 3))])
def test_sparse_crossentropy_on_another_axis(axis, moved):
    y_true = Y_TRUE if axis == 0 else np.stack([Y_TRUE] * 3)
    loss = losses.SparseCategoricalCrossentropy(axis=axis)
    for backend, values in _on_backends(loss, y_true, moved(Y_PRED)).items():
        np.testing.assert_allclose(values[0], EXPECTED, **TOL, err_msg=backend)


def test_sparse_crossentropy_squeezes_a_singleton_class_axis():
    # Keras's test_squeezes_singleton_class_dim_on_user_axis, with values checked too
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, size=(2, 1, 4, 4)).astype(np.float32)
    logits = rng.normal(size=(2, 2, 4, 4)).astype(np.float32)
    got = losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True, axis=1)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    want = -np.take_along_axis(log_p, y_true.astype(int), axis=1)[:, 0]
    assert got.shape == (2, 4, 4)
    np.testing.assert_allclose(got, want, **TOL)


def test_channels_first_segmentation_evaluates(backend):
    # a torch-style segmentation output (N, C, H, W) with labels (N, H, W): the identity model
    # makes the logits the input, so loss and metrics are known from NumPy
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 4, 3, 5)).astype(np.float32)
    labels = rng.integers(0, 4, size=(6, 3, 5))
    model = kp.Model(models.build(backend, "identity")).compile(
        "sgd", losses.SparseCategoricalCrossentropy(from_logits=True, axis=1),
        metrics=["accuracy", "crossentropy"])
    got = model.evaluate(logits, labels, batch_size=4, return_dict=True, verbose=0)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    nll = -np.take_along_axis(log_p, labels[:, None], axis=1)[:, 0]
    assert got["loss"] == pytest.approx(nll.mean(), rel=1e-5)
    assert got["crossentropy"] == pytest.approx(nll.mean(), rel=1e-5)
    assert got["accuracy"] == pytest.approx((logits.argmax(axis=1) == labels).mean(), rel=1e-6)


def test_channels_first_labels_are_range_checked(backend):
    # the label range check reads the class count from the class axis (4), not the last (5)
    model = kp.Model(models.build(backend, "identity")).compile(
        "sgd", losses.SparseCategoricalCrossentropy(from_logits=True, axis=1))
    labels = np.zeros((2, 3, 5), np.int64)
    labels[0, 0, 0] = 4
    with pytest.raises(ValueError, match=r"outside \[0, 4\)"):
        model.evaluate(np.zeros((2, 4, 3, 5), np.float32), labels, verbose=0)
    labels[0, 0, 0] = 3
    assert model.evaluate(np.zeros((2, 4, 3, 5), np.float32), labels, verbose=0) == (
        pytest.approx(np.log(4.0)))


def test_channels_first_segmentation_trains_on_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 3, 6, 6)).astype(np.float32)
    labels = x.argmax(axis=1)  # the class is the brightest channel: a 1x1 conv can learn it
    model = kp.Model(torch.nn.Conv2d(3, 3, 1)).compile(
        "adam", losses.SparseCategoricalCrossentropy(from_logits=True, axis=1),
        metrics=["accuracy"])
    hist = model.fit(x, labels, batch_size=8, epochs=5, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_class_axis_must_not_be_the_batch_axis(backend):
    model = kp.Model(models.build(backend, "identity")).compile(
        "sgd", losses.SparseCategoricalCrossentropy(axis=0))
    with pytest.raises(ValueError, match="batch axis"):
        model.evaluate(np.ones((2, 3), np.float32), np.zeros((2,), np.int64), verbose=0)


@pytest.mark.parametrize("cls", [losses.BinaryCrossentropy, losses.CategoricalCrossentropy,
                                 losses.MeanSquaredError])
def test_loss_object_refuses_targets_it_would_broadcast(cls):
    # Keras's test_shape_mismatch: class labels (3, 1) against 3-class predictions
    y_true = np.array([[0], [1], [2]], np.float32)
    y_pred = np.array([[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]], np.float32)
    with pytest.raises(ValueError, match="must have the same shape"):
        cls()(y_true, y_pred)
    # the shapes fit accepts are still accepted: equal, a trailing 1, rank-1 outputs
    assert np.isfinite(float(cls()(np.ones((3, 1), np.float32), np.full((3,), 0.5, np.float32))))
    assert np.isfinite(float(cls()(np.ones((3,), np.float32), np.full((3, 1), 0.5, np.float32))))


def test_sparse_loss_object_refuses_mismatched_labels():
    with pytest.raises(ValueError, match="up to the class axis"):
        losses.SparseCategoricalCrossentropy()(np.zeros((4, 2)), np.full((4, 3), 1 / 3))
    value = losses.SparseCategoricalCrossentropy()(np.zeros((4, 1)), np.full((4, 3), 1 / 3))
    assert float(value) == pytest.approx(np.log(3.0), rel=1e-6)
