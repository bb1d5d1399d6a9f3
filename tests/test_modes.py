"""Execution modes hold for every call (issue 12 item 4, issue 16 item 6).

``run_eagerly=True`` runs the module's Python at every batch of fit, evaluate, predict and
the three ``*_on_batch`` calls, and ``model.jit_compile`` reports the compile-time
resolution before and after any call. On torch, ``jit_compile=True`` compiles predict also
before any fit or evaluate.
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp


def _counting(backend):
    """A linear module whose Python body counts its runs in ``runs["n"]`` (a trace counts
    once; kompile calls copies of an nnx module, so the count lives outside it)."""
    runs = {"n": 0}
    if backend == "jax":
        import jax.numpy as jnp
        from flax import nnx

        class Counting(nnx.Module):
            def __init__(self):
                self.w = nnx.Param(jnp.full((3, 2), 0.1))

            def __call__(self, x):
                runs["n"] += 1
                return x @ self.w

        return Counting(), runs
    import torch

    class TorchCounting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.full((3, 2), 0.1))

        def forward(self, x):
            runs["n"] += 1
            return x @ self.w

    return TorchCounting(), runs


def _data(n=40):
    r = np.random.default_rng(0)
    return r.normal(size=(n, 3)).astype(np.float32), r.normal(size=(n, 2)).astype(np.float32)


def test_run_eagerly_runs_the_module_at_every_batch_of_every_call(backend):
    x, y = _data()
    net, counter = _counting(backend)
    model = kp.Model(net).compile("sgd", "mse", run_eagerly=True)
    assert model.jit_compile is False

    def runs(call):
        before = counter["n"]
        call()
        assert model.jit_compile is False  # never flips
        return counter["n"] - before

    assert runs(lambda: model.predict(x, batch_size=8, verbose=0)) >= 5  # before any fit
    assert runs(lambda: model.predict_on_batch(x[:8])) >= 1
    assert runs(lambda: model.predict_on_batch(x[:8])) >= 1  # same shapes: still runs
    assert runs(lambda: model.fit(x, y, batch_size=8, epochs=2, verbose=0)) >= 10
    assert runs(lambda: model.evaluate(x, y, batch_size=8, verbose=0)) >= 5
    assert runs(lambda: model.predict(x, batch_size=8, verbose=0)) >= 5
    for _ in range(2):
        assert runs(lambda: model.train_on_batch(x[:8], y[:8])) >= 1
        assert runs(lambda: model.test_on_batch(x[:8], y[:8])) >= 1
        assert runs(lambda: model.predict_on_batch(x[:8])) >= 1


def test_jax_predict_before_fit_keeps_the_resolved_mode():
    x, _ = _data()
    net, counter = _counting("jax")
    model = kp.Model(net).compile("sgd", "mse")
    assert model.jit_compile is True
    model.predict(x, batch_size=8, verbose=0)
    calls = counter["n"]
    model.predict(x, batch_size=8, verbose=0)
    assert counter["n"] == calls  # compiled: the second predict runs no Python
    assert model.jit_compile is True


def test_torch_jit_compile_true_compiles_predict_before_fit():
    torch = pytest.importorskip("torch")

    class Probe(torch.nn.Module):
        """Records whether each forward ran under torch.compile."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.full((3, 2), 0.1))
            self.compiled = []

        def forward(self, x):
            self.compiled.append(torch.compiler.is_compiling())
            return x @ self.w

    x, _ = _data(16)
    net = Probe()
    model = kp.Model(net).compile("sgd", "mse", jit_compile=True)
    out = model.predict(x, batch_size=8, verbose=0)
    assert model.jit_compile is True
    # the first forward is kompile's shape probe (one eager call); the batches are compiled
    assert len(net.compiled) >= 3 and all(net.compiled[1:])
    np.testing.assert_allclose(out, x @ np.full((3, 2), 0.1, np.float32), rtol=1e-5, atol=1e-7)


def test_jax_run_eagerly_with_batchnorm_and_dropout_equals_jit():
    """Eager JAX steps carry the module's RNG keys and batch statistics as jitted ones do
    (a key array has no astype outside jit: eager fit of such a module used to fail)."""
    from . import models

    x = np.random.default_rng(1).normal(size=(32, 4)).astype(np.float32)
    y = np.random.default_rng(2).normal(size=(32, 2)).astype(np.float32)
    runs = {}
    for eager in (False, True):
        model = kp.Model(models.build("jax", "dropout_bn")).compile(
            "sgd", "mse", run_eagerly=eager)
        history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        runs[eager] = (history.history["loss"], model.get_weights(),
                       model.evaluate(x, y, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_allclose(runs[True][0], runs[False][0], rtol=1e-5)
    for a, b in zip(runs[True][1], runs[False][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert runs[True][2] == pytest.approx(runs[False][2], rel=1e-5)
    np.testing.assert_allclose(runs[True][3], runs[False][3], rtol=1e-5, atol=1e-6)
