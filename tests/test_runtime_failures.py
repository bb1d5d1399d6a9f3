"""A real out-of-memory failure inside a training step keeps the last good weights.

The module asks for a 3.8 TB (JAX) or 16 TB (torch) array, but only for a batch of 7 rows
(shapes are static, so the other batches run normally): the allocation fails at run time
like an out-of-memory step on an accelerator. References: a fresh model trained on the
batches before the failure, and a direct NumPy forward pass with the weights read back.
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp

HUGE = 7  # the batch size whose step allocates the enormous array


def _data():
    r = np.random.default_rng(0)
    return r.normal(size=(64, 3)).astype(np.float32), r.normal(size=(64, 1)).astype(np.float32)


def _batches(x, y, failing: bool):
    """8 batches of 8 rows (epoch 1), then 2 more and, if ``failing``, one of 7 rows and
    the rest of epoch 2."""
    for i in range(8):
        yield x[8 * i:8 * i + 8], y[8 * i:8 * i + 8]
    for i in range(2):
        yield x[8 * i:8 * i + 8], y[8 * i:8 * i + 8]
    if failing:
        yield x[:HUGE], y[:HUGE]
        for i in range(5):
            yield x[8 * i:8 * i + 8], y[8 * i:8 * i + 8]


def _jax_net():
    import jax
    import jax.numpy as jnp
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self):
            self.lin = nnx.Linear(3, 1, rngs=nnx.Rngs(0))

        def __call__(self, x):
            out = self.lin(x)
            if x.shape[0] == HUGE:  # static: only this batch's step asks for 3.8 TB
                big = jnp.broadcast_to(x[:, :1], (HUGE, 2 ** 36))
                out = out + 0 * jax.lax.cumsum(big, axis=1)[:, -1:]
            return out

    return Net()


def _torch_net():
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.lin = torch.nn.Linear(3, 1)

        def forward(self, x):
            if x.shape[0] == HUGE:
                torch.empty(2 ** 42, device=x.device)  # 16 TB: the allocator refuses it
            return self.lin(x)

    return Net()


def _module_weights(net):
    if hasattr(net, "parameters"):
        return [net.lin.weight.detach().numpy().T.copy(), net.lin.bias.detach().numpy().copy()]
    return [np.array(net.lin.kernel.get_value()), np.array(net.lin.bias.get_value())]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_out_of_memory_keeps_the_last_good_weights_and_fit_runs_again(backend, tmp_path):
    if backend == "jax":
        pytest.importorskip("flax.nnx")
    else:
        pytest.importorskip("torch")
    make = _jax_net if backend == "jax" else _torch_net
    x, y = _data()
    net = make()
    model = kp.Model(net).compile(kp.optimizers.Adam(0.05), "mse", jit_compile=False
                                  if backend == "torch" else "auto")
    with pytest.raises(Exception, match="(?i)out of memory|can't allocate|allocat"):
        if backend == "jax":  # the failure is seen at the end of epoch 2: back to epoch 1
            with pytest.warns(UserWarning, match="back to its state at the end of epoch 1"):
                model.fit(_batches(x, y, True), steps_per_epoch=8, epochs=3, verbose=0)
        else:
            model.fit(_batches(x, y, True), steps_per_epoch=8, epochs=3, verbose=0)
    # the reference: the same model trained on the batches before the failure (torch
    # updates in place, step by step: all 10; JAX: the 8 of the last completed epoch)
    ref = make()
    ref_model = kp.Model(ref).compile(kp.optimizers.Adam(0.05), "mse", jit_compile=False
                                      if backend == "torch" else "auto")
    done = 8 if backend == "jax" else 10
    ref_model.fit(_batches(x, y, False), steps_per_epoch=done, epochs=1, verbose=0)
    want = _module_weights(ref)
    for got, exp in zip(_module_weights(net), want):
        np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-6)
    for got, exp in zip(model.get_weights(), ref_model.get_weights()):
        np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), x @ want[0] + want[1], rtol=1e-4,
                               atol=1e-5)
    assert model.optimizer.iterations == done  # the optimizer state is the same point's
    model.save_weights(str(tmp_path / "after.weights.safetensors"))
    loss = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False).history["loss"]
    assert np.isfinite(loss[0]) and model.optimizer.iterations == done + 8


def test_out_of_memory_in_train_on_batch_keeps_the_previous_weights():
    pytest.importorskip("flax.nnx")
    x, y = _data()
    net = _jax_net()
    model = kp.Model(net).compile(kp.optimizers.SGD(0.1), "mse")
    model.train_on_batch(x[:8], y[:8])
    before = _module_weights(net)
    with pytest.warns(UserWarning, match="start of a train_on_batch call"):
        with pytest.raises(Exception, match="(?i)out of memory"):
            model.train_on_batch(x[:HUGE], y[:HUGE])
    for got, exp in zip(_module_weights(net), before):
        np.testing.assert_array_equal(got, exp)
    model.train_on_batch(x[:8], y[:8])  # runs again, from those weights
    grad = 2 * x[:8].T @ (x[:8] @ before[0] + before[1] - y[:8]) / 8
    np.testing.assert_allclose(_module_weights(net)[0], before[0] - 0.1 * grad, rtol=1e-4,
                               atol=1e-6)


@pytest.mark.parametrize("trained", [False, True])
def test_out_of_memory_in_predict_and_evaluate_leaves_the_model_usable(trained):
    pytest.importorskip("flax.nnx")
    x, y = _data()
    net = _jax_net()
    model = kp.Model(net)
    if trained:
        model.compile(kp.optimizers.SGD(0.1), "mse")
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        iterations = model.optimizer.iterations
    before = _module_weights(net)
    with pytest.raises(Exception, match="(?i)out of memory"):
        model.predict(x[:HUGE], verbose=0)
    if trained:
        with pytest.raises(Exception, match="(?i)out of memory"):
            model.evaluate(x[:HUGE], y[:HUGE], verbose=0)
        assert model.optimizer.iterations == iterations
        loss = model.evaluate(x, y, batch_size=8, verbose=0)
        pred = x @ before[0] + before[1]
        assert loss == pytest.approx(float(np.mean((pred - y) ** 2)), rel=1e-5)
    for got, exp in zip(_module_weights(net), before):
        np.testing.assert_array_equal(got, exp)
    np.testing.assert_allclose(model.predict(x, batch_size=8, verbose=0),
                               x @ before[0] + before[1], rtol=1e-5, atol=1e-6)
