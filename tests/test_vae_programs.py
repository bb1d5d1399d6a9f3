"""Variational autoencoders as written (issue 23), with the KL term through kp.add_loss.

Sources:
- google/flax examples/nnx_toy_examples/05_vae.py (Encoder, Decoder, VAE copied; the one
  change: the KL term, which the program stores as a ``Loss`` Variable created in
  ``__call__`` and pops in its train step, is added with ``kp.add_loss`` at the weight
  its train step gives it, 0.1). Data: synthetic binarised 28x28 images instead of MNIST.
- pytorch/examples vae/main.py (the VAE module copied; the one change: its loss_function's
  KLD term is added in ``forward`` with ``kp.add_loss``, and the BCE term, summed over the
  batch as the program does, is compile's loss).

References: the programs' own training loops (nnx.jit + optax; torch.optim) on the same
batches from the same initial weights; their per-epoch mean losses must equal kompile's.
"""

from __future__ import annotations

import typing as tp

import numpy as np
import pytest

import kompile as kp

jax = pytest.importorskip("jax")
jnp = jax.numpy
nnx = pytest.importorskip("flax.nnx")
optax = pytest.importorskip("optax")


def _images(n=256, seed=0):
    """Binarised blobs on 28x28 (MNIST's shape and value range)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    cy, cx = rng.uniform(8, 20, (2, n, 1, 1))
    r = rng.uniform(3, 8, (n, 1, 1))
    return (((yy - cy) ** 2 + (xx - cx) ** 2) < r ** 2).astype(np.float32)


# ----------------------------------------------------------------- flax 05_vae.py
class Loss(nnx.Variable):
    pass


def _flax_classes(with_kompile: bool):
    class Encoder(nnx.Module):
        def __init__(self, din: int, dmid: int, dout: int, *, rngs: nnx.Rngs):
            self.linear1 = nnx.Linear(din, dmid, rngs=rngs)
            self.linear_mean = nnx.Linear(dmid, dout, rngs=rngs)
            self.linear_std = nnx.Linear(dmid, dout, rngs=rngs)
            self.rngs = rngs

        def __call__(self, x: jax.Array) -> jax.Array:
            x = x.reshape((x.shape[0], -1))  # flatten
            x = self.linear1(x)
            x = jax.nn.relu(x)

            mean = self.linear_mean(x)
            std = jnp.exp(self.linear_std(x))

            kl = jnp.mean(
                0.5 * jnp.mean(-jnp.log(std**2) - 1.0 + std**2 + mean**2, axis=-1)
            )
            if with_kompile:
                kp.add_loss(self, 0.1 * kl)  # the program's loss_fn weighs it by 0.1
            else:
                self.kl_loss = Loss(kl)
            key = self.rngs.noise()
            z = mean + std * jax.random.normal(key, mean.shape)
            return z

    class Decoder(nnx.Module):
        def __init__(self, din: int, dmid: int, dout: int, *, rngs: nnx.Rngs):
            self.linear1 = nnx.Linear(din, dmid, rngs=rngs)
            self.linear2 = nnx.Linear(dmid, dout, rngs=rngs)

        def __call__(self, z: jax.Array) -> jax.Array:
            z = self.linear1(z)
            z = jax.nn.relu(z)
            logits = self.linear2(z)
            return logits

    class VAE(nnx.Module):
        def __init__(self, din: int, hidden_size: int, latent_size: int,
                     output_shape: tp.Sequence[int], *, rngs: nnx.Rngs):
            self.output_shape = output_shape
            self.encoder = Encoder(din, hidden_size, latent_size, rngs=rngs)
            self.decoder = Decoder(
                latent_size, hidden_size, int(np.prod(output_shape)), rngs=rngs
            )

        def __call__(self, x: jax.Array) -> jax.Array:
            z = self.encoder(x)
            logits = self.decoder(z)
            logits = jnp.reshape(logits, (-1, *self.output_shape))
            return logits

    return VAE


def _vae(with_kompile):
    return _flax_classes(with_kompile)(din=784, hidden_size=64, latent_size=8,
                                       output_shape=(28, 28), rngs=nnx.Rngs(0, noise=1))


def _flax_reference(x, batch_size, epochs):
    """05_vae.py's train_step on kompile's batches (in order)."""
    model = _vae(False)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x):
        def loss_fn(model):
            logits = model(x)
            losses = nnx.pop(model, Loss)
            kl_loss = sum(jax.tree_util.tree_leaves(losses), 0.0)
            reconstruction_loss = jnp.mean(
                optax.sigmoid_binary_cross_entropy(logits, x)
            )
            return reconstruction_loss + 0.1 * kl_loss

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    means = []
    for _ in range(epochs):
        losses = [train_step(model, optimizer, x[s:s + batch_size])
                  for s in range(0, len(x), batch_size)]
        means.append(float(np.mean(losses)))
    return means


def test_flax_vae_trains_as_its_own_loop():
    x = _images()
    model = kp.Model(_vae(True)).compile(
        optax.adam(1e-3), kp.losses.BinaryCrossentropy(from_logits=True))
    hist = model.fit(x, x, batch_size=32, epochs=2, shuffle=False, verbose=0)
    want = _flax_reference(x, 32, 2)
    np.testing.assert_allclose(hist.history["loss"], want, rtol=2e-5)
    assert model.predict(x[:5], verbose=0).shape == (5, 28, 28)


def test_the_programs_own_loss_variable_is_named_in_an_error():
    """As written (a Loss Variable created in __call__), the program's module is refused
    with the variable's name, instead of its value landing in another variable."""
    model = kp.Model(_vae(False)).compile(optax.adam(1e-3), kp.losses.BinaryCrossentropy(
        from_logits=True))
    with pytest.raises(ValueError, match=r"\['encoder/kl_loss'\].*kp.add_loss|"
                                         r"\['encoder/kl_loss'\]"):
        model.fit(_images(64), _images(64), batch_size=32, epochs=1, verbose=0)


# ----------------------------------------------------------- pytorch/examples vae
def test_pytorch_vae_trains_as_its_own_loop():
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.nn import functional as F

    class VAE(nn.Module):
        def __init__(self, add_kld):
            super().__init__()
            self.add_kld = add_kld
            self.fc1 = nn.Linear(784, 400)
            self.fc21 = nn.Linear(400, 20)
            self.fc22 = nn.Linear(400, 20)
            self.fc3 = nn.Linear(20, 400)
            self.fc4 = nn.Linear(400, 784)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            eps = torch.randn_like(std)
            return mu + eps * std

        def decode(self, z):
            h3 = F.relu(self.fc3(z))
            return torch.sigmoid(self.fc4(h3))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 784))
            z = self.reparameterize(mu, logvar)
            if self.add_kld:  # the KLD term of the program's loss_function
                kp.add_loss(self, -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()))
            return self.decode(z), mu, logvar

    x = _images(128).reshape(128, 784)
    torch.manual_seed(0)
    ref = VAE(False)
    module = VAE(True)
    module.load_state_dict(ref.state_dict())
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3)

    def loss_function(recon_x, x, mu, logvar):  # the program's, as written
        BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')
        KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return BCE + KLD

    def bce_sum(y_true, y_pred):  # compile's loss: the program's BCE, per sample
        return F.binary_cross_entropy(y_pred, y_true, reduction="none").sum(-1)

    model = kp.Model(module, output_names=["recon", "mu", "logvar"]).compile(
        torch.optim.Adam(module.parameters(), lr=1e-3),
        loss={"recon": kp.losses.LossFunctionWrapper(bce_sum, reduction="sum")})
    torch.manual_seed(1)
    hist = model.fit(x, {"recon": x}, batch_size=32, epochs=2, shuffle=False, verbose=0)
    torch.manual_seed(1)
    means = []
    for _ in range(2):
        losses = []
        for s in range(0, 128, 32):
            data = torch.as_tensor(x[s:s + 32])
            opt.zero_grad()
            recon, mu, logvar = ref(data)
            loss = loss_function(recon, data, mu, logvar)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        means.append(float(np.mean(losses)))
    np.testing.assert_allclose(hist.history["loss"], means, rtol=1e-5)
