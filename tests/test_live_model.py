"""A live model for callbacks (issue 12 item 3), on both backends.

Between batches a callback sees the weights after the latest batch (``model.module``,
``get_weights``), and what it changes (on the module, through ``set_weights`` or
``model.learning_rate``) is what the next batch trains with. References are NumPy: a
linear model trained by SGD on the mean squared error, recomputed step by step.
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp

from . import models

LR = 0.1


def _data():
    r = np.random.default_rng(3)
    return r.normal(size=(32, 4)).astype(np.float32), r.normal(size=(32, 1)).astype(np.float32)


def _model(backend):
    net = models.build(backend, "linear", n_in=4, n_out=1)
    return net, kp.Model(net).compile(kp.optimizers.SGD(learning_rate=LR), "mse")


def _sgd_step(w, b, x, y, lr=LR):
    """One SGD step of the mean squared error in float64."""
    r = x @ w + b - y
    return w - lr * 2 * x.T @ r / len(x), b - lr * 2 * r.mean(0)


def _call(backend, module, x):
    """The user's module called directly, as a callback would."""
    if backend == "jax":
        return np.asarray(module(x))
    import torch

    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _batch_losses(running: list[float]) -> list[float]:
    """Each batch's own loss from the running means the logs report (equal batch sizes)."""
    return [running[0]] + [(i + 1) * running[i] - i * running[i - 1]
                           for i in range(1, len(running))]


class Recorder(kp.callbacks.Callback):
    """Records each batch's running loss and applies ``change(model, batch)``."""

    def __init__(self, change=None):
        super().__init__()
        self.change, self.running = change, []

    def on_train_batch_end(self, batch, logs=None):
        self.running.append(logs["loss"])  # a host sync, fine in a test
        if self.change is not None:
            self.change(self.model, batch)


def _zero_module(backend, model):
    module = model.module
    if backend == "jax":
        module.kernel.set_value(np.zeros((4, 1), np.float32))
        module.bias.set_value(np.zeros((1,), np.float32))
    else:
        import torch

        with torch.no_grad():
            module.kernel.zero_()
            module.bias.zero_()


@pytest.mark.parametrize("how", ["set_weights", "module"])
def test_a_weight_set_at_a_batch_boundary_is_what_the_next_batch_trains(backend, how):
    x, y = _data()
    net, model = _model(backend)

    def change(model, batch):
        if batch != 1:
            return
        if how == "set_weights":
            model.set_weights([np.zeros_like(w) for w in model.get_weights()])
        else:
            _zero_module(backend, model)

    rec = Recorder(change)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[rec])
    losses = _batch_losses(rec.running)
    # batch 2 starts from zero weights: its loss is the mean of its squared targets
    np.testing.assert_allclose(losses[2], np.mean(y[16:24].astype(np.float64) ** 2),
                               rtol=1e-5)
    w, b = _sgd_step(np.zeros((4, 1)), np.zeros(1), x[16:24].astype(np.float64), y[16:24])
    w, b = _sgd_step(w, b, x[24:].astype(np.float64), y[24:])
    np.testing.assert_allclose(_call(backend, net, x), x @ w + b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("where", ["model", "optimizer"])
def test_a_learning_rate_set_by_a_callback_applies_to_the_next_batch(backend, where):
    """``model.learning_rate = x`` and Keras's ``model.optimizer.learning_rate = x``."""
    x, y = _data()
    net, model = _model(backend)
    seen = []
    assert model.optimizer.learning_rate == LR and model.optimizer.iterations == 0

    def change(model, batch):
        seen.append(sorted(model.get_weights(), key=np.size))
        assert model.optimizer.iterations == batch + 1  # live: the steps taken
        if batch == 1:
            (model if where == "model" else model.optimizer).learning_rate = 0.0

    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
              callbacks=[Recorder(change)])
    for later in seen[2:]:  # batches 2 and 3 trained with a zero learning rate
        for a, b in zip(later, seen[1]):
            np.testing.assert_array_equal(a, b)
    assert model.learning_rate == 0.0 and model.optimizer.learning_rate == 0.0
    assert model.optimizer.iterations == 4


def test_optimizer_learning_rate_through_a_loss_scale_wrapper(backend):
    x, y = _data()
    net = models.build(backend, "linear", n_in=4, n_out=1)
    opt = kp.optimizers.LossScaleOptimizer(kp.optimizers.SGD(learning_rate=LR))
    model = kp.Model(net).compile(opt, "mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert opt.iterations == 4 and opt.learning_rate == pytest.approx(LR)
    opt.learning_rate = 0.0
    before = model.get_weights()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert model.learning_rate == 0.0 and opt.inner_optimizer.learning_rate == 0.0


def test_a_callback_calling_the_module_sees_the_latest_weights(backend):
    x, y = _data()
    net, model = _model(backend)
    w0, b0 = models.init_weights(4, 1, 0)
    w, b = w0.astype(np.float64), b0.astype(np.float64)
    expected, kernels, seen, kept = [], [], [], []

    def look(model, batch):
        module = model.module  # the user's own module object, with the latest weights
        assert module is net
        seen.append(_call(backend, module, x))
        if backend == "jax":
            kept.append(module.kernel.get_value())  # an array the next steps must not delete

    for _epoch in range(2):
        for i in range(4):
            w, b = _sgd_step(w, b, x[8 * i:8 * i + 8].astype(np.float64), y[8 * i:8 * i + 8])
            expected.append(x @ w + b)
            kernels.append(w)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
              callbacks=[Recorder(look)])
    assert len(seen) == 8
    for got, want in zip(seen, expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for kernel, want in zip(kept, kernels):  # still valid after the steps that followed
        np.testing.assert_allclose(np.asarray(kernel), want, rtol=1e-4, atol=1e-5)


def _set_module(backend, net, kernel, bias):
    if backend == "jax":
        net.kernel.set_value(np.asarray(kernel, np.float32))
        net.bias.set_value(np.asarray(bias, np.float32))
    else:
        import torch

        with torch.no_grad():
            net.kernel.copy_(torch.as_tensor(np.asarray(kernel, np.float32)))
            net.bias.copy_(torch.as_tensor(np.asarray(bias, np.float32)))


def test_changes_to_the_module_between_calls_are_used(backend):
    x, y = _data()
    net, model = _model(backend)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for bias in (1.0, 2.0):  # set on the user's module directly, before each call
        _set_module(backend, net, np.zeros((4, 1)), [bias])
        np.testing.assert_allclose(model.predict(x, verbose=0), np.full((32, 1), bias))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(np.mean((2.0 - y) ** 2), rel=1e-5)
    _set_module(backend, net, np.zeros((4, 1)), [0.0])
    model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)  # one step from zero weights
    w, b = _sgd_step(np.zeros((4, 1)), np.zeros(1), x[:8].astype(np.float64), y[:8])
    np.testing.assert_allclose(_call(backend, net, x), x @ w + b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("how", ["new_variables", "new_submodule", "shared_array"])
def test_a_replaced_variable_or_submodule_is_used_by_the_next_call(how):
    """JAX: kompile reads the module through a cached view of its variables; replacing a
    Variable object or a submodule (a new structure, not a new value) is still seen."""
    from flax import nnx

    x, y = _data()

    class Outer(nnx.Module):
        def __init__(self):
            self.inner = nnx.Linear(4, 1, rngs=nnx.Rngs(0))
            if how == "shared_array":  # one array held by two variables (unused by the call)
                self.extra = nnx.BatchStat(self.inner.bias.get_value())

        def __call__(self, x):
            return self.inner(x)

    net = Outer()
    model = kp.Model(net).compile(kp.optimizers.SGD(learning_rate=LR), "mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    zeros = np.zeros((4, 1), np.float32)
    if how == "new_variables":
        net.inner.kernel = nnx.Param(zeros.copy())
        net.inner.bias = nnx.Param(np.full((1,), 0.5, np.float32))
    elif how == "new_submodule":
        fresh = nnx.Linear(4, 1, rngs=nnx.Rngs(1))
        fresh.kernel.set_value(zeros.copy())
        fresh.bias.set_value(np.full((1,), 0.5, np.float32))
        net.inner = fresh
    else:
        net.inner.kernel.set_value(zeros.copy())
        net.inner.bias.set_value(np.full((1,), 0.5, np.float32))
    np.testing.assert_allclose(model.predict(x, verbose=0), np.full((32, 1), 0.5))
    model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)  # one step from these weights
    w, b = _sgd_step(np.zeros((4, 1)), np.full(1, 0.5), x[:8].astype(np.float64), y[:8])
    np.testing.assert_allclose(np.asarray(net(x)), x @ w + b, rtol=1e-4, atol=1e-5)
    model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)  # and the view after that
    w, b = _sgd_step(w, b, x[:8].astype(np.float64), y[:8])
    np.testing.assert_allclose(np.asarray(net(x)), x @ w + b, rtol=1e-4, atol=1e-5)
