"""No silent dtype changes (README "Data inputs"): what the module and a custom loss receive.

On torch a tensor keeps its dtype, NumPy int64 stays int64 and bool stays bool; NumPy
float64 becomes float32 on both backends (Keras's floatx). On JAX int64 becomes int32 only
because x64 is off; bool stays bool. References: plain torch on the same module.
"""

import numpy as np
import pytest

import kompile as kp


def _torch():
    return pytest.importorskip("torch")


def test_torch_module_receives_the_dtypes_given():
    torch = _torch()
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

        def forward(self, inputs):
            ids, mask, values, wide = inputs
            seen.append((ids.dtype, mask.dtype, values.dtype, wide.dtype))
            return self.w(values.float()) + ids[:, :1].float() * 0 + mask[:, :1].float() * 0

    x = (np.arange(8, dtype=np.int64).reshape(4, 2), np.ones((4, 2), bool),
         np.ones((4, 2), np.float64), torch.ones(4, 2, dtype=torch.float64))
    kp.Model(Probe()).predict(x, verbose=0)
    assert seen[-1] == (torch.int64, torch.bool, torch.float32, torch.float64)


def test_jax_module_receives_int32_and_bool():
    nnx = pytest.importorskip("flax.nnx")
    import jax.numpy as jnp

    seen = []

    class Probe(nnx.Module):
        def __init__(self):
            self.w = nnx.Linear(2, 1, rngs=nnx.Rngs(0))

        def __call__(self, inputs):
            ids, mask, values = inputs
            seen.append((ids.dtype, mask.dtype, values.dtype))
            return self.w(values) + jnp.where(mask[:, :1], 0.0, 1.0) * ids[:, :1] * 0

    x = (np.arange(8, dtype=np.int64).reshape(4, 2), np.ones((4, 2), bool),
         np.ones((4, 2), np.float64))
    kp.Model(Probe()).predict(x, verbose=0)
    assert seen[-1] == (jnp.int32, jnp.bool_, jnp.float32)


def test_bool_key_padding_mask_predictions_equal_plain_torch():
    torch = _torch()
    torch.manual_seed(0)

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, inputs):
            seq, pad = inputs  # pad: True where the position is padding (bool)
            out, _ = self.attn(seq, seq, seq, key_padding_mask=pad)
            return self.head(out.mean(1))

    module = Attention()
    r = np.random.default_rng(0)
    seq = r.normal(size=(16, 5, 8)).astype(np.float32)
    pad = np.zeros((16, 5), bool)
    pad[:, 3:] = True  # the last two positions are padding
    got = kp.Model(module).predict((seq, pad), batch_size=8, verbose=0)
    module.eval()
    with torch.no_grad():
        want = module((torch.from_numpy(seq), torch.from_numpy(pad))).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # a float mask would be added to the scores: the bool one must differ from that
    with torch.no_grad():
        wrong = module((torch.from_numpy(seq), torch.from_numpy(pad.astype(np.float32))))
    assert np.abs(wrong.numpy() - want).max() > 1e-3


# raw outputs on purpose
@pytest.mark.filterwarnings(
    "ignore:The loss 'sparse_categorical_crossentropy':kompile.KompileWarning")
def test_int64_labels_reach_a_torch_custom_loss():
    torch = _torch()
    import torch.nn.functional as F

    torch.manual_seed(0)
    module = torch.nn.Linear(4, 3)
    received = []

    def ce(y_true, y_pred):
        received.append(y_true.dtype)
        return F.cross_entropy(y_pred, y_true, reduction="none")  # needs int64 targets

    r = np.random.default_rng(0)
    x = r.normal(size=(32, 4)).astype(np.float32)
    y = r.integers(0, 3, size=32)  # int64
    model = kp.Model(module).compile(kp.optimizers.SGD(0.1), ce)
    with torch.no_grad():
        want = F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y)).item()
    assert model.evaluate(x, y, batch_size=32, verbose=0) == pytest.approx(want, rel=1e-6)
    hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert received and set(received) == {torch.int64}
    assert hist.history["loss"][1] < hist.history["loss"][0]
    # a DataLoader of int64 labels, and the built-in sparse crossentropy on int64 labels
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=8)
    model.fit(loader, epochs=1, verbose=0)
    builtin = kp.Model(module).compile("sgd", "sparse_categorical_crossentropy")
    with torch.no_grad():
        want = F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y)).item()
    # the built-in loss expects probabilities: compare with logits -> softmax
    got = kp.Model(torch.nn.Sequential(module, torch.nn.Softmax(-1))).compile(
        "sgd", "sparse_categorical_crossentropy").evaluate(x, y, batch_size=32, verbose=0)
    assert got == pytest.approx(want, rel=1e-5)
    assert builtin.evaluate(x, y.astype(np.int32), verbose=0) == pytest.approx(
        builtin.evaluate(x, y, verbose=0), rel=1e-6)


def test_bool_targets_become_float(backend):
    from . import models

    x = np.arange(8, dtype=np.float32).reshape(8, 1) / 8
    y = x[:, 0] > 0.5
    model = kp.Model(models.build(backend, "identity")).compile("sgd", "mse")
    assert model.evaluate(x, y, verbose=0) == pytest.approx(
        float(np.mean((x[:, 0] - y.astype(np.float32)) ** 2)), rel=1e-6)
