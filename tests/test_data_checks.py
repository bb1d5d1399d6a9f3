"""Checks at the door (issue 13 items 2-5): arguments, non-finite values, sparse labels,
empty data and non-numeric arrays get kompile's own errors naming the argument, on both
backends, before any step runs."""

import warnings

import numpy as np
import pytest

import kompile as kp

from . import models


def _data(n=16):
    r = np.random.default_rng(0)
    x = r.normal(size=(n, 4)).astype(np.float32)
    return x, (x @ r.normal(size=(4, 1))).astype(np.float32)


def _model(backend, loss="mse", kind="linear", **kw):
    return kp.Model(models.build(backend, kind, **kw)).compile(kp.optimizers.SGD(0.01), loss)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"batch_size": True}, TypeError, r"`batch_size` must be an int or None; received True"),
    ({"batch_size": 0}, ValueError, r"`batch_size` must be >= 1; received 0"),
    ({"batch_size": 2.0}, TypeError, r"`batch_size` must be an int"),
    ({"epochs": "3"}, TypeError, r"`epochs` must be an int; received '3'"),
    ({"epochs": -1}, ValueError, r"`epochs` must be >= 0"),
    ({"validation_split": "0.1"}, TypeError, r"`validation_split` must be a float in \[0, 1\)"),
    ({"validation_split": 1.0}, ValueError, r"`validation_split` must be a float in \[0, 1\)"),
    ({"validation_freq": 0}, ValueError, r"`validation_freq` must be a positive int .* received 0"),
    ({"validation_freq": [1, "2"]}, TypeError, r"`validation_freq` .* holds '2'"),
    ({"steps_per_epoch": 0}, ValueError, r"`steps_per_epoch` must be >= 1"),
    ({"validation_steps": 1.5}, TypeError, r"`validation_steps` must be an int or None"),
    ({"initial_epoch": -2}, ValueError, r"`initial_epoch` must be >= 0"),
    ({"verbose": 3}, ValueError, r"`verbose` must be 0, 1, 2 or 'auto'; received 3"),
    ({"verbose": "loud"}, ValueError, r"`verbose` must be 0, 1, 2 or 'auto'"),
    ({"shuffle": "yes"}, TypeError, r"`shuffle` must be True or False"),
    ({"validation_batch_size": -4}, ValueError, r"`validation_batch_size` must be >= 1"),
    ({"class_weight": {0: float("nan")}}, ValueError, r"`class_weight` holds a non-finite"),
    ({"class_weight": {0: "1"}}, TypeError, r"`class_weight` must map class indices to numbers"),
])
def test_fit_arguments(backend, kwargs, error, match):
    x, y = _data()
    with pytest.raises(error, match=match):
        _model(backend).fit(x, y, **kwargs)


@pytest.mark.parametrize("call", ["evaluate", "predict"])
def test_evaluate_and_predict_arguments(backend, call):
    x, y = _data()
    model = _model(backend)
    args = (x, y) if call == "evaluate" else (x,)
    with pytest.raises(TypeError, match="`batch_size` must be an int or None; received True"):
        getattr(model, call)(*args, batch_size=True)
    with pytest.raises(ValueError, match="`steps` must be >= 1; received 0"):
        getattr(model, call)(*args, steps=0)
    with pytest.raises(TypeError, match="`verbose` must be 0, 1, 2 or 'auto'"):
        getattr(model, call)(*args, verbose=None)


def test_non_finite_values(backend):
    x, y = _data()
    bad_y = y.copy()
    bad_y[5, 0], bad_y[9, 0] = np.nan, np.inf
    model = _model(backend)
    with pytest.raises(ValueError, match=r"`y` holds 2 non-finite value\(s\) .* at index "
                                         r"\(5, 0\): nan"):
        model.fit(x, bad_y, verbose=0)
    sw = np.ones(16, np.float32)
    sw[3] = np.nan
    with pytest.raises(ValueError, match=r"`sample_weight` holds 1 non-finite .* \(3,\)"):
        model.fit(x, y, sample_weight=sw, verbose=0)
    with pytest.raises(ValueError, match=r"`validation_data\[1\]` holds 2 non-finite"):
        model.fit(x, y, validation_data=(x, bad_y), verbose=0)
    bad_x = x.copy()
    bad_x[7, 2] = -np.inf
    with pytest.warns(UserWarning, match=r"`x` holds 1 non-finite .* \(7, 2\): -inf"):
        model.evaluate(bad_x, y, verbose=0)
    with pytest.raises(ValueError, match="`loss_weights`.*non-finite|finite"):
        kp.Model(models.build(backend, "linear")).compile("sgd", "mse",
                                                          loss_weights=float("nan"))
    with pytest.raises(ValueError, match="`learning_rate`.*finite"):
        kp.optimizers.Adam(learning_rate=float("inf"))


def test_nan_targets_for_a_custom_loss_only_warn(backend):
    x, y = _data()
    y[2, 0] = np.nan

    def masked_mse(y_true, y_pred):  # NaN targets mean "missing"
        from kompile.ops import namespace

        xp = namespace(y_pred)
        ok = ~xp.isnan(y_true)
        return xp.sum(xp.where(ok, (y_pred - xp.where(ok, y_true, 0.0)) ** 2, 0.0), axis=-1)

    model = kp.Model(models.build(backend, "linear")).compile("sgd", masked_mse)
    with pytest.warns(UserWarning, match=r"`y` holds 1 non-finite"):
        loss = model.evaluate(x, y, verbose=0)
    assert np.isfinite(loss)


@pytest.mark.parametrize("labels, match", [
    ([0, 1, 2, 3], r"the value 3 at index \(3,\) is outside \[0, 3\)"),
    ([0, -1, 2, 1], r"the value -1 at index \(1,\) is outside \[0, 3\)"),
    ([0.0, 1.5, 2.0, 1.0], r"the value 1.5 at index \(1,\) has a fractional part"),
])
def test_sparse_labels_out_of_range(backend, labels, match):
    x = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    model = _model(backend, "sparse_categorical_crossentropy", kind="mlp", n_out=3)
    with pytest.raises(ValueError, match=r"`y` holds 1 invalid sparse label\(s\) .*" + match):
        model.fit(x, np.array(labels), verbose=0)
    with pytest.raises(ValueError, match=r"`validation_data\[1\]` holds 1 invalid sparse"):
        model.fit(x, np.array([0, 1, 2, 1]), validation_data=(x, np.array(labels)), verbose=0)
    ignored = kp.losses.SparseCategoricalCrossentropy(ignore_class=-1)
    model = _model(backend, ignored, kind="mlp", n_out=3)
    model.evaluate(x, np.array([0, -1, 2, 1]), verbose=0)  # the ignored class is fine


def test_empty_data(backend):
    x, y = _data()
    model = _model(backend)
    with pytest.raises(ValueError, match="`x` holds 0 samples"):
        model.fit(x[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match="`x` holds 0 samples"):
        model.evaluate(x[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match="`validation_data` holds 0 samples"):
        model.fit(x, y, validation_data=(x[:0], y[:0]), verbose=0)
    out = model.predict(x[:0], verbose=0)
    assert out.shape == (0, 1)
    multi = kp.Model(models.build(backend, "multi"))
    out = multi.predict(x[:0], verbose=0)
    full = multi.predict(x, verbose=0)
    assert list(out) == list(full)
    assert {k: v.shape for k, v in out.items()} == {k: (0, *v.shape[1:]) for k, v in full.items()}


def test_non_numeric_arrays(backend):
    x, y = _data(4)
    model = _model(backend)
    with pytest.raises(TypeError, match=r"`x` holds strings \(dtype <U1\)"):
        model.fit(np.array([["a"] * 4] * 4), y, verbose=0)
    with pytest.raises(TypeError, match=r"`y` holds Python objects"):
        model.fit(x, np.array([None] * 4, dtype=object), verbose=0)
    with pytest.raises(TypeError, match="Argument `x` must be arrays or an iterable"):
        model.predict("abc", verbose=0)


def test_finite_check_is_one_pass_and_silent_on_clean_data(backend):
    x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _model(backend).fit(x, y, verbose=0, validation_split=0.25)


def test_to_categorical_matches_keras():
    keras = pytest.importorskip("keras")
    for labels, k in [([0, 1, 2, 3], None), ([[1], [0], [2]], 4), (np.array([[0, 2], [1, 1]]), 3),
                      (np.array([2.0, 0.0]), None)]:
        got = kp.utils.to_categorical(labels, num_classes=k)
        want = keras.utils.to_categorical(labels, num_classes=k)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(kp.utils.to_categorical(torch.tensor([1, 0])),
                                  [[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match=r"the label 3, outside \[0, 3\)"):
        kp.utils.to_categorical([0, 3], num_classes=3)
    with pytest.raises(ValueError, match="the label -1"):
        kp.utils.to_categorical([0, -1])
    with pytest.raises(ValueError, match="whole class indices; received 0.5"):
        kp.utils.to_categorical([0.5])
    with pytest.raises(TypeError, match="`num_classes` must be an int or None"):
        kp.utils.to_categorical([0], num_classes="3")


def test_integer_x_into_a_float_torch_module():
    torch = pytest.importorskip("torch")
    model = kp.Model(torch.nn.Linear(4, 1)).compile("sgd", "mse")
    x = np.arange(8).reshape(2, 4)
    with pytest.raises(TypeError, match=r"failed on `x` with integer arrays \(x: int64\).*"
                                        r"x.astype\('float32'\)"):
        model.predict(x, verbose=0)
    with pytest.raises(TypeError, match="integer arrays"):
        model.fit(x, np.zeros((2, 1), np.float32), verbose=0)
    emb = kp.Model(torch.nn.Embedding(10, 3))  # integer inputs stay integer: embeddings work
    assert emb.predict(x, verbose=0).shape == (2, 4, 3)
    with pytest.raises(TypeError, match=r"with float64 arrays \(x: float64\).*x.float\(\)"):
        model.predict(torch.ones(2, 4, dtype=torch.float64), verbose=0)


def test_sparse_labels_of_one_output_among_several(backend):
    x = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    model = kp.Model(models.build(backend, "multi")).compile(
        "sgd", {"m": "sparse_categorical_crossentropy", "z": "mse"})
    full = model.predict(x, verbose=0)
    classes = full["m"].shape[-1]
    y = {"m": np.array([0, 1, classes, 0]), "z": np.zeros((4, *full["z"].shape[1:]), np.float32)}
    with pytest.raises(ValueError, match=rf"`y` for output 'm' holds 1 invalid sparse label\(s\)"
                                         rf".* the value {classes} at index \(2,\)"):
        model.fit(x, y, verbose=0)


def test_bad_validation_data_is_named(backend):
    """Errors about validation targets name `validation_data`, not `y` alone (found porting
    Keras's trainer tests)."""
    model = _model(backend, n_out=3)
    x, y = np.ones((20, 4), np.float32), np.zeros((20, 3), np.float32)
    with pytest.raises(ValueError, match=r"In `validation_data`: `y` .* shape \(5,\)"):
        model.fit(x, y, validation_data=(x, np.zeros((20, 5), np.float32)), verbose=0)
    with pytest.raises(ValueError, match="`validation_data` as a tuple .* one entry"):
        model.fit(x, y, validation_data=(x,), verbose=0)
