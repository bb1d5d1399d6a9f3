"""What trains: ``kp.Model(module, trainable=...)`` on Flax NNX, ``requires_grad`` on torch.

The frozen variables must come out of ``fit`` bit-identical (not moved by the gradient,
weight decay or the optimizer), the trained ones must match an independent reference (a
hand-written JAX step on the selected variables only), and ``summary``/``count_params``,
``get_weights``/``set_weights`` and ``save``/``load_model`` must see the split.
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")


class LoRANet(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.LoRALinear(4, 8, lora_rank=2, rngs=rngs)
        self.l2 = nnx.LoRALinear(8, 1, lora_rank=2, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.relu(self.l1(x)))


def _data(n=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x @ rng.normal(size=(4, 1))).astype(np.float32)


def _lora_b_nonzero(net):
    # nnx.LoRA starts with lora_b = 0: give it values so that every adapter gets gradients
    for layer in (net.l1, net.l2):
        layer.lora.lora_b[...] = jax.numpy.full(layer.lora.lora_b[...].shape, 0.1)
    return net


def test_lora_trains_only_the_adapters():
    net = _lora_b_nonzero(LoRANet(nnx.Rngs(0)))
    base = {k: np.array(v) for k, v in
            jax.tree.leaves_with_path(nnx.state(net, nnx.Not(nnx.LoRAParam)))}
    lora = [np.array(a) for a in jax.tree.leaves(nnx.state(net, nnx.LoRAParam))]
    model = kp.Model(net, trainable=nnx.LoRAParam)
    model.compile(kp.optimizers.AdamW(0.05, weight_decay=0.1), "mse")
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    after = dict(jax.tree.leaves_with_path(nnx.state(model.module, nnx.Not(nnx.LoRAParam))))
    for k, v in base.items():  # the base kernels and biases, bit for bit
        np.testing.assert_array_equal(np.asarray(after[k]), v)
    new = jax.tree.leaves(nnx.state(model.module, nnx.LoRAParam))
    assert all(not np.allclose(a, b) for a, b in zip(new, lora))


def test_lora_step_matches_a_hand_written_step():
    """One SGD step of kompile equals jax.grad over the LoRA parameters alone."""
    x, y = _data(8)
    net = _lora_b_nonzero(LoRANet(nnx.Rngs(1)))
    graphdef, lora, rest = nnx.split(net, nnx.LoRAParam, ...)

    def loss(lora_state):
        out = nnx.merge(graphdef, lora_state, rest)(x)
        return jax.numpy.mean((out - y) ** 2)

    grads = jax.grad(loss)(lora)
    expected = jax.tree.map(lambda p, g: p - 0.1 * g, lora, grads)
    model = kp.Model(net, trainable=nnx.LoRAParam).compile(kp.optimizers.SGD(0.1), "mse")
    model.train_on_batch(x, y)
    got = nnx.state(model.module, nnx.LoRAParam)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_default_trains_every_param():
    """Without `trainable` the base kernels train too (the filter is what freezes them)."""
    net = _lora_b_nonzero(LoRANet(nnx.Rngs(0)))
    kernel = np.array(net.l1.kernel[...])
    model = kp.Model(net).compile(kp.optimizers.SGD(0.1), "mse")
    model.fit(*_data(), batch_size=8, epochs=1, verbose=0)
    assert not np.allclose(np.asarray(model.module.l1.kernel[...]), kernel)


def test_counts_weights_and_files(tmp_path):
    net = LoRANet(nnx.Rngs(0))
    n_lora = sum(a.size for a in jax.tree.leaves(nnx.state(net, nnx.LoRAParam)))
    n_all = sum(a.size for a in jax.tree.leaves(nnx.state(net, nnx.Param)))
    model = kp.Model(net, trainable=nnx.LoRAParam).compile("adam", "mse")
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert f"Trainable params: {n_lora:,}" in text
    assert f"Non-trainable params: {n_all - n_lora:,}" in text
    assert model.count_params() == n_all
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    weights = model.get_weights()  # every nnx.Param, frozen ones included
    assert len(weights) == len(jax.tree.leaves(nnx.state(net, nnx.Param)))
    model.set_weights([w + 1 for w in weights])
    np.testing.assert_array_equal(model.get_weights()[0], weights[0] + 1)
    path = tmp_path / "m.safetensors"
    model.save(path)
    loaded = kp.load_model(path, LoRANet(nnx.Rngs(7)), trainable=nnx.LoRAParam)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)  # the optimizer state restores


def test_path_filters():
    """Any nnx filter: here a callable on the path, training only the second layer."""
    net = LoRANet(nnx.Rngs(0))
    first = np.array(net.l1.kernel[...])
    second = np.array(net.l2.kernel[...])
    model = kp.Model(net, trainable=lambda path, value: path[0] == "l2")
    model.compile(kp.optimizers.SGD(0.1), "mse").fit(*_data(), epochs=1, verbose=0)
    np.testing.assert_array_equal(np.asarray(model.module.l1.kernel[...]), first)
    assert not np.allclose(np.asarray(model.module.l2.kernel[...]), second)


def test_bad_filters():
    with pytest.raises(ValueError, match="selects none"):
        kp.Model(nnx.Linear(2, 1, rngs=nnx.Rngs(0)), trainable=nnx.LoRAParam)
    with pytest.raises(TypeError, match="nnx filter"):
        kp.Model(nnx.Linear(2, 1, rngs=nnx.Rngs(0)), trainable=3.5)


def test_torch_frozen_layers():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    net[0].requires_grad_(False)
    frozen = [p.detach().clone() for p in net[0].parameters()]
    head = [p.detach().clone() for p in net[2].parameters()]
    model = kp.Model(net).compile(kp.optimizers.AdamW(0.05, weight_decay=0.1), "mse")
    model.fit(*_data(), batch_size=8, epochs=2, verbose=0)
    for a, b in zip(net[0].parameters(), frozen):
        assert torch.equal(a, b)
    assert all(not torch.allclose(a, b) for a, b in zip(net[2].parameters(), head))
    lines = []
    model.summary(print_fn=lines.append)
    assert "Trainable params: 9" in lines[0] and "Non-trainable params: 40" in lines[0]
    with pytest.raises(TypeError, match="requires_grad"):
        kp.Model(net, trainable=lambda name: True)
