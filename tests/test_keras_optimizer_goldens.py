"""Keras 3's own optimizer and metric tests, translated (keras/src/optimizers/*_test.py,
keras/src/metrics/accuracy_metrics_test.py): golden trajectories on both backends, and the
parity fixes they found (SGD(nesterov=True) without momentum and Adafactor(clip_threshold
< 1) on torch, ``optimizers.get(None)``, ``loss_weights`` as arrays, ``metrics.Accuracy``).
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp
from kompile import optimizers

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402


def trajectory_optax(spec, x0, grads):
    tx = spec.build_optax()
    params = [jnp.asarray(x0)]
    state = tx.init(params)
    out = []
    for g in grads:
        updates, state = tx.update([jnp.asarray(g, jnp.float32)], state, params)
        params = optax.apply_updates(params, updates)
        out.append(np.asarray(params[0]))
    return out


def trajectory_torch(spec, x0, grads):
    p = torch.nn.Parameter(torch.tensor(x0))
    opt = spec.build_torch([p])
    out = []
    for g in grads:
        p.grad = torch.tensor(np.asarray(g, np.float32))
        spec.torch_clip([p])
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


RUNNERS = {"optax": trajectory_optax, "torch": trajectory_torch}

# keras/src/optimizers/sgd_test.py::test_correctness_with_golden
SGD_GOLDEN = np.array(
    [[0.9999] * 10,
     [0.9989, 0.9979, 0.9969, 0.9959, 0.9949, 0.9939, 0.9929, 0.9919, 0.9909, 0.9899],
     [0.9979, 0.9959, 0.9939, 0.9919, 0.9899, 0.9879, 0.9859, 0.9839, 0.9819, 0.9799],
     [0.9969, 0.9939, 0.9909, 0.9879, 0.9849, 0.9819, 0.9789, 0.9759, 0.9729, 0.9699],
     [0.9959, 0.9919, 0.9879, 0.9839, 0.9799, 0.9759, 0.9719, 0.9679, 0.9639, 0.9599]])
# keras/src/optimizers/adafactor_test.py::test_correctness_with_golden
ADAFACTOR_GOLDEN = np.array(
    [[0.55] * 10,
     [0.3031, 0.3026, 0.3025, 0.3024, 0.3024, 0.3024, 0.3024, 0.3024, 0.3024, 0.3024],
     [0.1671, 0.1665, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663],
     [0.0923, 0.0916, 0.0915, 0.0914, 0.0914, 0.0914, 0.0914, 0.0914, 0.0914, 0.0914],
     [0.0554, 0.0548, 0.0546, 0.0546, 0.0546, 0.0546, 0.0546, 0.0545, 0.0545, 0.0545]])
GRADS = [np.full((10,), 0.01)] + [np.arange(0.1, 1.1, 0.1)] * 4


@pytest.mark.parametrize("runner", RUNNERS)
def test_sgd_nesterov_without_momentum_golden(runner):
    spec = optimizers.SGD(nesterov=True)  # momentum 0: plain SGD, as Keras
    out = RUNNERS[runner](spec, np.ones(10, np.float32), GRADS)
    np.testing.assert_allclose(out, SGD_GOLDEN, rtol=5e-4, atol=5e-4)


@pytest.mark.parametrize("runner", RUNNERS)
def test_adafactor_golden(runner):
    spec = optimizers.Adafactor(learning_rate=0.5, beta_2_decay=-0.65, epsilon_1=1e-15,
                                epsilon_2=1e-4, clip_threshold=0.9, relative_step=False)
    out = RUNNERS[runner](spec, np.ones(10, np.float32), GRADS)
    np.testing.assert_allclose(out, ADAFACTOR_GOLDEN, rtol=5e-4, atol=5e-4)


@pytest.mark.parametrize("runner", RUNNERS)
def test_adafactor_single_steps(runner):
    """adafactor_test.py::test_single_step_1d / _2d."""
    spec = optimizers.Adafactor(learning_rate=0.5)
    one = RUNNERS[runner](spec, np.array([1.0, 2.0, 3.0, 4.0], np.float32),
                          [np.array([1.0, 6.0, 7.0, 2.0])])
    np.testing.assert_allclose(one[0], [-0.3693, 0.6307, 1.6307, 2.6307], rtol=1e-4,
                               atol=1e-4)
    two = RUNNERS[runner](optimizers.Adafactor(learning_rate=0.5),
                          np.array([[1.0, 2.0], [3.0, 4.0]], np.float32),
                          [np.array([[1.0, 6.0], [7.0, 2.0]])])
    np.testing.assert_allclose(two[0], [[0.7007, -0.0081], [1.2492, 3.4407]], rtol=1e-4,
                               atol=1e-4)


def test_get_none():
    assert optimizers.get(None) is None
    with pytest.raises(TypeError, match="`optimizer`"):
        kp.Model(torch.nn.Linear(2, 1)).compile(None, "mse")


@pytest.mark.parametrize("weights", [np.array([0.1, 2.0]), [np.float32(0.1), np.array(2.0)],
                                     {"a": np.array(0.1), "b": torch.tensor(2.0)},
                                     jnp.array([0.1, 2.0])])
def test_loss_weights_as_arrays(weights):
    """Keras accepts loss weights given as arrays: the same loss as the float weights."""
    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)

        def forward(self, x):
            return {"a": self.a(x), "b": self.b(x)}

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = {"a": rng.normal(size=(8, 1)).astype(np.float32),
         "b": rng.normal(size=(8, 1)).astype(np.float32)}
    torch.manual_seed(0)
    net = Two()
    model = kp.Model(net).compile("sgd", "mse", loss_weights=weights)
    ref = kp.Model(net).compile("sgd", "mse", loss_weights={"a": 0.1, "b": 2.0})
    got = model.evaluate(x, y, verbose=0, return_dict=True)
    want = ref.evaluate(x, y, verbose=0, return_dict=True)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    assert model.get_compile_config()["loss_weights"] == pytest.approx([0.1, 2.0]) or \
        model.get_compile_config()["loss_weights"] == pytest.approx({"a": 0.1, "b": 2.0})


ACCURACY_CASES = [  # accuracy_metrics_test.py::AccuracyTest
    ([[1], [2], [3], [4]], [[0], [2], [3], [4]], None, 0.75),
    ([[1], [2], [3], [4]], [[0], [2], [3], [4]], [1, 1, 0, 0], 0.5),
    ([1, 2, 3, 4], [0, 2, 3, 4], [1, 1, 0, 0], 0.5),
    ([[1, 2], [3, 4]], [[0, 2], [3, 4]], [[1, 0], [0, 1]], 0.5),
    ([[1, 2], [3, 4]], [[0, 2], [3, 4]], [[1, 0]], 0.5),
]


@pytest.mark.parametrize("y_true, y_pred, weight, expected", ACCURACY_CASES)
def test_accuracy_metric(y_true, y_pred, weight, expected):
    metric = kp.metrics.Accuracy(name="accuracy", dtype="float32")
    metric.update_state(np.array(y_true), np.array(y_pred),
                        sample_weight=None if weight is None else np.array(weight))
    assert float(metric.result()) == pytest.approx(expected, abs=1e-3)
    config = metric.get_config()
    assert config["name"] == "accuracy"
    assert type(kp.metrics.deserialize(kp.metrics.serialize(metric))) is kp.metrics.Accuracy


def test_accuracy_in_fit():
    """As a compiled metric on both backends: exact equality of rounded outputs."""
    x = np.arange(8, dtype=np.float32).reshape(8, 1)
    net = torch.nn.Linear(1, 1)
    with torch.no_grad():
        net.weight.fill_(1.0)
        net.bias.fill_(0.0)
    y = x.copy()
    y[:2] += 1  # 6 of 8 equal
    model = kp.Model(net).compile("sgd", "mse", metrics=[kp.metrics.Accuracy()])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(0.75)
