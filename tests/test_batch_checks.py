"""Every batch of an iterable is checked on the host against the first, on both backends.

A generator's 6th batch (index 5) with a label out of range, another feature count, another
dtype, another structure or mismatched sample counts gets kompile's error naming the batch
and the difference (the reference: the batch as built here); sequences whose length varies
between batches still train; a loss turning NaN gets one warning naming epoch and batch.
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp


def _net(backend, n_in=4, n_out=3):
    if backend == "jax":
        nnx = pytest.importorskip("flax.nnx")
        return nnx.Linear(n_in, n_out, rngs=nnx.Rngs(0))
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Linear(n_in, n_out)


def _batches(bad=None, n=8):
    r = np.random.default_rng(0)
    for i in range(n):
        x, y = r.normal(size=(8, 4)).astype(np.float32), r.integers(0, 3, 8)
        if i == 5:
            if bad == "label":
                y[2] = 7
            elif bad == "features":
                x = r.normal(size=(8, 5)).astype(np.float32)
            elif bad == "dtype":
                x = x.astype(np.int32)
            elif bad == "structure":
                yield x
                continue
            elif bad == "rows":
                y = y[:7]
        yield x, y


CASES = {
    "label": r"batch 5 of `x`: `y` holds 1 invalid sparse label\(s\).*value 7 at index \(2,\) "
             r"is outside \[0, 3\)",
    "features": r"Batch 5 of `x` .*x has per-sample shape \(5,\) \(first batch: \(4,\)\), and "
                r"the model cannot take it",
    "dtype": r"Batch 5 of `x` .*x has dtype int32 \(first batch: float32\)",
    "structure": r"Batch 5 of `x` .*it holds x, but the first batch held x, y\[0\]",
    "rows": r"Batch 5 of `x` .*different numbers of samples: x: 8, y\[0\]: 7",
}


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("bad", list(CASES))
def test_a_later_batch_that_differs_from_the_first_is_named(backend, bad):
    model = kp.Model(_net(backend)).compile(
        "adam", kp.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=backend == "jax")
    with pytest.raises(ValueError, match=CASES[bad]):
        model.fit(_batches(bad), steps_per_epoch=8, epochs=1, verbose=0)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_predict_checks_each_batch_too(backend):
    model = kp.Model(_net(backend))
    with pytest.raises(ValueError, match=r"Batch 5 of `x` .*x has dtype int32"):
        model.predict((b[0] for b in _batches("dtype")), verbose=0)


class _MeanPool:
    """A model over sequences of any length: the mean over time, then a linear layer."""

    @staticmethod
    def make(backend):
        if backend == "jax":
            nnx = pytest.importorskip("flax.nnx")

            class Pool(nnx.Module):
                def __init__(self):
                    self.lin = nnx.Linear(4, 1, rngs=nnx.Rngs(0))

                def __call__(self, x):
                    return self.lin(x.mean(axis=1))

            return Pool()
        torch = pytest.importorskip("torch")

        class Pool(torch.nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.lin = torch.nn.Linear(4, 1)

            def forward(self, x):
                return self.lin(x.mean(dim=1))

        return Pool()


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_sequences_of_varying_length_still_train(backend):
    r = np.random.default_rng(1)
    batches = [(r.normal(size=(8, t, 4)).astype(np.float32),
                r.normal(size=(8, 1)).astype(np.float32)) for t in (5, 7, 5, 9)]
    module = _MeanPool.make(backend)
    model = kp.Model(module).compile(kp.optimizers.SGD(0.1), "mse",
                                     jit_compile=backend == "jax")
    loss = model.fit(batches, epochs=2, verbose=0).history["loss"]
    assert np.all(np.isfinite(loss)) and loss[1] < loss[0]
    # the reference: a NumPy forward pass of the mean-pooled batch with the trained weights
    w = next(a for a in model.get_weights() if a.size == 4).reshape(4, 1)
    b = next(a for a in model.get_weights() if a.size == 1).reshape(1)
    got = model.predict(batches[1][0], verbose=0)
    np.testing.assert_allclose(got, batches[1][0].mean(1) @ w + b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_loss_turning_nan_warns_once_naming_epoch_and_batch(backend):
    r = np.random.default_rng(0)
    x, y = r.normal(size=(8, 4)).astype(np.float32), r.normal(size=(8, 1)).astype(np.float32)

    def batches():
        for i in range(40):
            xb = x.copy()
            if i == 11:  # epoch 3 (5 batches per epoch), its batch 1
                xb[0, 0] = np.nan
            yield xb, y

    model = kp.Model(_net(backend, 4, 1)).compile(kp.optimizers.SGD(0.01), "mse",
                                                 jit_compile=backend == "jax")
    reads = kp.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: logs["loss"])
    with pytest.warns(UserWarning, match=r"non-finite \(nan\) in epoch 3, at batch 1 or before "
                                         r"\(after batch 0, whose loss was finite") as seen:
        model.fit(batches(), steps_per_epoch=5, epochs=4, verbose=0, callbacks=[reads])
    assert sum("non-finite" in str(w.message) for w in seen) == 1
