"""torch ``jit_compile=True``: the whole step compiled (forward to optimizer step) equals eager
training, a ragged last batch compiles once (not every epoch), learning-rate changes never
recompile; ``jit_compile`` takes torch.compile's modes on torch only."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import kompile as kp

torch = pytest.importorskip("torch")


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def test_whole_step_equals_eager_with_ragged_last_batch_and_lr_changes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)  # batches of 16: the last has 8 rows
    y = rng.integers(0, 3, 40)
    schedule = kp.callbacks.LearningRateScheduler(lambda epoch, lr: 0.05 / (1 + epoch))
    runs = {}
    for jit in (False, True):
        model = kp.Model(_net()).compile(kp.optimizers.Adam(0.05),
                                         "sparse_categorical_crossentropy",
                                         metrics=["accuracy"], jit_compile=jit)
        torch._dynamo.utils.counters.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Dynamo's own notes while compiling
            hist = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                             callbacks=[schedule])
        runs[jit] = (model.get_weights(), hist.history,
                     dict(torch._dynamo.utils.counters["stats"]))
    (w_eager, h_eager, _), (w_jit, h_jit, stats) = runs[False], runs[True]
    for got, want in zip(w_jit, w_eager):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for key in h_eager:
        np.testing.assert_allclose(h_jit[key], h_eager[key], rtol=1e-5)
    # one graph for the full batches, one (dynamic batch dimension) for the last: 3 epochs
    # and 3 learning rates later, still two
    assert stats.get("unique_graphs") == 2, stats


def test_torch_compile_modes_are_accepted_on_torch_only():
    pytest.importorskip("flax")
    from flax import nnx

    model = kp.Model(_net()).compile("sgd", "mse", jit_compile="reduce-overhead")
    assert model.jit_compile is True
    with pytest.raises(ValueError, match="jit_compile"):
        kp.Model(_net()).compile("sgd", "mse", jit_compile="fast")
    jax_model = kp.Model(nnx.Linear(6, 3, rngs=nnx.Rngs(0))).compile(
        "sgd", "mse", jit_compile="reduce-overhead")
    with pytest.raises(ValueError, match="torch.compile mode"):
        jax_model.fit(np.zeros((4, 6), np.float32), np.zeros((4, 3), np.float32), verbose=0)
