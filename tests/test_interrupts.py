"""Ctrl-C at any moment of fit, evaluate or predict leaves valid weights (issue 13 item 1).

A thread sends SIGINT to the main thread after a random delay while a call runs. After each
interrupt the weights must be readable, finite, equal to what the user's module holds and
consistent with the optimizer's step count (no lost or half-applied step), and predict,
save_weights and another fit must work.

The model makes every step exact: a linear model from zero weights, x of ones and targets far
below the predictions, so the mean absolute error has the gradient 1 for every weight and
SGD with a learning rate of 1/16 moves every weight by exactly -1/16 per step. After k steps
every weight is -k/16, k is the optimizer's iteration count, and predictions are 5 * (-k/16).
"""

from __future__ import annotations

import random
import signal
import sys
import threading

import numpy as np
import pytest

import kompile as kp

from . import models

STEP = 1 / 16
X = np.ones((64, 4), np.float32)
Y = np.full((64, 1), -1e6, np.float32)  # never reached: the gradient stays 1


@pytest.fixture
def sigint():
    """Python's default SIGINT handler for the test (a test runner may ignore SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _tick() -> None:
    """A Python call: a signal that already arrived is raised at its start."""


def interrupted(call, delay: float) -> bool:
    """Run ``call()`` while another thread sends SIGINT to this one after ``delay`` seconds;
    whether the call ended by KeyboardInterrupt. The signal is always raised inside here."""
    timer = threading.Timer(delay, signal.pthread_kill,
                            (threading.main_thread().ident, signal.SIGINT))
    try:
        timer.start()
        try:
            call()
        finally:
            timer.cancel()
            timer.join()
            for _ in range(3):
                _tick()
        return False
    except KeyboardInterrupt:
        return True


def _module_weights(backend: str, net) -> list[np.ndarray]:
    if backend == "jax":
        arrays = [np.asarray(net.kernel.get_value()), np.asarray(net.bias.get_value())]
    else:
        arrays = [net.kernel.detach().numpy().copy(), net.bias.detach().numpy().copy()]
    return sorted(arrays, key=np.size)


def _steps_taken(backend: str, model, net) -> int:
    """Check the weights every way they can be read; return the number of steps they show."""
    weights = sorted(model.get_weights(), key=np.size)
    assert all(np.isfinite(w).all() for w in weights)
    k = -float(weights[0].ravel()[0]) / STEP
    assert k == int(k) >= 0
    for w in weights:  # every weight moved by the same whole number of steps
        np.testing.assert_array_equal(w, np.full(w.shape, -k * STEP, np.float32))
    assert int(model._backend.iterations) == k  # the optimizer state agrees
    for mine, theirs in zip(_module_weights(backend, net), weights):
        np.testing.assert_array_equal(mine, theirs)  # the user's module holds the same
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    return int(k)


def _model(backend: str, steps_per_execution: int = 1):
    net = models.build(backend, "linear", n_in=4, n_out=1)
    model = kp.Model(net).compile(kp.optimizers.SGD(learning_rate=STEP), "mae",
                                  steps_per_execution=steps_per_execution)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    return net, model


def test_ctrl_c_during_fit_leaves_valid_weights(backend, sigint, tmp_path):
    net, model = _model(backend)
    model.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)  # compiled, warm
    rng = random.Random(0)
    count = 0
    for trial in range(55):
        delay = rng.uniform(0, 0.15 if trial % 10 == 9 else 0.03)
        count += interrupted(lambda: model.fit(X, Y, batch_size=8, epochs=2_000,
                                               shuffle=False, verbose=0), delay)
        k = _steps_taken(backend, model, net)
        np.testing.assert_array_equal(model.predict(X[:2], verbose=0),
                                      np.full((2, 1), -5 * k * STEP, np.float32))
        if trial % 20 == 0:
            model.save_weights(tmp_path / "w.safetensors")
    assert count >= 50  # a few signals may land outside fit (or be swallowed by a gc hook)
    model.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert _steps_taken(backend, model, net) == k + 8


def test_ctrl_c_during_evaluate_and_predict(backend, sigint):
    net, model = _model(backend, steps_per_execution=4)  # calls of 4 steps
    model.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    big_x, big_y = np.ones((16384, 4), np.float32), np.full((16384, 1), -1e6, np.float32)
    expected_loss = 1e6 - 5 * 8 * STEP  # |pred - y| with pred = 5 * (-8/16)
    rng = random.Random(1)
    count = 0
    for trial in range(30):
        delay = rng.uniform(0, 0.02)
        if trial % 2:
            count += interrupted(lambda: model.evaluate(big_x, big_y, batch_size=8,
                                                        verbose=0), delay)
        else:
            count += interrupted(lambda: model.predict(big_x, batch_size=8, verbose=0), delay)
        assert _steps_taken(backend, model, net) == 8
    assert count >= 24  # a call may end before its signal
    assert model.evaluate(X, Y, batch_size=8, verbose=0) == pytest.approx(expected_loss)
    interrupted(lambda: model.fit(X, Y, batch_size=8, epochs=2_000, verbose=0), 0.02)
    k = _steps_taken(backend, model, net)
    assert backend == "torch" or k % 4 == 0  # JAX: one jitted call runs 4 steps
    model.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)


def test_ctrl_c_inside_a_gc_callback_is_not_lost(sigint):
    """Python drops an exception raised in a gc callback (JAX registers one); the guard
    keeps the signal and raises it at the end of the call."""
    import gc

    from kompile.backends.interrupts import SignalGuard

    def callback(phase, info):
        if phase == "start":
            signal.raise_signal(signal.SIGINT)

    guard = SignalGuard()
    guard.install()
    gc.callbacks.append(callback)
    try:
        gc.collect()  # without the guard: "Exception ignored in ...", and nothing raised
    finally:
        gc.callbacks.remove(callback)
    with pytest.raises(KeyboardInterrupt):
        guard.restore()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_inside_a_weakref_callback_is_not_lost(sigint):
    """Python prints and drops an exception raised in a weakref callback ("Exception
    ignored"); the guard keeps the Ctrl-C through sys.unraisablehook and raises it at the end
    of the call."""
    import weakref

    from kompile.backends.interrupts import SignalGuard

    class Thing:
        pass

    def callback(_ref):
        signal.raise_signal(signal.SIGINT)  # the handler raises inside this callback

    guard = SignalGuard()
    guard.install()
    thing = Thing()
    ref = weakref.ref(thing, callback)
    try:
        del thing  # the callback runs here; without the guard nothing is raised
    finally:
        assert ref() is None
    with pytest.raises(KeyboardInterrupt):
        guard.restore()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert sys.unraisablehook is not guard._unraisable  # the previous hook is back


def test_ctrl_c_in_a_weakref_callback_during_fit_stops_it(backend, sigint):
    """A Ctrl-C raised inside a weakref callback during fit ends fit with
    KeyboardInterrupt (not lost), and the weights show whole steps."""
    import weakref

    net, model = _model(backend)

    class Thing:
        pass

    class DropsAThing(kp.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                thing = Thing()
                self.ref = weakref.ref(thing, lambda _r: signal.raise_signal(signal.SIGINT))
                del thing

    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y, batch_size=8, epochs=50, shuffle=False, verbose=0,
                  callbacks=[DropsAThing()])
    k = _steps_taken(backend, model, net)
    assert 3 <= k <= 8  # stopped within the first epoch (8 batches), not at the end of fit
