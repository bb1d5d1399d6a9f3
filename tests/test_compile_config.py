"""get_compile_config -> JSON -> compile_from_config round trips (SPEC sections 1, 6; issue 3).

For each configuration the restored model reports the same config, and after one
identical epoch of training (so optimizer hyper-parameters matter) the same ``evaluate``
numbers as the original. Custom callables round-trip when registered with ``kp.register``
and fail with an error that says how to register them otherwise.
"""

import json

import numpy as np
import pytest

import kompile as kp

from . import models

HEADS = [("z", (3,)), ("a", ()), ("m", (2, 4))]
rng = np.random.default_rng(0)
X = rng.normal(size=(16, 4)).astype(np.float32)
Y = {"z": rng.integers(0, 2, (16, 3)).astype(np.float32),
     "a": rng.integers(0, 2, 16).astype(np.float32),
     "m": rng.integers(0, 2, (16, 2, 4)).astype(np.float32)}
SW = {"a": rng.uniform(0, 2, 16).astype(np.float32),
      "m": rng.uniform(0, 2, (16, 2)).astype(np.float32)}


@kp.register
def scaled_squares(y_true, y_pred):
    d = y_pred - y_true
    return (d * d).sum(-1) * 0.5


@kp.register(name="abs_error_fn")
def abs_error(y_true, y_pred):
    return abs(y_pred - y_true).sum(-1)


@kp.register(name="ScaledAbs")
class ScaledAbsLoss(kp.losses.Loss):
    def __init__(self, scale=1.0, reduction="sum_over_batch_size", name="scaled_abs"):
        super().__init__(reduction=reduction, name=name)
        self.scale = scale

    def call(self, y_true, y_pred):
        return abs(y_pred - y_true).sum(-1) * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@kp.register(name="TotalAbs")
class TotalAbsMetric(kp.metrics.Metric):
    def __init__(self, scale=1.0, name="total_abs", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.scale = scale

    def init(self):
        return {"total": np.zeros((), np.float32)}

    def update(self, state, y_true, y_pred, sample_weight=None):
        return {"total": state["total"] + abs(y_pred - y_true).sum()}

    def result(self, state):
        return state["total"] * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def not_registered(y_true, y_pred):
    return abs(y_pred - y_true).sum(-1)


CONFIGS = {
    "names": dict(optimizer="rmsprop", loss="mse", metrics=["mae", "accuracy"]),
    "optimizer_hyper": dict(
        optimizer=kp.optimizers.Adam(learning_rate=0.05, beta_1=0.5, epsilon=1e-4,
                                     clipnorm=0.5),
        loss="binary_crossentropy", metrics=["crossentropy"]),
    "schedule": dict(
        optimizer=kp.optimizers.SGD(
            learning_rate=kp.optimizers.schedules.ExponentialDecay(0.5, 1, 0.5), momentum=0.5,
            nesterov=True),
        loss="mae"),
    "loss_objects": dict(
        optimizer=kp.optimizers.AdamW(0.01, weight_decay=0.1, global_clipnorm=1.0),
        loss=kp.losses.Huber(delta=0.3, reduction="sum", name="hub"),
        metrics=[kp.metrics.MeanAbsoluteError(name="m1"), kp.metrics.BinaryAccuracy(
            threshold=0.4)]),
    "per_output_dicts": dict(
        optimizer="sgd",
        loss={"z": "mse", "m": kp.losses.BinaryCrossentropy(label_smoothing=0.1)},
        loss_weights={"m": 3.0, "z": 0.5},
        metrics={"z": ["mae", "mse"], "a": None},
        weighted_metrics={"m": kp.metrics.MeanSquaredError(name="wm")}),
    "per_output_lists": dict(
        optimizer=kp.optimizers.Adagrad(0.1, initial_accumulator_value=0.2),
        loss=["mae", None, "bce"], loss_weights=[1.0, 0.0, 2.0],
        metrics=[["mae"], None, ["binary_accuracy", "mse"]], weighted_metrics=["acc", "ce"],
        sample_weight_mode={"m": "temporal"}),
    "confusion_metrics": dict(
        optimizer="adam", loss={"a": "bce", "z": "mse"},
        metrics={"a": [kp.metrics.AUC(num_thresholds=50), kp.metrics.Precision(thresholds=0.3),
                       "recall"], "z": [kp.losses.Huber(delta=0.2), kp.losses.LogCosh]}),
    "registered_functions": dict(
        optimizer=kp.optimizers.Nadam(0.01), loss={"z": scaled_squares, "a": abs_error},
        metrics={"z": [kp.custom_metric("sq", scaled_squares), abs_error]}),
    "registered_classes": dict(
        optimizer="rmsprop", loss=ScaledAbsLoss(scale=2.0, reduction="sum"),
        metrics=[TotalAbsMetric(scale=0.5, name="tot")]),
    "execution_and_weights": dict(
        optimizer=kp.optimizers.RMSprop(0.01, rho=0.8, centered=True), loss="mse",
        loss_weights=0.25, weighted_metrics=["mse"], steps_per_execution=2, jit_compile=False,
        auto_scale_loss=False),
    "run_eagerly": dict(optimizer=kp.optimizers.Lion(0.01), loss=["mse", "mae", "mse"],
                        run_eagerly=True),
    "target_tensors": dict(optimizer="sgd", loss={"z": "mse", "a": "bce"},
                           target_tensors={"z": Y["z"], "a": Y["a"]}),
}


def _model(make_model):
    return kp.Model(make_model("heads", heads=HEADS, structure="dict"))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_round_trip_gives_equal_evaluate(make_model, backend, name):
    kwargs = CONFIGS[name]
    model = _model(make_model).compile(**kwargs)
    config = model.get_compile_config()
    text = json.dumps(config)
    fresh = _model(make_model).compile_from_config(json.loads(text))
    assert fresh.get_compile_config() == json.loads(text)
    y = None if "target_tensors" in kwargs else Y
    results = []
    for m in (model, fresh):
        if backend == "torch":  # eager steps are cheap: train, so optimizer settings matter
            m.fit(X, y, sample_weight=SW, batch_size=8, shuffle=False, verbose=0)
        results.append(m.evaluate(X, y, sample_weight=SW, batch_size=16, verbose=0,
                                  return_dict=True))
    assert results[0].keys() == results[1].keys()
    for key in results[0]:
        assert results[1][key] == pytest.approx(results[0][key], rel=1e-6, abs=1e-7), key
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_restored_optimizer_trains_the_same(make_model):
    """One config end to end with training on every backend (the rest train on torch)."""
    kwargs = dict(CONFIGS["optimizer_hyper"], loss={"z": "mse", "a": "bce"})
    model = _model(make_model).compile(**kwargs)
    fresh = _model(make_model).compile_from_config(json.loads(json.dumps(
        model.get_compile_config())))
    for _ in range(2):  # the second step reads the optimizer state of the first
        logs = [m.train_on_batch(X, Y, return_dict=True) for m in (model, fresh)]
    assert logs[1] == pytest.approx(logs[0], rel=1e-6)
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_config_content_keeps_names_structures_and_objects(make_model):
    model = _model(make_model).compile(**CONFIGS["per_output_dicts"])
    config = model.get_compile_config()
    assert set(config) == {"optimizer", "loss", "metrics", "loss_weights", "weighted_metrics",
                           "run_eagerly", "steps_per_execution", "jit_compile",
                           "auto_scale_loss", "sample_weight_mode", "target_tensors"}
    assert config["optimizer"] == "sgd"
    assert config["loss"]["z"] == "mse"
    assert config["loss"]["m"]["class_name"] == "BinaryCrossentropy"
    assert config["loss"]["m"]["config"]["label_smoothing"] == 0.1
    assert config["loss_weights"] == {"m": 3.0, "z": 0.5}
    assert config["metrics"] == {"z": ["mae", "mse"], "a": None}
    opt = _model(make_model).compile(**CONFIGS["optimizer_hyper"]).get_compile_config()
    assert opt["optimizer"]["class_name"] == "Adam"
    assert opt["optimizer"]["config"]["beta_1"] == 0.5
    assert opt["optimizer"]["config"]["clipnorm"] == 0.5
    assert _model(make_model).get_compile_config() == {}


def test_unregistered_callables_say_how_to_register(make_model):
    model = _model(make_model).compile("sgd", {"z": not_registered})
    with pytest.raises(ValueError, match=r"cannot serialise `loss\['z'\]`. Cannot serialise "
                       r"the loss function <function not_registered.*Register it with "
                       r"kp.register\(fn\)"):
        model.get_compile_config()
    model = _model(make_model).compile("sgd", "mse", metrics={"a": ["mae", not_registered]})
    with pytest.raises(ValueError, match=r"cannot serialise `metrics\['a'\]\[1\]`. .*"
                       r"not_registered.*kp.register\(fn\)"):
        model.get_compile_config()
    config = _model(make_model).compile(**CONFIGS["registered_functions"]).get_compile_config()
    config["loss"]["z"]["config"]["fn"] = "scaled_squarez"
    with pytest.raises(ValueError, match="No registered object named 'scaled_squarez'. Did you "
                       r"mean 'scaled_squares'\? Register custom callables with kp.register"):
        _model(make_model).compile_from_config(config)
    with pytest.raises(ValueError, match="empty config: the model it came from was never "
                                         "compiled"):
        _model(make_model).compile_from_config({})


def test_native_optax_optimizer_is_refused(backend):
    if backend != "jax":
        pytest.skip("an optax transformation is a JAX optimizer")
    import optax

    model = kp.Model(models.build("jax", "heads", heads=HEADS)).compile(optax.sgd(0.1), "mse")
    with pytest.raises(ValueError, match="Cannot serialise a native optax GradientTransformation"
                                         ".*Pass a name"):
        model.get_compile_config()
