"""A compiled JAX step that fails at run time after taking (donating) its state loses that
state; the model goes back to the last good state (a host copy taken at the start of the
call and at each epoch end, or weights a callback read later) with its optimizer state.

The failure is a host callback inside the module raising on a chosen call, which XLA reports
as a runtime error of the step. References: the module's weights read as NumPy before the
call (or when a callback read the module), and a direct call of the module.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import kompile as kp

nnx = pytest.importorskip("flax.nnx")


COUNTER = {"calls": 0, "fail_at": 0}  # outside the module (a traced module is immutable)


def _count(x):
    COUNTER["calls"] += 1
    if COUNTER["calls"] == COUNTER["fail_at"]:
        raise RuntimeError("simulated device failure")


class Failing(nnx.Module):
    """A linear layer whose call raises on the ``fail_at``-th execution (0: never)."""

    def __init__(self):
        self.lin = nnx.Linear(3, 1, rngs=nnx.Rngs(0))

    def __call__(self, x):
        jax.debug.callback(_count, x)
        return self.lin(x)


def _weights(module):
    return [np.array(module.lin.kernel.get_value()), np.array(module.lin.bias.get_value())]


def _data():
    r = np.random.default_rng(0)
    return r.normal(size=(64, 3)).astype(np.float32), r.normal(size=(64, 1)).astype(np.float32)


def _arm(module, after):
    COUNTER.update(calls=0, fail_at=after)


@pytest.mark.parametrize("spe", [1, None])
def test_a_failed_training_step_leaves_the_weights_of_the_call_start(spe):
    x, y = _data()
    net = Failing()
    model = kp.Model(net).compile(kp.optimizers.SGD(0.1), "mse", steps_per_execution=spe)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # trains (and compiles) first
    start = _weights(net)
    _arm(net, 4)
    with pytest.warns(UserWarning, match="back to its state at the start of this fit call"):
        with pytest.raises(Exception, match="simulated device failure"):
            model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for got, want in zip(_weights(net), start):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(model.predict(x, verbose=0), x @ start[0] + start[1], rtol=1e-5,
                               atol=1e-6)
    _arm(net, 0)
    loss = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss) and not np.array_equal(_weights(net)[0], start[0])
    assert int(model._backend.iterations) == 16  # kept through the failure, then one epoch


def test_weights_a_callback_read_survive_a_later_failure():
    x, y = _data()
    net = Failing()
    model = kp.Model(net).compile(kp.optimizers.SGD(0.1), "mse", steps_per_execution=1)
    model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)
    seen = []

    class Read(kp.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                seen.append(_weights(self.model.module))

    _arm(net, 6)  # the 6th execution: the 5th batch of the call
    with pytest.warns(UserWarning, match="weights a callback read later"):
        with pytest.raises(Exception, match="simulated device failure"):
            model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Read()])
    for got, want in zip(_weights(net), seen[0]):
        np.testing.assert_array_equal(got, want)


def test_a_failed_evaluation_step_changes_nothing():
    x, y = _data()
    net = Failing()
    model = kp.Model(net).compile(kp.optimizers.SGD(0.1), "mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    before, iterations = _weights(net), int(model._backend.iterations)
    _arm(net, 3)
    with pytest.raises(Exception, match="simulated device failure"):
        model.evaluate(x, y, batch_size=8, verbose=0)
    _arm(net, 0)
    loss = model.evaluate(x, y, batch_size=8, verbose=0)
    pred = x @ before[0] + before[1]
    assert loss == pytest.approx(float(np.mean((pred - y) ** 2)), rel=1e-5)
    assert int(model._backend.iterations) == iterations
    for got, want in zip(_weights(net), before):
        np.testing.assert_array_equal(got, want)
