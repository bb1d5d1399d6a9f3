"""One call at a time per model, with real threads, on both backends.

A second fit/evaluate/predict/*_on_batch on a model while another thread runs a call on it
raises a RuntimeError (the running fit goes on, its optimizer state intact); a callback may
call the model from its own thread; two models in two threads train as they do one after
the other; work in a thread other than the main one installs no SIGINT handler.
References: the same models trained sequentially, and the optimizer's step count.
"""

from __future__ import annotations

import signal
import threading

import numpy as np
import pytest

import kompile as kp


def _net(backend, seed=0):
    if backend == "jax":
        nnx = pytest.importorskip("flax.nnx")
        return nnx.Linear(3, 1, rngs=nnx.Rngs(seed))
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 1)


def _model(backend, seed=0):
    return kp.Model(_net(backend, seed)).compile(kp.optimizers.Adam(0.01), "mse",
                                                 jit_compile=backend == "jax")


def _data(seed=0):
    r = np.random.default_rng(seed)
    return r.normal(size=(64, 3)).astype(np.float32), r.normal(size=(64, 1)).astype(np.float32)


class _Hold(kp.callbacks.Callback):
    """Holds the fit inside epoch 1 until the main thread has tried its calls."""

    def __init__(self):
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()
        self.handler = None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.handler = signal.getsignal(signal.SIGINT)
            self.started.set()
            self.release.wait(60)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_second_call_from_another_thread_raises_and_the_fit_goes_on(backend):
    x, y = _data()
    model = _model(backend)
    hold, result = _Hold(), {}

    def run():
        result["history"] = model.fit(x, y, batch_size=8, epochs=3, verbose=0,
                                      callbacks=[hold])

    worker = threading.Thread(target=run, name="trainer")
    worker.start()
    try:
        assert hold.started.wait(60)
        calls = [lambda: model.fit(x, y, epochs=1, verbose=0),
                 lambda: model.evaluate(x, y, verbose=0),
                 lambda: model.predict(x, verbose=0),
                 lambda: model.train_on_batch(x, y),
                 lambda: model.test_on_batch(x, y),
                 lambda: model.predict_on_batch(x)]
        for call in calls:
            with pytest.raises(RuntimeError, match="in thread 'trainer'"):
                call()
    finally:
        hold.release.set()
        worker.join(120)
    assert not worker.is_alive()
    assert np.all(np.isfinite(result["history"].history["loss"]))
    assert model.optimizer.iterations == 3 * 8  # never reset by the refused calls
    # a fit in a thread other than the main one leaves the SIGINT handler alone
    assert hold.handler is signal.default_int_handler
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # free again once it returned
    assert model.optimizer.iterations == 4 * 8


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_callback_may_call_its_model_but_not_from_a_thread_of_its_own(backend):
    x, y = _data()
    model = _model(backend)
    seen = {}

    class Probe(kp.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen["same thread"] = self.model.predict(x[:4], verbose=0)  # allowed

            def other():
                try:
                    self.model.predict(x[:4], verbose=0)
                except RuntimeError as err:
                    seen["other thread"] = str(err)

            t = threading.Thread(target=other)
            t.start()
            t.join(60)

    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Probe()])
    assert seen["same thread"].shape == (4, 1)
    assert "one call at a time" in seen["other thread"]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_two_models_in_two_threads_train_as_one_after_the_other(backend):
    data = [_data(0), _data(1)]
    sequential = []
    for i in range(2):
        model = _model(backend, seed=i)
        model.fit(*data[i], batch_size=8, epochs=3, verbose=0, shuffle=False)
        sequential.append(model.get_weights())
    models = [_model(backend, seed=i) for i in range(2)]
    errors = []

    def run(i):
        try:
            models[i].fit(*data[i], batch_size=8, epochs=3, verbose=0, shuffle=False)
        except BaseException as err:  # noqa: BLE001  (reported by the main thread)
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    for model, want in zip(models, sequential):
        for got, exp in zip(model.get_weights(), want):
            np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-7)
