"""JAX: a module that declares ``rngs`` but draws nothing runs the plain path (no key split per
step, the same numbers), and a module that draws keeps fresh keys per step, split from the seed
exactly as a hand-written loop splits them."""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
optax = pytest.importorskip("optax")

X = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)
Y = X[:, :2].sum(1, keepdims=True)


class Plain(nnx.Module):
    def __init__(self):
        r = nnx.Rngs(3)
        self.l1, self.l2 = nnx.Linear(6, 8, rngs=r), nnx.Linear(8, 1, rngs=r)

    def __call__(self, x):
        return self.l2(nnx.relu(self.l1(x)))


class DeclaresRngs(Plain):
    def __call__(self, x, rngs=None):
        return self.l2(nnx.relu(self.l1(x)))


class Drops(Plain):
    def __init__(self):
        super().__init__()
        self.drop = nnx.Dropout(0.5)

    def __call__(self, x, rngs=None):
        return self.l2(self.drop(nnx.relu(self.l1(x)), rngs=rngs))


def _fit(module, seed=None, spe=1):
    model = kp.Model(module, seed=seed).compile(kp.optimizers.SGD(0.1), "mse",
                                                steps_per_execution=spe)
    model.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    return model


def test_declared_but_unused_rngs_equals_the_module_without_them():
    ref = _fit(Plain()).get_weights()
    for spe in (1, 4):
        model = _fit(DeclaresRngs(), seed=7, spe=spe)
        assert not model._backend._draw_cache[(id(model._backend.gd_train), True)]
        for got, want in zip(model.get_weights(), ref):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_sequential_draws_nothing_and_trains_like_the_class():
    r = nnx.Rngs(3)
    seq = nnx.Sequential(nnx.Linear(6, 8, rngs=r), nnx.relu, nnx.Linear(8, 1, rngs=r))
    model = _fit(seq, seed=0, spe=4)
    assert not model._backend._draw_cache[(id(model._backend.gd_train), True)]
    for got, want in zip(model.get_weights(), _fit(Plain(), spe=4).get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def _hand_dropout_run(seed, steps):
    """The reference: a hand-written loop splitting the seed's key once per step."""
    module = Drops()
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    tx = optax.sgd(0.1)
    opt = tx.init(params)
    key = jax.random.key(seed)

    def loss(p, x, y, k):
        m = nnx.merge(graphdef, p, rest, copy=True)
        return ((m(x, rngs=nnx.Rngs(k)) - y) ** 2).mean()

    for i in range(steps):
        key, sub = jax.random.split(key)
        sl = slice((i % 4) * 8, (i % 4 + 1) * 8)
        grads = jax.grad(loss)(params, X[sl], Y[sl], sub)
        updates, opt = tx.update(grads, opt, params)
        params = optax.apply_updates(params, updates)
    nnx.update(module, params)
    return [np.asarray(module.l1.kernel[...]), np.asarray(module.l2.kernel[...])]


@pytest.mark.parametrize("spe", [1, 4])
def test_dropout_keys_are_fresh_per_step_and_follow_the_seed(spe):
    model = _fit(Drops(), seed=11, spe=spe)
    assert model._backend._draw_cache[(id(model._backend.gd_train), True)]
    want = _hand_dropout_run(11, 8)
    got = [np.asarray(model.module.l1.kernel[...]), np.asarray(model.module.l2.kernel[...])]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
