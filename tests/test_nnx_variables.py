"""NNX variables created or changed while the module is called (issue 23): the step state
is lined up with the module's variables by path, never by position.

References: the same Flax module called directly (Flax's own BatchNorm update), and
hand-computed values.
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp

pytestmark = pytest.mark.filterwarnings("ignore:Using .Module.sow:DeprecationWarning")

jnp = pytest.importorskip("jax.numpy")
nnx = pytest.importorskip("flax.nnx")


class SowsBeforeBatchNorm(nnx.Module):
    """Sows an intermediate whose path ("act") sorts before the BatchNorm's ("bn")."""

    def __init__(self):
        self.lin = nnx.Linear(3, 4, rngs=nnx.Rngs(0))
        self.bn = nnx.BatchNorm(4, rngs=nnx.Rngs(0))
        self.out = nnx.Linear(4, 1, rngs=nnx.Rngs(1))

    def __call__(self, x, training=False):
        h = self.lin(x)
        self.sow(nnx.Intermediate, "act", h.sum() * 0 + 123.0)
        h = self.bn(h, use_running_average=not training)
        return self.out(h)


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 3)).astype(np.float32), np.zeros((16, 1), np.float32)


@pytest.mark.parametrize("precall", [False, True])
def test_sown_values_never_land_in_batchnorm_statistics(precall):
    x, y = _data()
    module, ref = SowsBeforeBatchNorm(), SowsBeforeBatchNorm()
    if precall:  # the user called the module once: it holds a sown value before fit
        module(jnp.asarray(x[:2]))
        ref(jnp.asarray(x[:2]))
    model = kp.Model(module).compile(kp.optimizers.SGD(0.0), "mse")
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for _ in range(2):  # Flax's own update of the running statistics, batch by batch
        for s in (slice(0, 8), slice(8, 16)):
            ref(jnp.asarray(x[s]), training=True)
    np.testing.assert_allclose(model.module.bn.mean[...], ref.bn.mean[...], rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(model.module.bn.var[...], ref.bn.var[...], rtol=1e-5)
    ref_out = np.asarray(ref(jnp.asarray(x)))
    np.testing.assert_allclose(model.predict(x, verbose=0), ref_out, rtol=1e-5, atol=1e-6)
    want = float(np.mean(ref_out ** 2))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(want, rel=1e-5)
    # the sown values are not carried: the module holds none from kompile's steps
    held = nnx.state(model.module, nnx.Intermediate)
    assert len(held) == (1 if precall else 0)


class CreatesAVariable(nnx.Module):
    def __init__(self):
        self.lin = nnx.Linear(3, 1, rngs=nnx.Rngs(0))

    def __call__(self, x):
        self.calls = nnx.BatchStat(jnp.zeros(()))  # created during the call
        return self.lin(x)


def test_a_variable_created_during_the_call_is_an_error_naming_it():
    x, y = _data()
    model = kp.Model(CreatesAVariable()).compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"created the variable\(s\) \['calls'\] while it was "
                                         r"called .*create them in __init__"):
        model.fit(x, y, epochs=1, verbose=0)
    weights = [np.array(w) for w in model.get_weights()]
    np.testing.assert_array_equal(weights[1], np.asarray(CreatesAVariable().lin.kernel[...]))


class Recurrent(nnx.Module):
    def __init__(self):
        self.rnn = nnx.RNN(nnx.LSTMCell(3, 4, rngs=nnx.Rngs(0)))
        self.out = nnx.Linear(4, 1, rngs=nnx.Rngs(1))

    def __call__(self, x):
        return self.out(self.rnn(x)[:, -1])


def test_summary_never_changes_the_module():
    """nnx.tabulate fails on nnx.RNN and leaves its method wrappers on the classes; kompile
    puts them back: the next fit trains exactly as a model that was never summarised."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5, 3)).astype(np.float32)
    y = rng.normal(size=(8, 1)).astype(np.float32)
    before = {cls: dict(vars(cls)) for cls in (Recurrent, nnx.RNN, nnx.LSTMCell, nnx.Linear)}
    lines = []
    model = kp.Model(Recurrent()).compile("sgd", "mse")
    model.summary(x, print_fn=lines.append)
    assert "Total params: 133" in lines[-1]  # 4 gates x (3*4 + 4*4 + 4) + (4 + 1)
    for cls, attrs in before.items():
        assert dict(vars(cls)) == attrs, cls
    plain = kp.Model(Recurrent()).compile("sgd", "mse")
    for m in (model, plain):
        m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
