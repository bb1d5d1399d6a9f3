"""SPEC section 5: run_eagerly, jit_compile and steps_per_execution (JAX; torch in
test_torch_backend.py)."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import kompile as kp

from .models import build


class Counting(nnx.Module):
    """A linear model that counts how often its Python body runs."""

    calls = 0

    def __init__(self):
        self.w = nnx.Param(jnp.full((3, 2), 0.1))

    def __call__(self, x):
        Counting.calls += 1
        return x @ self.w


class NotTraceable(nnx.Module):
    """Calls float() on an array: fine eagerly, impossible under jax.jit."""

    def __init__(self):
        self.w = nnx.Param(jnp.full((3, 2), 0.1))

    def __call__(self, x):
        scale = 2.0 if float(jnp.mean(x)) > -100 else 1.0
        return scale * (x @ self.w)


def _data(n=40):
    r = np.random.default_rng(0)
    return r.normal(size=(n, 3)).astype(np.float32), r.normal(size=(n, 2)).astype(np.float32)


def test_run_eagerly_runs_python_every_batch():
    x, y = _data(40)
    Counting.calls = 0
    model = kp.Model(Counting()).compile("sgd", "mse", run_eagerly=True)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    eager_calls = Counting.calls
    assert model.run_eagerly is True and model.jit_compile is False
    Counting.calls = 0
    jitted = kp.Model(Counting()).compile("sgd", "mse")
    jitted.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert model.jit_compile is False and jitted.jit_compile is True
    assert eager_calls >= 10  # 5 batches x 2 epochs, each runs the module's Python
    assert Counting.calls <= 3  # traced once (plus the shape probe)


def test_jit_auto_falls_back_with_a_warning():
    x, y = _data(16)
    model = kp.Model(NotTraceable()).compile("sgd", "mse")
    with pytest.warns(UserWarning, match="runs eagerly.*Cause: .*Concretization|runs eagerly"):
        hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert model.jit_compile is False
    assert hist.history["loss"][1] < hist.history["loss"][0]
    strict = kp.Model(NotTraceable()).compile("sgd", "mse", jit_compile=True)
    with pytest.raises(Exception, match="concrete|Concretization|tracer|Tracer"):
        strict.fit(x, y, batch_size=8, verbose=0)
    eager = kp.Model(NotTraceable()).compile("sgd", "mse", jit_compile=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eager.fit(x, y, batch_size=8, verbose=0)


def test_run_eagerly_wins_over_jit_compile():
    x, y = _data(8)
    model = kp.Model(Counting()).compile("sgd", "mse", run_eagerly=True, jit_compile=True)
    with pytest.warns(UserWarning, match="run_eagerly=True overrides jit_compile=True"):
        model.fit(x, y, batch_size=8, verbose=0)
    assert model.jit_compile is False


def test_callback_indices_with_steps_per_execution():
    x, y = _data(40)
    begins, ends = [], []

    class Rec(kp.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            begins.append(batch)

        def on_train_batch_end(self, batch, logs=None):
            ends.append(batch)

    model = kp.Model(Counting()).compile("sgd", "mse", steps_per_execution=3)
    model.fit(x, y, batch_size=4, callbacks=[Rec()], verbose=0)  # 10 batches
    assert begins == [0, 3, 6, 9] and ends == [2, 5, 8, 9]


@pytest.mark.parametrize("batch_size", [4, 6])  # 6: a partial last batch
def test_steps_per_execution_matches_single_steps(batch_size):
    x, y = _data(40)
    results = []
    for n in (1, 3, 1000):
        model = kp.Model(build("jax", "linear", n_in=3, n_out=2)).compile(
            "adam", "mse", metrics=["mae"], steps_per_execution=n)
        hist = model.fit(x, y, batch_size=batch_size, epochs=2, shuffle=False, verbose=0)
        ev = model.evaluate(x, y, batch_size=batch_size, verbose=0)
        pred = model.predict(x, batch_size=batch_size, verbose=0)
        results.append((hist.history, model.get_weights(), ev, pred))
    for hist, weights, ev, pred in results[1:]:
        for key in results[0][0]:
            np.testing.assert_allclose(hist[key], results[0][0][key], rtol=1e-5)
        for a, b in zip(weights, results[0][1]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ev, results[0][2], rtol=1e-5)
        np.testing.assert_allclose(pred, results[0][3], rtol=1e-5, atol=1e-6)


def test_tracing_does_not_grow_with_steps_per_execution():
    x, y = _data(64)
    counts = {}
    for n in (4, 64):
        Counting.calls = 0
        model = kp.Model(Counting()).compile("sgd", "mse", steps_per_execution=n)
        model.fit(x, y, batch_size=4, epochs=2, verbose=0)  # 16 batches per epoch
        counts[n] = Counting.calls
    assert counts[4] == counts[64] <= 3


def test_steps_per_execution_validation():
    with pytest.raises(ValueError, match="steps_per_execution.*integer >= 1.*0"):
        kp.Model(Counting()).compile("sgd", "mse", steps_per_execution=0)
    with pytest.warns(DeprecationWarning, match="experimental_steps_per_execution"):
        model = kp.Model(Counting()).compile("sgd", "mse", experimental_steps_per_execution=4)
    assert model.get_compile_config()["steps_per_execution"] == 4
    with pytest.raises(ValueError, match="jit_compile"):
        kp.Model(Counting()).compile("sgd", "mse", jit_compile="yes")


def test_no_implicit_transfers_in_the_training_loop():
    """Every host<->device transfer in fit is explicit (data once, logs per epoch)."""
    import jax

    x, y = _data(64)
    model = kp.Model(build("jax", "linear", n_in=3, n_out=2)).compile(
        "adam", "mse", metrics=["mae"], steps_per_execution=2)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # compile outside the guard
    with jax.transfer_guard("disallow"):
        hist = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert len(hist.history["loss"]) == 3


def test_streaming_input_matches_device_resident(monkeypatch):
    """Data too large for the device is gathered on the host per call: same results."""
    from kompile.backends.jax import JaxBackend

    x, y = _data(50)
    results = []
    for fits in (True, False):
        monkeypatch.setattr(JaxBackend, "fits_on_device", lambda self, nbytes, f=fits: f)
        model = kp.Model(build("jax", "linear", n_in=3, n_out=2)).compile(
            "adam", "mse", metrics=["mae"], steps_per_execution=2)
        np.random.seed(1)
        hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        results.append((hist.history, model.get_weights(), model.predict(x, verbose=0)))
    (h1, w1, p1), (h2, w2, p2) = results
    for key in h1:
        np.testing.assert_allclose(h1[key], h2[key], rtol=1e-6)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(p1, p2, rtol=1e-6)


def test_metrics_whose_state_is_sized_by_the_data_run_in_scans():
    """F1Score / R2Score / multi-label AUC learn their class count from the data; their
    state must have its final shape before it is carried through a scan."""
    r = np.random.default_rng(0)
    x = r.normal(size=(64, 8)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[r.integers(0, 3, 64)]
    metrics = ["f1_score", kp.metrics.R2Score(), kp.metrics.AUC(multi_label=True)]
    logs = []
    for n in (1, 4):
        model = kp.Model(build("jax", "mlp")).compile(
            "adam", "categorical_crossentropy", metrics=metrics, steps_per_execution=n)
        logs.append(model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history)
    for key in logs[0]:
        np.testing.assert_allclose(logs[0][key], logs[1][key], rtol=1e-5)


def test_no_copy_of_the_data_outlives_the_call():
    """The device copies of the data (the feed and its epoch-ordered copy) are freed after
    fit/evaluate/predict: only the model's state stays on the device."""
    import gc

    import jax

    x, y = _data(48)
    x, y = np.pad(x, ((0, 0), (0, 4))), np.pad(y, ((0, 0), (0, 5)))  # shapes no weight has
    model = kp.Model(build("jax", "linear", n_in=7, n_out=7)).compile("adam", "mse")
    model.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    gc.collect()
    shapes = {a.shape for a in jax.live_arrays()}
    assert not shapes & {(48, 7), (36, 7), (12, 7)}, shapes
