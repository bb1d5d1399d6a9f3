"""Keras's ``keras/src/trainers/compile_utils_test.py``, translated case by case.

Keras tests ``CompileMetrics`` / ``CompileLoss`` directly; kompile has no such public objects, so
each case runs through ``evaluate`` on a parameter-free module whose predictions are entries of
its input (``keras_modules.packed``): two ``update_state`` calls become two batches of 3. Every
case asserts Keras's expected numbers; names follow kompile's documented rule where Keras's
unit-level names (no model, no output names) cannot apply, marked "kompile differs".
"""

from collections import namedtuple

import numpy as np
import pytest

import kompile as kp

from . import keras_modules as km

YT1 = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], np.float32)
YP1a = np.array([[0.4, 0.1], [0.2, 0.6], [0.6, 0.1]], np.float32)
YP1b = np.array([[0.3, 0.2], [0.1, 0.4], [0.2, 0.3]], np.float32)
YT2 = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]], np.float32)
YP2a = np.array([[0.4, 0.1, 0.3], [0.2, 0.6, 0.4], [0.6, 0.1, 0.8]], np.float32)
YP2b = np.array([[0.3, 0.2, 0.1], [0.5, 0.4, 0.6], [0.1, 0.8, 0.7]], np.float32)
SW = np.array([1, 0.0, 1], np.float32)
SW2 = np.concatenate([SW, SW])

# the CompileLoss cases' data
LT_A = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], np.float32)
LT_B = np.array([[0.7, 0.8], [0.9, 1.0], [1.1, 1.2]], np.float32)
LP_A = np.array([[1.2, 1.1], [1.0, 0.9], [0.8, 0.7]], np.float32)
LP_B = np.array([[0.6, 0.5], [0.4, 0.3], [0.2, 0.1]], np.float32)


def cat(*arrays):
    return np.concatenate(arrays)


def model_of(backend, pack, output_names=None, **compile_kw):
    compile_kw.setdefault("optimizer", kp.optimizers.SGD(learning_rate=0.0))
    return kp.Model(km.packed(backend, pack), output_names=output_names).compile(**compile_kw)


def ev(model, x, y, batch_size=3, **kw):
    return model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True, **kw)


# ----------------------------------------------------------------------------- CompileMetrics


def test_single_output_case(backend):
    model = model_of(backend, lambda x: x["p"], loss="mse",
                     metrics=[kp.metrics.MeanSquaredError()],
                     weighted_metrics=[kp.metrics.MeanSquaredError()])
    logs = ev(model, {"p": cat(YP1a, YP1b)}, cat(YT1, YT1), sample_weight=SW2)
    assert logs["mean_squared_error"] == pytest.approx(0.055833336, abs=1e-6)
    assert logs["weighted_mean_squared_error"] == pytest.approx(0.0725, abs=1e-6)
    # Keras's reset_state: a new evaluate starts from zero (only the second batch now)
    logs = ev(model, {"p": YP1b}, YT1, sample_weight=SW)
    mse_b = np.mean((YT1 - YP1b) ** 2)
    assert logs["mean_squared_error"] == pytest.approx(mse_b, abs=1e-6)


def test_list_output_case(backend):
    two = [kp.metrics.MeanSquaredError(), kp.metrics.MeanSquaredError()]
    model = model_of(backend, lambda x: [x["p"], x["q"]], loss="mse",
                     metrics=[list(two), list(two)], weighted_metrics=[list(two), list(two)])
    x = {"p": cat(YP1a, YP1b), "q": cat(YP2a, YP2b)}
    logs = ev(model, x, [cat(YT1, YT1), cat(YT2, YT2)], sample_weight=SW2)
    # kompile differs (names): Keras's CompileMetrics without output names logs the first
    # output's metrics unprefixed; kompile prefixes every multi-output metric with its output
    # name (output_1, output_2) and numbers duplicates _1.
    metric_keys = [k for k in logs if "loss" not in k]
    assert len(metric_keys) == 8
    assert logs["output_1_mean_squared_error"] == pytest.approx(0.055833336, abs=1e-6)
    assert logs["output_1_weighted_mean_squared_error"] == pytest.approx(0.0725, abs=1e-6)
    assert logs["output_2_mean_squared_error"] == pytest.approx(0.066666667, abs=1e-6)
    assert logs["output_2_weighted_mean_squared_error"] == pytest.approx(0.090833336, abs=1e-6)


def test_dict_output_case(backend):
    def both():
        return [kp.metrics.MeanSquaredError(), kp.metrics.MeanSquaredError(name="mse")]

    model = model_of(backend, lambda x: {"output_1": x["p"], "output_2": x["q"]}, loss="mse",
                     metrics={"output_1": both(), "output_2": both()},
                     weighted_metrics={"output_1": both(), "output_2": both()})
    x = {"p": cat(YP1a, YP1b), "q": cat(YP2a, YP2b)}
    logs = ev(model, x, {"output_1": cat(YT1, YT1), "output_2": cat(YT2, YT2)},
              sample_weight=SW2)
    want = {
        "output_1_mean_squared_error": 0.055833336, "output_2_mean_squared_error": 0.066666667,
        "output_1_mse": 0.055833336, "output_2_mse": 0.066666667,
        "output_1_weighted_mean_squared_error": 0.0725,
        "output_2_weighted_mean_squared_error": 0.090833336,
        "output_1_weighted_mse": 0.0725, "output_2_weighted_mse": 0.090833336,
    }
    assert {k: logs[k] for k in want} == pytest.approx(want, abs=1e-6)
    assert len([k for k in logs if "loss" not in k]) == 8


def test_name_conversions(backend):
    model = model_of(backend, lambda x: x["p"], loss="mse", metrics=["acc", "accuracy", "mse"])
    logs = ev(model, {"p": YP1a}, YT1)
    assert [k for k in logs if k != "loss"] == ["acc", "accuracy", "mse"]
    assert logs["acc"] == pytest.approx(1 / 3, abs=1e-6)
    assert logs["accuracy"] == pytest.approx(1 / 3, abs=1e-6)


def test_custom_metric_function(backend):
    def my_custom_metric(y_true, y_pred):
        return ((y_true - y_pred) ** 2).mean(axis=-1)

    model = model_of(backend, lambda x: x["p"], loss="mse", metrics=[my_custom_metric])
    logs = ev(model, {"p": YP1a}, YT1)
    assert model.metrics_names == ["loss", "my_custom_metric"]
    assert logs["my_custom_metric"] == pytest.approx(0.068333, abs=1e-5)


def test_list_outputs_dict_labels_uses_output_names(backend):
    model = model_of(backend, lambda x: [x["b"], x["a"]], output_names=["b", "a"], loss="mse",
                     metrics={"b": kp.metrics.MeanSquaredError(),
                              "a": kp.metrics.MeanSquaredError()})
    x = {"b": np.zeros((3, 5), np.float32), "a": np.ones((3, 2), np.float32)}
    logs = ev(model, x, {"b": np.zeros((3, 5)), "a": np.zeros((3, 2))})
    metric_keys = [k for k in model.metrics_names if "loss" not in k]
    assert metric_keys == ["b_mean_squared_error", "a_mean_squared_error"]
    assert logs["b_mean_squared_error"] == 0.0
    assert logs["a_mean_squared_error"] == pytest.approx(1.0)


def test_dict_outputs_output_names_ordering(backend):
    # Keras's output_names=["b", "a"] is the functional model's output order: here the module
    # returns its dict in that order.
    model = model_of(backend, lambda x: {"b": x["b"], "a": x["a"]}, loss="mse",
                     metrics={"a": kp.metrics.MeanAbsolutePercentageError(),
                              "b": kp.metrics.MeanSquaredError()})
    x = {"a": np.full((3, 2), 2.0, np.float32), "b": np.zeros((3, 2), np.float32)}
    logs = ev(model, x, {"a": np.ones((3, 2)), "b": np.ones((3, 2))})
    metric_keys = [k for k in model.metrics_names if "loss" not in k]
    assert metric_keys == ["b_mean_squared_error", "a_mean_absolute_percentage_error"]
    assert logs["a_mean_absolute_percentage_error"] == pytest.approx(100.0)
    assert logs["b_mean_squared_error"] == pytest.approx(1.0)


def test_dict_outputs_outputs_ordering(backend):
    model = model_of(backend, lambda x: {"a": x["a"], "b": x["b"]}, loss="mse",
                     metrics={"b": kp.metrics.MeanAbsolutePercentageError(),
                              "a": kp.metrics.MeanSquaredError()})
    x = {"a": np.full((3, 2), 2.0, np.float32), "b": np.zeros((3, 5), np.float32)}
    logs = ev(model, x, {"a": np.ones((3, 2)), "b": np.ones((3, 5))})
    metric_keys = [k for k in model.metrics_names if "loss" not in k]
    assert metric_keys == ["a_mean_squared_error", "b_mean_absolute_percentage_error"]
    assert logs["a_mean_squared_error"] == pytest.approx(1.0)
    assert logs["b_mean_absolute_percentage_error"] == pytest.approx(100.0)


def test_dict_outputs_ignore_mismatched_output_names(backend):
    model = model_of(backend, lambda x: {"a": x["a"], "b": x["b"]}, loss="mse",
                     metrics={"a": kp.metrics.MeanSquaredError(),
                              "b": kp.metrics.MeanSquaredError()})
    x = {"a": np.zeros((3, 2), np.float32), "b": np.ones((3, 5), np.float32)}
    logs = ev(model, x, {"a": np.zeros((3, 2)), "b": np.zeros((3, 5))})
    metric_keys = [k for k in model.metrics_names if "loss" not in k]
    assert metric_keys == ["a_mean_squared_error", "b_mean_squared_error"]
    assert (logs["a_mean_squared_error"], logs["b_mean_squared_error"]) == (0.0, 1.0)


def test_deeply_nested_outputs_and_metrics(backend):
    def pack(x):
        return {"a": x["a"], "b": {"c": x["c"], "d": [x["d1"], x["d2"]]}}

    metrics = {"a": kp.metrics.MeanSquaredError(name="mse_a"),
               "b": {"c": kp.metrics.MeanSquaredError(name="mse_c"),
                     "d": [kp.metrics.MeanSquaredError(name="mse_d1"),
                           kp.metrics.MeanSquaredError(name="mse_d2")]}}
    model = model_of(backend, pack, loss="mse", metrics=metrics)
    x = {"a": np.zeros((3, 2), np.float32), "c": np.ones((3, 5), np.float32),
         "d1": np.full((3, 7), 2.0, np.float32), "d2": np.full((3, 9), 3.0, np.float32)}
    y = {"a": np.zeros((3, 2)), "b": {"c": np.zeros((3, 5)),
                                      "d": [np.zeros((3, 7)), np.zeros((3, 9))]}}
    logs = ev(model, x, y)
    # kompile differs (names): Keras logs "mse_a", ... (or "dense_mse_a" with op names);
    # kompile prefixes the output's path name: a, b_c, b_d_1, b_d_2.
    want = {"a_mse_a": 0.0, "b_c_mse_c": 1.0, "b_d_1_mse_d1": 4.0, "b_d_2_mse_d2": 9.0}
    assert [k for k in model.metrics_names if "loss" not in k] == list(want)
    assert {k: logs[k] for k in want} == pytest.approx(want)


# ----------------------------------------------------------------------------- CompileLoss


def test_loss_single_output_case(backend):
    model = model_of(backend, lambda x: x["p"], loss=kp.losses.MeanSquaredError())
    assert ev(model, {"p": YP1a}, YT1)["loss"] == pytest.approx(0.068333, abs=1e-5)


def test_loss_single_output_case_with_crossentropy_loss(backend):
    model = model_of(backend, lambda x: x["p"], loss="crossentropy")
    assert ev(model, {"p": YP1a}, YT1)["loss"] == pytest.approx(0.706595, abs=1e-5)


@pytest.mark.parametrize("broadcast", [True, False])
def test_loss_list_output_case(backend, broadcast):
    model = model_of(backend, lambda x: [x["a"], x["b"]],
                     loss="mse" if broadcast else ["mse", "mse"])
    logs = ev(model, {"a": LP_A, "b": LP_B}, [LT_A, LT_B])
    assert logs["loss"] == pytest.approx(0.953333, abs=1e-5)


@pytest.mark.parametrize("broadcast", [True, False])
def test_loss_dict_output_case(backend, broadcast):
    model = model_of(backend, lambda x: {"a": x["a"], "b": x["b"]},
                     loss="mse" if broadcast else {"a": "mse", "b": "mse"})
    sw = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([3.0, 2.0, 1.0])}
    logs = ev(model, {"a": LP_A, "b": LP_B}, {"a": LT_A, "b": LT_B}, sample_weight=sw)
    assert logs["loss"] == pytest.approx(1.266666, abs=1e-5)


def test_list_loss_dict_data(backend):
    model = model_of(backend, lambda x: [x["b"], x["a"]], output_names=["b", "a"],
                     loss=["mse", "mae"])
    logs = ev(model, {"a": LP_A, "b": LP_B}, {"a": LT_A, "b": LT_B})
    assert logs["loss"] == pytest.approx(1.07666, abs=1e-5)


def _abd(x):
    return {"a": {"c": x["c"], "d": x["d"]}, "b": x["b"]}


X_CDB = {"c": LP_A, "d": LP_B, "b": LP_B}
Y_CDB = {"a": {"c": LT_A, "d": LT_B}, "b": LT_B}


def test_struct_loss(backend):
    model = model_of(backend, _abd, loss={"a": {"c": "mse", "d": "mae"}})
    assert ev(model, X_CDB, Y_CDB)["loss"] == pytest.approx(1.07666, abs=1e-5)


def test_struct_loss_valid_weights(backend):
    # as Keras: arrays as one output's weight (np.ones((2,)) / np.zeros((2,))) weigh it by
    # their (equal) entries; numbers give the same total
    model = model_of(backend, lambda x: {"a": x["a"], "b": x["b"]},
                     loss={"a": "mse", "b": "mse"}, loss_weights={"a": 1.0, "b": 0.0})
    x = {"a": np.array([3.0, 4.0], np.float32), "b": np.array([3.0, 4.0], np.float32)}
    logs = ev(model, x, {"a": np.array([1.0, 2.0]), "b": np.array([1.0, 2.0])}, batch_size=2)
    assert logs["loss"] == pytest.approx(4.0)
    # per-output logs are unweighted
    assert (logs["a_loss"], logs["b_loss"]) == pytest.approx((4.0, 4.0))
    model = model_of(backend, lambda x: {"a": x["a"], "b": x["b"]},
                     loss={"a": "mse", "b": "mse"},
                     loss_weights={"a": np.ones((2,)), "b": np.zeros((2,))})
    logs = ev(model, x, {"a": np.array([1.0, 2.0]), "b": np.array([1.0, 2.0])}, batch_size=2)
    assert logs["loss"] == pytest.approx(4.0)
    with pytest.raises(TypeError, match="loss_weights"):  # unequal entries: no one weight
        model_of(backend, lambda x: x, loss={"a": "mse", "b": "mse"},
                 loss_weights={"a": np.array([1.0, 2.0]), "b": np.zeros((2,))})


def test_struct_loss_invalid_weights(backend):
    model_kw = dict(loss={"a": {"c": "mse", "d": "mae"}}, loss_weights=[1])
    with pytest.raises(ValueError, match="loss_weights"):
        model = model_of(backend, _abd, **model_kw)
        ev(model, X_CDB, Y_CDB)


def test_struct_loss_indice_path(backend):
    model = model_of(backend, lambda x: {"a": (x["c"], x["d"]), "b": x["b"]},
                     loss={"a": ["mse", "mae"]})
    y = {"a": (LT_A, LT_B), "b": LT_B}
    assert ev(model, X_CDB, y)["loss"] == pytest.approx(1.07666, abs=1e-5)


Point = namedtuple("Point", ["x", "y"])


def test_struct_loss_namedtuple(backend):
    model = model_of(backend, lambda x: {"a": Point(x["c"], x["d"]), "b": x["b"]},
                     loss={"a": Point("mse", "mae")})
    y = {"a": Point(LT_A, LT_B), "b": LT_B}
    assert ev(model, X_CDB, y)["loss"] == pytest.approx(1.07666, abs=1e-5)


def test_struct_loss_invalid_path(backend):
    # kompile differs (error type): Keras raises KeyError; kompile raises its own
    # ValueError/TypeError naming the output ('b' is a leaf: no 'd' below it).
    model = model_of(backend, _abd, loss={"a": {"c": "mse"}, "b": {"d": "mae"}})
    with pytest.raises((ValueError, TypeError), match="'b'"):
        ev(model, X_CDB, Y_CDB)


def test_different_container_types(backend):
    def pack(x):
        return [({"a": x["a"]}, {"b": [(x["b"],), x["c"]]})]

    one = np.ones((1, 1), np.float32)
    x = {"a": one, "b": 2 * one, "c": 3 * one}
    y_true = ([{"a": one}, {"b": ([2 * one], 3 * one)}],)
    model = model_of(backend, pack, loss="mse")
    assert ev(model, x, y_true, batch_size=1)["loss"] == 0.0


def test_structure_mismatch(backend):
    model = model_of(backend, lambda x: [x["a"], x["b"]], output_names=["a", "b"],
                     loss=["mse", "mse"])
    one = np.ones((1, 1), np.float32)
    with pytest.raises(ValueError):
        ev(model, {"a": one, "b": one}, [one], batch_size=1)


@pytest.mark.parametrize("loss_conf", [["mse", None, None], [None, "mse", None],
                                       [None, None, "mse"], [None, "mse", "mse"],
                                       ["mse", None, "mse"]])
def test_y_true_partial_y_pred_span(backend, loss_conf):
    x = {"a": np.zeros((320, 3), np.float32), "b": np.ones((320, 3), np.float32),
         "c": np.full((320, 3), 2.0, np.float32)}
    preds = [x["a"], x["b"], x["c"]]
    y_true = [p for p, loss in zip(preds, loss_conf) if loss is not None]
    y_true = y_true[0] if len(y_true) == 1 else y_true
    model = model_of(backend, lambda x: [x["a"], x["b"], x["c"]], output_names=["a", "b", "c"],
                     loss=loss_conf)
    assert ev(model, x, y_true, batch_size=320)["loss"] == 0.0
