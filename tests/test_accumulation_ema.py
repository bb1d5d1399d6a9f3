"""Gradient accumulation and weight averaging against Keras 3 (keras/src/optimizers/
optimizer_test.py translated, and Keras's own fit on the same data), on both backends."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import kompile as kp  # noqa: E402
from kompile import optimizers, schedules  # noqa: E402

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
nnx = pytest.importorskip("flax.nnx")
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 3)).astype(np.float32)
Y = (X @ RNG.normal(size=(3, 1)) + 0.1).astype(np.float32)
KERNEL = RNG.normal(size=(3, 1)).astype(np.float32)
BIAS = np.array([0.5], np.float32)


def linear(backend):
    if backend == "jax":
        lin = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
        lin.kernel[...] = jnp.asarray(KERNEL)
        lin.bias[...] = jnp.asarray(BIAS)
        return lin
    lin = torch.nn.Linear(3, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(KERNEL.T))
        lin.bias.copy_(torch.tensor(BIAS))
    return lin


def weights(model):
    w = model.get_weights()  # as Keras's [kernel (3, 1), bias (1,)]
    return [w[0].T, w[1]] if model.backend == "torch" else sorted(w, key=lambda a: -a.ndim)


def keras_fit(name, kwargs, batch_size, epochs):
    import keras

    kwargs = dict(kwargs)
    lr = kwargs.get("learning_rate")
    if isinstance(lr, schedules.LearningRateSchedule):
        kwargs["learning_rate"] = getattr(keras.optimizers.schedules, type(lr).__name__)(
            **lr.get_config())
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.set_weights([KERNEL, BIAS])
    opt = type(keras.optimizers.get(name))(**kwargs)
    model.compile(opt, "mse")
    model.fit(X, Y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return model.get_weights(), int(opt.iterations), float(opt.learning_rate)


KERAS_CACHE: dict = {}
CASES = [
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "gradient_accumulation_steps": 3}),
    ("adam", {"learning_rate": 0.05, "gradient_accumulation_steps": 2, "weight_decay": 0.1,
              "clipnorm": 0.5}),
    ("adam", {"learning_rate": schedules.ExponentialDecay(0.1, 2, 0.5),
              "gradient_accumulation_steps": 3}),
    ("adamw", {"learning_rate": 0.05, "use_ema": True, "ema_momentum": 0.8}),
    ("sgd", {"learning_rate": 0.1, "use_ema": True, "ema_momentum": 0.5,
             "ema_overwrite_frequency": 2, "gradient_accumulation_steps": 2}),
]


@pytest.mark.keras
@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0] + "-" + "-".join(c[1]))
def test_fit_matches_keras(backend, case):
    name, kwargs = case
    key = repr(case)
    if key not in KERAS_CACHE:  # one Keras run serves both backends
        KERAS_CACHE[key] = keras_fit(name, kwargs, batch_size=4, epochs=2)
    want, iterations, lr = KERAS_CACHE[key]
    spec = optimizers.OPTIMIZERS.get(name)(**kwargs)
    model = kp.Model(linear(backend)).compile(spec, "mse")
    model.fit(X, Y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(weights(model), want):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert model.optimizer.iterations == iterations  # updates, as Keras counts them


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("spe", [1, 3])
def test_accumulation_equals_one_big_batch(backend, spe):
    """N equal batches with a mean loss = one step on their concatenation; fused calls
    (steps_per_execution) included."""
    big = kp.Model(linear(backend)).compile(kp.optimizers.Adam(0.05), "mse")
    big.fit(X, Y, batch_size=12, epochs=2, shuffle=False, verbose=0)
    acc = kp.Model(linear(backend)).compile(
        kp.optimizers.Adam(0.05, gradient_accumulation_steps=3), "mse",
        steps_per_execution=spe)
    acc.fit(X, Y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(acc.get_weights(), big.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert acc.optimizer.iterations == big.optimizer.iterations == 4


def test_keras_accumulation_unit_test_on_optax():
    """optimizer_test.py::test_gradient_accumulation (SGD(1.0), N=3, gradients of ones)."""
    spec = optimizers.SGD(learning_rate=1.0, gradient_accumulation_steps=3)
    tx = spec.build_optax()
    params = [jnp.array([[1.0, 2.0], [3.0, 4.0]])]
    state = tx.init(params)
    expected = [[[1, 2], [3, 4]], [[1, 2], [3, 4]], [[0, 1], [2, 3]], [[0, 1], [2, 3]]]
    for i, want in enumerate(expected):
        updates, state = tx.update([jnp.ones((2, 2))], state, params)
        params = optax.apply_updates(params, updates)
        np.testing.assert_allclose(params[0], want)
        assert int(spec.optax_iterations(state)) == (i + 1) // 3


def test_keras_ema_unit_test_on_optax():
    """optimizer_test.py::test_ema."""
    spec = optimizers.SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.9,
                          ema_overwrite_frequency=3)
    tx = spec.build_optax()
    params = [jnp.array([[3.0, 4.0], [5.0, 6.0]])]
    state = tx.init(params)
    golden = [([[2, 3], [4, 5]], [[2, 3], [4, 5]]), ([[1, 2], [3, 4]], [[1.9, 2.9], [3.9, 4.9]]),
              ([[1.71, 2.71], [3.71, 4.71]], [[1.71, 2.71], [3.71, 4.71]])]
    for w, avg in golden:
        updates, state = tx.update([jnp.ones((2, 2))], state, params)
        params = optax.apply_updates(params, updates)
        np.testing.assert_allclose(params[0], w, rtol=1e-6)
        np.testing.assert_allclose(state[1].average[0], avg, rtol=1e-6)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_ema_with_model_fit(backend):
    """optimizer_test.py::test_ema_with_model_fit: fit ends with the averaged weights."""
    if backend == "jax":
        module = nnx.Linear(1, 2, use_bias=False, kernel_init=nnx.initializers.ones,
                            rngs=nnx.Rngs(0))
    else:
        module = torch.nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            module.weight.fill_(1.0)
    model = kp.Model(module).compile(kp.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9),
                                     "mse")
    model.fit(np.ones((1, 1), np.float32), np.zeros((1, 2), np.float32), batch_size=1,
              epochs=2, verbose=0)
    np.testing.assert_allclose(model.get_weights()[0].ravel(), [0.891, 0.891], atol=1e-5)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_swap_ema_weights_evaluates_the_average(backend, tmp_path):
    spec = kp.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.7)
    model = kp.Model(linear(backend)).compile(spec, "mse")
    seen = {}

    def record(epoch, logs):
        seen[epoch] = [np.array(w) for w in model.get_weights()]

    log = kp.callbacks.LambdaCallback(on_epoch_end=record)
    model.fit(X, Y, batch_size=4, epochs=2, shuffle=False, verbose=0,
              validation_data=(X[:8], Y[:8]),
              callbacks=[kp.callbacks.SwapEMAWeights(swap_on_epoch=True), log])
    history = model.history.history
    # the last epoch's callbacks saw the average, which fit leaves in the model
    for a, b in zip(seen[1], model.get_weights()):
        np.testing.assert_array_equal(a, b)
    ref = kp.Model(linear(backend)).compile("sgd", "mse")
    ref.set_weights(model.get_weights())
    val = ref.evaluate(X[:8], Y[:8], verbose=0)
    assert history["val_loss"][-1] == pytest.approx(val, rel=1e-5)
    # saved and restored with the optimizer state
    path = tmp_path / "m.safetensors"
    model.save(path)
    loaded = kp.load_model(path, linear(backend))
    loaded.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(ValueError, match="use_ema=True"):
        plain = kp.Model(linear(backend)).compile("adam", "mse")
        plain.fit(X, Y, epochs=1, verbose=0, validation_data=(X, Y),
                  callbacks=[kp.callbacks.SwapEMAWeights()])


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_checkpoint_mid_cycle(backend):
    """A state saved between the batches of a cycle resumes to the same numbers."""
    def fresh():
        return kp.Model(linear(backend)).compile(
            kp.optimizers.SGD(0.05, momentum=0.5, gradient_accumulation_steps=3,
                              use_ema=True), "mse")

    ref = fresh()
    for i in range(5):
        ref.train_on_batch(X[4 * i:4 * i + 4], Y[4 * i:4 * i + 4])
    a = fresh()
    for i in range(2):
        a.train_on_batch(X[4 * i:4 * i + 4], Y[4 * i:4 * i + 4])
    state = a._backend.state_dict()
    b = fresh()
    b.train_on_batch(X[:4], Y[:4])  # builds it
    b._backend.load_state_dict(state)
    for i in range(2, 5):
        b.train_on_batch(X[4 * i:4 * i + 4], Y[4 * i:4 * i + 4])
    for u, v in zip(b.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-6)
    assert b.optimizer.iterations == ref.optimizer.iterations == 1


def test_mixed_precision_accumulation():
    """mixed_float16 with a loss scale: the same updates as float32 (JAX)."""
    plain = kp.Model(linear("jax")).compile(
        kp.optimizers.SGD(0.05, gradient_accumulation_steps=2), "mse")
    plain.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    scaled = kp.optimizers.LossScaleOptimizer(  # a scale at which float16 does not overflow
        kp.optimizers.SGD(0.05, gradient_accumulation_steps=2), initial_scale=4.0)
    mixed = kp.Model(linear("jax"), dtype_policy="mixed_float16").compile(scaled, "mse")
    mixed.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert mixed.optimizer.iterations == plain.optimizer.iterations == 3
    for a, b in zip(mixed.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-3)


def test_argument_checks():
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        kp.optimizers.Adam(gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="ema_momentum"):
        kp.optimizers.Adam(use_ema=True, ema_momentum=1.5)
    with pytest.raises(ValueError, match="ema_overwrite_frequency"):
        kp.optimizers.Adam(use_ema=True, ema_overwrite_frequency=0)
    spec = kp.optimizers.Adam(gradient_accumulation_steps=4, use_ema=True)
    again = kp.optimizers.deserialize(kp.optimizers.serialize(spec))
    assert again.gradient_accumulation_steps == 4 and again.use_ema
