"""Say when nothing can train, on both backends: a module without trainable variables and
data whose every sample (or class) weight is zero warn at fit (and the weights indeed stay
as they were: the reference); a negative learning rate is refused as torch.optim refuses it.
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp


def _data():
    r = np.random.default_rng(0)
    return r.normal(size=(32, 4)).astype(np.float32), r.normal(size=(32, 1)).astype(np.float32)


def _net(backend, frozen=False):
    if backend == "jax":
        nnx = pytest.importorskip("flax.nnx")
        if not frozen:
            return nnx.Linear(4, 1, rngs=nnx.Rngs(0))

        class Fixed(nnx.Module):  # a plain nnx.Variable: state, not a parameter
            def __init__(self):
                self.w = nnx.Variable(np.full((4, 1), 0.5, np.float32))

            def __call__(self, x):
                return x @ self.w.get_value()

        return Fixed()
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    return net.requires_grad_(False) if frozen else net


def _state(model):
    """Every variable of the module (trainable or not), as NumPy copies."""
    return [np.array(v, copy=True) for v in model._backend.weights_dict().values()]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_module_without_trainable_variables_warns_once(backend):
    x, y = _data()
    model = kp.Model(_net(backend, frozen=True)).compile(kp.optimizers.SGD(0.1), "mse")
    before = _state(model)
    with pytest.warns(UserWarning, match="no trainable variables") as seen:
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # once per compile
    assert sum("no trainable" in str(w.message) for w in seen) == 1
    for got, want in zip(_state(model), before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("how", ["sample_weight", "class_weight"])
def test_all_zero_weights_warn_and_train_nothing(backend, how):
    x, y = _data()
    model = kp.Model(_net(backend)).compile(kp.optimizers.SGD(0.1), "mse")
    before = model.get_weights()
    if how == "sample_weight":
        kwargs = {"sample_weight": np.zeros(32, np.float32)}
    else:
        y = (y > 0).astype(np.float32)  # class indices 0/1, both weighted 0
        kwargs = {"class_weight": {0: 0.0, 1: 0.0}}
    with pytest.warns(UserWarning, match=f"Every sample weight of the data is zero \\(`{how}`"):
        history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, **kwargs)
    assert history.history["loss"][0] == 0.0
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_some_zero_weights_do_not_warn(recwarn):
    pytest.importorskip("flax.nnx")
    x, y = _data()
    model = kp.Model(_net("jax")).compile(kp.optimizers.SGD(0.1), "mse")
    w = np.zeros(32, np.float32)
    w[3] = 1.0
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, sample_weight=w)
    assert not [r for r in recwarn if "zero" in str(r.message)]


def test_a_negative_learning_rate_is_refused_as_torch_refuses_it():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="Invalid learning rate"):  # the reference
        torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=-0.1)
    for make in (kp.optimizers.SGD, kp.optimizers.Adam):
        with pytest.raises(ValueError, match=r"`learning_rate` must be >= 0; received -0.1"):
            make(-0.1)
    with pytest.raises(ValueError, match=r"`learning_rate` must be >= 0"):
        kp.optimizers.Adam.from_config({"learning_rate": -1e-3})


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_setting_a_negative_learning_rate_during_training_is_refused(backend):
    x, y = _data()
    model = kp.Model(_net(backend)).compile(kp.optimizers.SGD(0.1), "mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"`learning_rate` must be >= 0; received -1.0"):
        model.optimizer.learning_rate = -1.0
    assert model.optimizer.learning_rate == pytest.approx(0.1)
