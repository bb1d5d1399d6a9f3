"""Keras's remaining optimizer options: exclude_from_weight_decay (sgd_test.py::
test_weight_decay translated), a learning rate given as a function of no argument, and
Muon (optax's and torch's; Lamb's parity with Keras is in test_optimizers.py)."""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp
from kompile import optimizers

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
nnx = pytest.importorskip("flax.nnx")
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402


def step_optax(spec, names, values, grads):
    spec._set_variable_names(names)
    tx = spec.build_optax()
    params = [jnp.asarray(v, jnp.float32) for v in values]
    updates, _ = tx.update([jnp.asarray(g, jnp.float32) for g in grads], tx.init(params), params)
    return [float(p) for p in optax.apply_updates(params, updates)]


def step_torch(spec, names, values, grads):
    params = [torch.nn.Parameter(torch.tensor(float(v))) for v in values]
    spec._set_variable_names(names, [id(p) for p in params])
    opt = spec.build_torch(params)
    for p, g in zip(params, grads):
        p.grad = torch.tensor(float(g))
    opt.step()
    return [float(p) for p in params]


@pytest.mark.parametrize("step", [step_optax, step_torch])
def test_keras_weight_decay_exclusion(step):
    """sgd_test.py::test_weight_decay: 2.0 decays to 1.9760959 after two steps... here one
    step each: var1 decays (2 - 2 * 0.004), the excluded one stays 2.0."""
    spec = optimizers.SGD(learning_rate=1.0, weight_decay=0.004)
    spec.exclude_from_weight_decay(var_names=["exclude"])
    var1, var2 = step(spec, ["dense/kernel", "dense/exclude"], [2.0, 2.0], [0.0, 0.0])
    assert var1 == pytest.approx(2.0 - 2.0 * 0.004, abs=1e-7)
    assert var2 == 2.0


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_exclusion_in_fit(backend):
    """AdamW with bias excluded: after one step the bias is plain Adam's, the kernel
    AdamW's."""
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)

    def run(spec):
        if backend == "jax":
            module = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
        else:
            torch.manual_seed(0)
            module = torch.nn.Linear(3, 1)
        model = kp.Model(module).compile(spec, "mse")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # one step: same gradients
        return {a.ndim: a for a in model.get_weights()}

    excluded = kp.optimizers.AdamW(0.1, weight_decay=0.5)
    excluded.exclude_from_weight_decay(var_names=["bias"])
    got = run(excluded)
    no_decay = run(kp.optimizers.Adam(0.1))
    decay_all = run(kp.optimizers.AdamW(0.1, weight_decay=0.5))
    np.testing.assert_allclose(got[1], no_decay[1], rtol=1e-6)  # bias: no decay
    np.testing.assert_allclose(got[2], decay_all[2], rtol=1e-6)  # kernel: decayed
    assert not np.allclose(got[2], no_decay[2])


@pytest.mark.parametrize("step", [step_optax, step_torch])
def test_no_argument_learning_rate(step):
    """Keras's convention: SGD(learning_rate=lambda: 0.1) is called with no argument."""
    spec = optimizers.SGD(learning_rate=lambda: 0.1)
    assert step(spec, ["w"], [1.0], [2.0]) == pytest.approx([0.8])
    assert step(optimizers.SGD(learning_rate=lambda s: 0.1 / (s + 1)), ["w"], [1.0],
                [2.0]) == pytest.approx([0.8])


def test_muon_trains_on_both_backends():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = x @ rng.normal(size=(4, 4)).astype(np.float32)
    jax_model = kp.Model(nnx.Linear(4, 4, rngs=nnx.Rngs(0))).compile(
        kp.optimizers.Muon(0.05), "mse")
    torch_model = kp.Model(torch.nn.Linear(4, 4, bias=False)).compile("muon", "mse")
    for model in (jax_model, torch_model):
        first = model.evaluate(x, y, verbose=0)
        model.fit(x, y, batch_size=8, epochs=5, verbose=0)
        assert model.evaluate(x, y, verbose=0) < first
    with pytest.raises(ValueError, match="2-D weights only"):
        kp.Model(torch.nn.Linear(4, 4)).compile("muon", "mse").fit(x, y, verbose=0)


def test_lamb_refused_on_torch_clearly():
    with pytest.raises(NotImplementedError, match="Lamb has no torch.optim counterpart"):
        kp.Model(torch.nn.Linear(4, 1)).compile("lamb", "mse").fit(
            np.ones((4, 4), np.float32), np.ones((4, 1), np.float32), verbose=0)
