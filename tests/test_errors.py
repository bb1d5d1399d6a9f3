"""Every structure and weighting error of SPEC sections 3-4, with its message pinned.

Each message must name the argument, show what was expected (the output names) and
print the structure received (arrays as shapes).
"""

import re

import numpy as np
import pytest

import kompile as kp

N = 4
X = {"z": np.ones((N, 3), np.float32), "a": np.ones((N, 1), np.float32)}
Y = {"z": np.zeros((N, 3), np.float32), "a": np.zeros((N, 1), np.float32)}
NAMES = re.escape("['z', 'a']")


def passthrough(make_model, names=("z", "a"), structure="dict", **kw):
    kw.setdefault("optimizer", "sgd")
    module = make_model("passthrough", names=names, structure=structure)
    return kp.Model(module).compile(**kw)


def ev(model, x=X, y=Y, **kw):
    return model.evaluate(x, y, batch_size=N, verbose=0, **kw)


# ----------------------------------------------------------------------------- compile()


def test_compile_time_errors(make_model):
    module = make_model("passthrough", names=("z", "a"), structure="dict")
    model = kp.Model(module)
    with pytest.raises(ValueError, match="Unknown loss 'msee'. Did you mean 'mse'"):
        model.compile("sgd", {"z": "msee"})
    with pytest.raises(TypeError, match="`loss_weights` must be a number .*received 'ten'"):
        model.compile("sgd", "mse", loss_weights={"z": "ten"})
    with pytest.raises(TypeError, match="`metrics` must be a list of metrics or a dict keyed "
                                        "by output name; received 'mae'"):
        model.compile("sgd", "mse", metrics="mae")
    with pytest.raises(TypeError, match="`weighted_metrics` must be a list"):
        model.compile("sgd", "mse", weighted_metrics="mae")
    with pytest.raises(ValueError, match="`sample_weight_mode` must be None or 'temporal' .*"
                                         "received 'temporl'"):
        model.compile("sgd", "mse", sample_weight_mode={"z": "temporl"})
    with pytest.raises(ValueError, match=r"Invalid `reduction`: expected one of .*'sum'.*"
                                         "received 'avg'"):
        model.compile("sgd", kp.losses.MeanSquaredError(reduction="avg"))


# ----------------------------------------------------------------------------- pairing


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(loss={"z": "mse", "q": "mae"}), ValueError,
     r"`loss` has keys \['q'\] that are not output names. The model's outputs are "
     + NAMES + r"; received loss=\{'z': 'mse', 'q': 'mae'\}"),
    (dict(loss=["mse", "mse", "mse"]), ValueError,
     r"`loss` is a list of 3 entries but the model has 2 output\(s\) " + NAMES
     + r"; received loss=\['mse', 'mse', 'mse'\]. Give one entry per output"),
    (dict(loss={"z": {"q": "mse"}}), TypeError,
     "`loss` for output 'z' must be a loss, a list of losses or None; the model's outputs are "
     + NAMES + r"; received loss=\{'z': \{'q': 'mse'\}\}"),
    (dict(loss="mse", loss_weights={"zz": 2.0}), ValueError,
     r"`loss_weights` has keys \['zz'\] that are not output names. Did you mean 'z'\? .*"
     + NAMES + r"; received loss_weights=\{'zz': 2.0\}"),
    (dict(loss="mse", loss_weights=[1.0, 2.0, 3.0]), ValueError,
     r"`loss_weights` is a list of 3 entries .* " + NAMES
     + r"; received loss_weights=\[1.0, 2.0, 3.0\]"),
    (dict(loss="mse", metrics={"z": ["mae"], "m": ["mse"]}), ValueError,
     r"`metrics` has keys \['m'\] that are not output names.*" + NAMES
     + r"; received metrics=\{'z': \['mae'\], 'm': \['mse'\]\}"),
    (dict(loss="mse", metrics=[["mae"], None, "mse"]), ValueError,
     r"`metrics` has per-output entries \(lists or None\) but 3 entries for 2 output\(s\) "
     + NAMES + r"; received metrics=\[\['mae'\], None, 'mse'\]"),
    (dict(loss="mse", weighted_metrics=["mae", ["mse"], "mae"]), ValueError,
     r"`weighted_metrics` has per-output entries .* 3 entries for 2 output\(s\) " + NAMES),
    (dict(loss="mse", metrics={"z": {"a": "mae"}}), TypeError,
     "`metrics` for output 'z' must be a metric, a list of metrics or None; the model's "
     r"outputs are " + NAMES + r"; received metrics=\{'z': \{'a': 'mae'\}\}"),
    (dict(loss="mse", sample_weight_mode={"q": "temporal"}), ValueError,
     r"`sample_weight_mode` has keys \['q'\] that are not output names.*" + NAMES),
    (dict(loss="mse", sample_weight_mode=["temporal"]), ValueError,
     r"`sample_weight_mode` is a list of 1 entries but the model has 2 output\(s\) " + NAMES),
    (dict(loss="mse", sample_weight_mode="temporal"), ValueError,
     r"`sample_weight_mode`='temporal' for output 'z' needs an output of rank >= 3 "
     r"\(batch, timesteps, features\); the output has shape \(batch, 3\). The model's "
     "outputs are " + NAMES),
])
def test_structure_errors_at_the_first_batch(make_model, kwargs, error, pattern):
    model = passthrough(make_model, **kwargs)
    with pytest.raises(error, match=pattern):
        ev(model)


@pytest.mark.parametrize("data, error, pattern", [
    (dict(y=Y["z"]), ValueError,
     r"`y` is a single array array\(4, 3\) but the model has outputs " + NAMES
     + r"; give a list \(by position\) or a dict \(by output name\)"),
    (dict(y={"z": Y["z"], "q": Y["a"]}), ValueError,
     r"`y` has keys \['q'\] that are not output names.*" + NAMES
     + r"; received y=\{'z': array\(4, 3\), 'q': array\(4, 1\)\}"),
    (dict(y=[Y["z"]]), ValueError,
     r"`y` is a list of 1 entries but the model has 2 output\(s\) " + NAMES
     + r"; received y=\[array\(4, 3\)\]"),
    (dict(y={"z": Y["z"]}), ValueError,
     "No target `y` was given for output 'a', which has a loss or metrics "
     r"\(the model's outputs are " + NAMES + r"\)"),
    (dict(y={"z": Y["z"], "a": np.zeros((N, 2))}), ValueError,
     r"`y` for output 'a' has per-sample shape \(2,\) but the output has per-sample shape "
     r"\(1,\), which the loss 'mse' cannot pair with it \(the model's outputs are "
     + NAMES + r"\)"),
    (dict(sample_weight=[np.ones(N)] * 3), ValueError,
     r"`sample_weight` is a list of 3 entries but the model has 2 output\(s\) " + NAMES
     + r"; received sample_weight=\[array\(4,\), array\(4,\), array\(4,\)\]"),
    (dict(sample_weight={"zz": np.ones(N)}), ValueError,
     r"`sample_weight` has keys \['zz'\] that are not output names. Did you mean 'z'\?.*"
     + NAMES + r"; received sample_weight=\{'zz': array\(4,\)\}"),
    (dict(sample_weight={"z": np.ones((N, 3))}), ValueError,
     r"`sample_weight` for output 'z' has per-sample shape \(3,\) but the loss values have "
     r"per-sample shape \(\): give weights of shape \(batch,\). The model's outputs are "
     + NAMES),
])
def test_data_errors(make_model, data, error, pattern):
    model = passthrough(make_model, loss="mse")
    with pytest.raises(error, match=pattern):
        ev(model, y=data.get("y", Y), sample_weight=data.get("sample_weight"))


def test_temporal_mode_needs_2d_weights(make_model):
    x = {"seq": np.ones((N, 3, 2), np.float32), "vec": np.ones((N, 2), np.float32)}
    y = {k: np.zeros_like(v) for k, v in x.items()}
    model = passthrough(make_model, names=("seq", "vec"), loss="mse",
                        sample_weight_mode={"seq": "temporal"})
    with pytest.raises(ValueError, match=re.escape(
            "`sample_weight_mode`='temporal' for output 'seq' expects 2-D `sample_weight` of "
            "shape (batch, 3) (batch, timesteps); received shape (4,). The model's outputs are "
            "['seq', 'vec']")):
        ev(model, x, y, sample_weight=np.ones(N))
    ev(model, x, y, sample_weight={"seq": np.ones((N, 3)), "vec": np.ones(N)})  # fine


def test_class_weight_errors(make_model):
    model = passthrough(make_model, loss="mse")
    with pytest.raises(ValueError, match=r"`class_weight` for a model with outputs " + NAMES
                       + r" must be a dict of dicts keyed by output name; received "
                       r"class_weight=\{0: 1.0, 1: 2.0\}"):
        model.fit(X, Y, class_weight={0: 1.0, 1: 2.0}, verbose=0)
    with pytest.raises(ValueError, match=r"`class_weight` has keys \['q'\] that are not output "
                       r"names.*" + NAMES + r"; received class_weight=\{'q': \{0: 2.0\}\}"):
        model.fit(X, Y, class_weight={"q": {0: 2.0}}, verbose=0)
    with pytest.raises(ValueError, match="`class_weight` for output 'z' must map integer class "
                       r"indices to weights; received keys \['cat'\]"):
        model.fit(X, Y, class_weight={"z": {"cat": 2.0}}, verbose=0)
    with pytest.raises(TypeError, match=r"`class_weight` must be a dict mapping class index -> "
                       r"weight .*received \[1.0, 2.0\]"):
        model.train_on_batch(X, Y, class_weight=[1.0, 2.0])
    model = passthrough(make_model, loss={"z": "mse"})
    with pytest.raises(ValueError, match="`class_weight` for output 'a' needs targets `y` for "
                       "that output; the model's outputs are " + NAMES):
        model.fit(X, {"z": Y["z"]}, class_weight={"a": {0: 2.0}}, verbose=0)


def test_target_tensors_errors(make_model):
    model = passthrough(make_model, loss="mse", target_tensors=Y)
    with pytest.raises(ValueError, match="`y` was given but the model was compiled with "
                                         "`target_tensors`; pass one or the other"):
        model.fit(X, Y, verbose=0)
    with pytest.raises(ValueError, match="`target_tensors` hold 4 samples but `x` has 2; they "
                                         "must match"):
        model.evaluate({k: v[:2] for k, v in X.items()}, verbose=0)
    with pytest.raises(ValueError, match="`target_tensors` need `x` as arrays; received a "
                                         "generator"):
        model.fit((x for x in [X]), verbose=0)


def test_no_loss_and_output_names_errors(make_model):
    model = passthrough(make_model, loss={"z": None})
    with pytest.raises(ValueError, match="compiled without a loss, so fit\\(\\) has nothing to "
                                         "minimise. Pass `loss=` to compile"):
        model.fit(X, Y, verbose=0)
    module = make_model("passthrough", names=("z", "a"), structure="tuple")
    with pytest.raises(ValueError, match=r"`output_names` has 3 names but the module returns 2 "
                                         r"outputs: \(array\(4, 3\), array\(4, 1\)\)"):
        kp.Model(module, output_names=["p", "q", "r"]).predict(X, verbose=0)
    module = make_model("passthrough", names=("z", "a"), structure="dict")
    with pytest.warns(UserWarning, match=re.escape(  # as Keras: the dict's keys win
            "`output_names` ['a', 'z'] is ignored: the module returns a dict, whose keys "
            "['z', 'a'] name the outputs")):
        out = kp.Model(module, output_names=["a", "z"]).predict(X, verbose=0)
    assert list(out) == ["z", "a"]


def test_metric_arguments_are_named_in_errors():
    """Direct metric use: a class_id past the predictions' columns, a non-numeric threshold and
    a sample_weight that fits no shape get kompile's errors naming the argument (they were an
    IndexError, a comparison TypeError and a NumPy broadcast error)."""
    with pytest.raises(ValueError, match=r"Invalid `class_id`: 2 names a column .* which have 1"):
        kp.metrics.Precision(class_id=2).update_state(np.array([1, 0, 1.0]),
                                                      np.array([0.9, 0.2, 0.7]))
    with pytest.raises(ValueError, match=r"Invalid `threshold`: .* received '0.5'"):
        kp.metrics.FBetaScore(threshold="0.5")
    with pytest.raises(ValueError, match=r"`sample_weight` of shape \(4, 3, 2\) does not fit"):
        kp.metrics.BinaryAccuracy().update_state(np.ones((4, 3)), np.full((4, 3), 0.7),
                                                 sample_weight=np.ones((4, 3, 2)))
