"""SPEC section 5: dtype policies and dynamic loss scaling (JAX; torch in its own tests)."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import kompile as kp


class Scalar(nnx.Module):
    """output = w * x with one weight, so dloss/dw = x for the loss ``sum(y_pred)``."""

    def __init__(self, w=1.0):
        self.w = nnx.Param(jnp.full((1, 1), w, jnp.float32))

    def __call__(self, x):
        return x @ self.w


def pred_sum(y_true, y_pred):
    return jnp.sum(y_pred, axis=-1)


def _trace(xs, **ls_kwargs):
    """(scale, weight) after each step of SGD(0.1) under loss scaling, batch size 1."""
    opt = kp.optimizers.LossScaleOptimizer(kp.optimizers.SGD(0.1), **ls_kwargs)
    model = kp.Model(Scalar()).compile(opt, pred_sum)
    trace = []

    class Record(kp.Callback):
        def on_train_batch_end(self, batch, logs=None):
            trace.append((self.model.optimizer.dynamic_scale,
                          float(self.model.get_weights()[0][0, 0])))

    x = np.asarray(xs, np.float32)[:, None]
    model.fit(x, np.zeros_like(x), batch_size=1, shuffle=False, callbacks=[Record()], verbose=0)
    return model, trace


# inf in x on purpose
@pytest.mark.filterwarnings(
    "ignore:`x` holds .* non-finite value:kompile.KompileWarning")
def test_spec_trace():
    _, trace = _trace([1, 1, np.inf, 1, 1, 1], initial_scale=4, dynamic_growth_steps=2)
    expected = [(4, 0.9), (8, 0.8), (4, 0.8), (4, 0.7), (8, 0.6), (8, 0.5)]
    np.testing.assert_allclose(trace, expected, rtol=1e-6)


# inf in x on purpose
@pytest.mark.filterwarnings(
    "ignore:`x` holds .* non-finite value:kompile.KompileWarning")
def test_scale_halves_without_floor_and_doubles():
    _, trace = _trace([np.inf] * 4, initial_scale=400)
    assert [s for s, _ in trace] == [200, 100, 50, 25]
    assert all(w == 1.0 for _, w in trace)
    _, trace = _trace([1.0] * 8, initial_scale=2, dynamic_growth_steps=2)
    assert trace[-1][0] == 32


# inf in x on purpose
@pytest.mark.filterwarnings(
    "ignore:`x` holds .* non-finite value:kompile.KompileWarning")
def test_non_finite_step_changes_neither_weights_nor_step_count():
    model, trace = _trace([1, np.nan, 1], initial_scale=8)
    assert trace[1][1] == trace[0][1]
    assert model._backend.iterations == 2  # the inner optimizer took two steps, not three


def test_policies_and_wrapping():
    assert kp.Model(Scalar()).dtype_policy.name == "float32"
    mixed = kp.Model(Scalar(), dtype_policy="mixed_float16").compile("sgd", "mse")
    assert isinstance(mixed.optimizer, kp.optimizers.LossScaleOptimizer)
    assert mixed.optimizer.dynamic_scale == 2.0 ** 15
    assert not isinstance(kp.Model(Scalar(), dtype_policy="mixed_bfloat16").compile(
        "sgd", "mse").optimizer, kp.optimizers.LossScaleOptimizer)
    assert not isinstance(kp.Model(Scalar(), dtype_policy="mixed_float16").compile(
        "sgd", "mse", auto_scale_loss=False).optimizer, kp.optimizers.LossScaleOptimizer)
    wrapped = kp.optimizers.LossScaleOptimizer("sgd", initial_scale=8)
    model = kp.Model(Scalar(), dtype_policy="mixed_float16").compile(wrapped, "mse")
    assert model.optimizer is wrapped  # already wrapped: not wrapped twice
    kp.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert kp.Model(Scalar()).dtype_policy.compute_dtype == "bfloat16"
    finally:
        kp.mixed_precision.set_global_policy("float32")
    with pytest.raises(ValueError, match="Unknown dtype policy 'mixed_float61'.*mixed_float16"):
        kp.Model(Scalar(), dtype_policy="mixed_float61")


def test_mixed_forward_runs_in_low_precision_with_float32_variables():
    seen = []

    class Probe(Scalar):
        def __call__(self, x):
            seen.append((x.dtype, self.w[...].dtype))
            return x @ self.w

    x = np.ones((4, 1), np.float32)
    model = kp.Model(Probe(), dtype_policy="mixed_bfloat16").compile("sgd", "mse")
    model.fit(x, x, verbose=0)
    assert (jnp.bfloat16, jnp.bfloat16) in seen
    assert model.get_weights()[0].dtype == np.float32
    assert model.module.w[...].dtype == jnp.float32


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int32)


class DigitsMLP(nnx.Module):
    def __init__(self):
        self.l1 = nnx.Linear(64, 64, rngs=nnx.Rngs(0))
        self.l2 = nnx.Linear(64, 10, rngs=nnx.Rngs(1))

    def __call__(self, x):
        return nnx.softmax(self.l2(nnx.relu(self.l1(x))))


def test_float16_first_step_overflows_then_converges():
    x, y = _digits()
    scales = []

    class Record(kp.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if len(scales) < 3:
                scales.append(self.model.optimizer.dynamic_scale)

    loss = kp.losses.SparseCategoricalCrossentropy(reduction="sum")  # large gradients
    mixed = kp.Model(DigitsMLP(), dtype_policy="mixed_float16").compile(
        "adam", loss, metrics=["accuracy"])
    hist = mixed.fit(x, y, batch_size=64, epochs=6, callbacks=[Record()], verbose=0)
    assert scales[0] < 2.0 ** 15  # the first step overflowed in float16 and was skipped
    ref = kp.Model(DigitsMLP()).compile("adam", loss, metrics=["accuracy"])
    ref_hist = ref.fit(x, y, batch_size=64, epochs=6, verbose=0)
    assert hist.history["accuracy"][-1] > 0.9
    assert abs(hist.history["accuracy"][-1] - ref_hist.history["accuracy"][-1]) < 0.03
    assert np.isfinite(hist.history["loss"]).all()


class Tiny(nnx.Module):
    """Gradients of about 1e-8: below float16's smallest subnormal (6e-8)."""

    def __init__(self):
        self.w = nnx.Param(jnp.ones((1, 1), jnp.float32))

    def __call__(self, x):
        return (x * 1e-4) @ self.w * 1e-4


def test_underflowing_gradients_train_only_with_scaling():
    x = np.ones((8, 1), np.float32)
    y = np.zeros((8, 1), np.float32)
    moved = {}
    for scale in (False, True):
        model = kp.Model(Tiny(), dtype_policy="mixed_float16").compile(
            kp.optimizers.SGD(1e6), pred_sum, auto_scale_loss=scale)
        model.fit(x, y, batch_size=8, verbose=0)
        moved[scale] = 1.0 - float(model.get_weights()[0][0, 0])
    assert moved[False] == 0.0  # the float16 gradient underflowed to zero
    assert moved[True] == pytest.approx(0.01, rel=0.05)  # 1e6 * (true gradient 1e-8)


def test_logs_show_the_unscaled_loss():
    x = np.arange(1, 9, dtype=np.float32)[:, None]
    losses = []
    for opt in (kp.optimizers.SGD(0.0),
                kp.optimizers.LossScaleOptimizer(kp.optimizers.SGD(0.0), initial_scale=1024)):
        model = kp.Model(Scalar(), dtype_policy="mixed_float16").compile(
            opt, pred_sum, auto_scale_loss=False)
        losses.append(model.fit(x, x, batch_size=4, verbose=0).history["loss"][0])
    assert losses[1] == pytest.approx(losses[0]) == pytest.approx(4.5, rel=1e-3)
