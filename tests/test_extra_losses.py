"""kp.add_loss (issue 23): Keras's add_loss and regularisers in kompile's form, on both
backends. References: NumPy values and gradients computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace

import kompile as kp


def _module(backend, w, b, scale):
    """h = x @ w + b; adds 0.5 * mean(h^2) (activity) and scale * sum(w^2) (a weight
    regulariser, recorded by the inner layer on torch)."""
    if backend == "jax":
        import jax.numpy as jnp
        from flax import nnx

        class Regularised(nnx.Module):
            def __init__(self):
                self.w, self.b = nnx.Param(jnp.asarray(w)), nnx.Param(jnp.asarray(b))

            def __call__(self, x):
                h = x @ self.w + self.b
                kp.add_loss(self, 0.5 * jnp.mean(h ** 2))
                kp.add_loss(self, scale * jnp.sum(self.w[...] ** 2), name="kernel_reg")
                return h

        return Regularised()
    import torch

    class Inner(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(w))

        def forward(self, x):
            kp.add_loss(self, scale * (self.w ** 2).sum())
            return x @ self.w

    class TRegularised(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.b = Inner(), torch.nn.Parameter(torch.tensor(b))

        def forward(self, x):
            h = self.inner(x) + self.b
            kp.add_loss(self, 0.5 * (h ** 2).mean())
            return h

    return TRegularised()


def test_added_losses_join_the_loss_and_its_gradient(backend):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 2)).astype(np.float32)
    w = rng.normal(size=(3, 2)).astype(np.float32)
    b = rng.normal(size=(2,)).astype(np.float32)
    h = x @ w + b
    want = np.mean((h - y) ** 2) + 0.5 * np.mean(h ** 2) + 0.1 * np.sum(w ** 2)
    model = kp.Model(_module(backend, w, b, 0.1)).compile(kp.optimizers.SGD(0.1), "mse")
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(want), rel=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), h, rtol=1e-5, atol=1e-6)
    hist = model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # one SGD step
    assert hist.history["loss"][0] == pytest.approx(float(want), rel=1e-5)
    dh = 2 * (h - y) / h.size + h / h.size  # d/dh of both means
    gw, gb = x.T @ dh + 0.2 * w, dh.sum(0)
    got = [np.asarray(a.detach() if hasattr(a, "detach") else a) for a in model.get_weights()]
    got_w, got_b = (next(a for a in got if a.ndim == n) for n in (2, 1))
    np.testing.assert_allclose(got_w, w - 0.1 * gw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_b, b - 0.1 * gb, rtol=1e-5, atol=1e-6)


def test_add_loss_refuses_a_non_scalar_and_a_non_module(backend):
    with pytest.raises(TypeError, match="kp.add_loss: `module` must be"):
        kp.add_loss(object(), 1.0)
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2)).astype(np.float32)
    module = _module(backend, w, np.zeros(2, np.float32), 0.1)
    if backend == "jax":
        type(module).__call__ = lambda self, x: (kp.add_loss(self, x @ self.w), x @ self.w)[1]
    else:
        inner = module.inner
        type(inner).forward = lambda self, x: (kp.add_loss(self, x @ self.w), x @ self.w)[1]
    model = kp.Model(module).compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"an added loss is a scalar"):
        model.fit(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32), verbose=0)


def test_a_loss_named_for_a_0d_output_gets_a_specific_message(backend):
    if backend == "jax":
        import jax.numpy as jnp
        from flax import nnx

        class WithScalar(nnx.Module):
            def __init__(self):
                self.d = nnx.Linear(3, 2, rngs=nnx.Rngs(0))

            def __call__(self, x):
                h = self.d(x)
                return {"out": h, "kl": jnp.mean(h ** 2)}

        module = WithScalar()
    else:
        import torch

        class TWithScalar(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.d = torch.nn.Linear(3, 2)

            def forward(self, x):
                h = self.d(x)
                return {"out": h, "kl": (h ** 2).mean()}

        module = TWithScalar()
    model = kp.Model(module).compile("sgd", loss={"out": "mse", "kl": "mae"})
    with pytest.warns(UserWarning, match="'kl' \\(0-d .*float32\\) are not arrays with a batch"):
        with pytest.raises(ValueError, match="`loss` names the output 'kl', which the module "
                                             "returns without a batch axis.*kp.add_loss"):
            model.fit(np.ones((8, 3), np.float32), {"out": np.zeros((8, 2), np.float32)},
                      verbose=0)


def _stats_module(backend, w):
    """{"recon": x @ w[:, :2] @ w[:2].T ... }: a VAE-shaped output, recon and (mu, logvar)."""
    if backend == "jax":
        import jax.numpy as jnp
        from flax import nnx

        class Stats(nnx.Module):
            def __init__(self):
                self.w = nnx.Param(jnp.asarray(w))

            def __call__(self, x):
                h = x @ self.w
                return {"recon": h, "stats": (h[:, :2], h[:, 2:])}

        return Stats()
    import torch

    class TStats(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(w))

        def forward(self, x):
            h = x @ self.w
            return {"recon": h, "stats": (h[:, :2], h[:, 2:])}

    return TStats()


def test_a_loss_at_an_inner_node_needs_no_targets(backend):
    """A function of yours at an inner node (a VAE's KL over (mu, logvar)) receives None for
    the leaves without targets: no zero placeholder targets are needed."""
    seen = []

    def kl(y_true, y_pred):
        seen.append(y_true)
        mu, logvar = y_pred
        xp = array_namespace(logvar)  # one function for JAX and torch arrays
        return -0.5 * xp.sum(1 + logvar - mu ** 2 - xp.exp(logvar), axis=-1)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    w = rng.normal(size=(4, 4)).astype(np.float32) * 0.3
    model = kp.Model(_stats_module(backend, w)).compile(
        kp.optimizers.SGD(0.0), loss={"recon": "mse", "stats": kl})
    logs = model.evaluate(x, {"recon": x}, return_dict=True, verbose=0)
    h = x @ w
    mu, logvar = h[:, :2], h[:, 2:]
    want_kl = np.mean(-0.5 * (1 + logvar - mu ** 2 - np.exp(logvar)).sum(-1))
    assert logs["stats_loss"] == pytest.approx(float(want_kl), rel=1e-5)
    assert logs["loss"] == pytest.approx(float(np.mean((h - x) ** 2) + want_kl), rel=1e-5)
    assert all(y == (None, None) for y in seen)


def test_a_structure_loss_receives_all_outputs_and_targets(backend):
    """kp.losses.StructureLoss at the top: one call with the whole output structure and
    the targets, None where an output has none (a VAE's reconstruction + KL in one fn)."""
    seen = []

    def vae_loss(y_true, y_pred):
        seen.append(y_true)
        recon, (mu, logvar) = y_pred["recon"], y_pred["stats"]
        xp = array_namespace(recon)
        bce = xp.sum((recon - y_true["recon"]) ** 2, axis=-1)
        return bce - 0.5 * xp.sum(1 + logvar - mu ** 2 - xp.exp(logvar), axis=-1)

    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    w = rng.normal(size=(4, 4)).astype(np.float32) * 0.3
    model = kp.Model(_stats_module(backend, w)).compile(
        kp.optimizers.SGD(0.0), kp.losses.StructureLoss(vae_loss))
    logs = model.evaluate(x, {"recon": x}, return_dict=True, verbose=0)
    h = x @ w
    mu, logvar = h[:, :2], h[:, 2:]
    want = np.mean(((h - x) ** 2).sum(-1) - 0.5 * (1 + logvar - mu ** 2 - np.exp(logvar)).sum(-1))
    assert logs["loss"] == pytest.approx(float(want), rel=1e-5)
    assert all(set(y) == {"recon", "stats"} and y["stats"] == (None, None) for y in seen)
