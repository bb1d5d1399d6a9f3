"""Multi-output and multi-input models, by hand-computed numbers (SPEC sections 1, 3, 4, 6).

Most tests use the ``passthrough`` model, whose outputs are entries of its dict input, so
every expected value is a few lines of arithmetic. Outputs always differ in shape.
"""

import numpy as np
import pytest

import kompile as kp

from . import models

N = 4
Z = np.repeat(np.arange(1, 5, dtype=np.float32)[:, None], 3, axis=1)  # (4, 3): rows 1..4
A = np.array([[0], [2], [0], [2]], np.float32)                        # (4, 1)
X = {"z": Z, "a": A}
Y = {"z": np.zeros_like(Z), "a": np.zeros_like(A)}
# per-sample mae / mse against zeros: z [1, 2, 3, 4] / [1, 4, 9, 16]; a [0, 2, 0, 2] / [0, 4, 0, 4]
SW = np.array([1, 1, 0, 0], np.float32)


def passthrough(make_model, names=("z", "a"), structure="dict", output_names=None, **kw):
    kw.setdefault("optimizer", kp.optimizers.SGD(learning_rate=0.0))
    module = make_model("passthrough", names=names, structure=structure)
    return kp.Model(module, output_names=output_names).compile(**kw)


def ev(model, x=X, y=Y, **kw):
    return model.evaluate(x, y, batch_size=N, verbose=0, return_dict=True, **kw)


# ----------------------------------------------------------------------------- names


def test_output_names_follow_the_module_not_sorted_keys(make_model):
    model = kp.Model(make_model("multi")).compile("sgd", "mse", metrics=["mae"])
    x = np.ones((6, 4), np.float32)
    y = {"m": np.zeros((6, 5)), "a": np.zeros((6, 1)), "z": np.zeros((6, 3))}
    model.evaluate(x, y, verbose=0)
    assert model.metrics_names == ["loss", "z_loss", "a_loss", "m_loss", "z_mae", "a_mae",
                                   "m_mae"]
    pred = model.predict(x, verbose=0)
    assert list(pred) == ["z", "a", "m"]
    assert [p.shape for p in pred.values()] == [(6, 3), (6, 1), (6, 5)]

    model = kp.Model(make_model("tuple")).compile("sgd", "mse")
    model.evaluate(x, [y["z"], y["a"], y["m"]], verbose=0)
    assert model.metrics_names == ["loss", "output_1_loss", "output_2_loss", "output_3_loss"]
    assert isinstance(model.predict(x, verbose=0), tuple)

    model = kp.Model(make_model("tuple"), output_names=["p", "q", "r"]).compile(
        "sgd", {"r": "mse", "p": "mae"})
    model.evaluate(x, {"p": y["z"], "r": y["m"]}, verbose=0)
    assert model.metrics_names == ["loss", "p_loss", "r_loss"]


def test_one_output_in_a_dict_is_named_but_not_prefixed(make_model):
    model = passthrough(make_model, names=("z",), loss="mse", metrics=["mae"])
    assert ev(model, {"z": Z}, {"z": Y["z"]}) == pytest.approx({"loss": 7.5, "mae": 2.5})
    model = passthrough(make_model, names=("z",), loss={"z": "mae"}, metrics={"z": "mse"})
    assert ev(model, {"z": Z}, [Y["z"]]) == pytest.approx({"loss": 2.5, "mse": 7.5})


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("structure", ["dict", "tuple"])
def test_loss_weights_dict_matches_by_name_41_not_14(make_model, structure):
    """SPEC 3: outputs [z, a], loss=["mse", "mse"], z_loss=4, a_loss=1, weights z:10 a:1."""
    x = {"z": np.full((N, 3), 2.0, np.float32), "a": np.ones((N, 1), np.float32)}
    names = ["z", "a"] if structure == "tuple" else None
    want = {"loss": 41.0, "z_loss": 4.0, "a_loss": 1.0}
    for weights in ({"z": 10, "a": 1}, {"a": 1, "z": 10}, [10, 1], {"z": 10}):
        model = passthrough(make_model, structure=structure, output_names=names,
                            loss=["mse", "mse"], loss_weights=weights)
        assert ev(model, x) == pytest.approx(want), weights
    model = passthrough(make_model, structure=structure, output_names=names,
                        loss=["mse", "mse"], loss_weights=[1, 10])
    assert ev(model, x)["loss"] == pytest.approx(14.0)
    # outputs in the other order: a dict still follows the names, a list the positions
    model = passthrough(make_model, names=("a", "z"), structure=structure,
                        output_names=names and ["a", "z"], loss=["mse", "mse"],
                        loss_weights={"z": 10, "a": 1})
    assert ev(model, x)["loss"] == pytest.approx(41.0)
    model = passthrough(make_model, names=("a", "z"), structure=structure,
                        output_names=names and ["a", "z"], loss=["mse", "mse"],
                        loss_weights=[10, 1])
    assert ev(model, x)["loss"] == pytest.approx(14.0)
    model = passthrough(make_model, loss="mse", loss_weights=2.0)
    assert ev(model, x) == pytest.approx({"loss": 10.0, "z_loss": 4.0, "a_loss": 1.0})


def test_loss_forms_and_none_entries(make_model):
    cases = [
        ("mse", {"loss": 7.5 + 2.0, "z_loss": 7.5, "a_loss": 2.0}),
        (["mae", "mse"], {"loss": 2.5 + 2.0, "z_loss": 2.5, "a_loss": 2.0}),
        ({"a": "mae", "z": "mse"}, {"loss": 7.5 + 1.0, "z_loss": 7.5, "a_loss": 1.0}),
        ({"z": "mse"}, {"loss": 7.5}),                 # partial dict: `a` has no loss
        ([None, "mae"], {"loss": 1.0}),
        ({"a": None, "z": kp.losses.MeanAbsoluteError(reduction="sum")}, {"loss": 10.0}),
    ]
    for loss, want in cases:
        model = passthrough(make_model, loss=loss)
        assert ev(model) == pytest.approx(want), loss
    # per-output logs hold the unweighted (by loss weight) but sample-weighted value
    model = passthrough(make_model, loss="mse", loss_weights={"z": 3.0})
    assert ev(model, sample_weight=SW) == pytest.approx(
        {"loss": 3 * 1.25 + 1.0, "z_loss": 1.25, "a_loss": 1.0})


# ----------------------------------------------------------------------------- metrics


def test_metric_forms_names_and_dedup(make_model):
    cases = [
        (["mae"], {"z_mae": 2.5, "a_mae": 1.0}),                       # one list for all
        (["mae", "mse"], {"z_mae": 2.5, "a_mse": 2.0}),                # one entry per output
        (["mae", "mse", "mae"], {"z_mae": 2.5, "z_mse": 7.5, "z_mae_1": 2.5, "a_mae": 1.0,
                                 "a_mse": 2.0, "a_mae_1": 1.0}),
        ([["mae", "mse"], None], {"z_mae": 2.5, "z_mse": 7.5}),
        ({"a": "mse"}, {"a_mse": 2.0}),
        ({"a": ["mse", kp.metrics.MeanAbsoluteError(name="abs")], "z": None},
         {"a_mse": 2.0, "a_abs": 1.0}),
    ]
    for metrics, want in cases:
        model = passthrough(make_model, metrics=metrics, loss="mse")
        logs = ev(model)
        assert logs == pytest.approx({"loss": 9.5, "z_loss": 7.5, "a_loss": 2.0, **want}), metrics


def test_weighted_metrics_prefix_and_order(make_model):
    model = passthrough(make_model, loss="mse", metrics=["mae"],
                        weighted_metrics=[["mae", "mse"], ["mae", "mse"]])
    logs = ev(model, sample_weight=SW)
    want = {"loss": 1.25 + 1.0, "z_loss": 1.25, "a_loss": 1.0, "z_mae": 2.5, "a_mae": 1.0,
            "z_weighted_mae": 1.5, "z_mse": 2.5, "a_weighted_mae": 1.0, "a_mse": 2.0}
    assert logs == pytest.approx(want)
    assert list(logs) == sorted(want)
    values = model.evaluate(X, Y, sample_weight=SW, batch_size=N, verbose=0)
    order = ["loss", "z_loss", "a_loss", "z_mae", "a_mae", "z_weighted_mae", "z_mse",
             "a_weighted_mae", "a_mse"]
    assert model.metrics_names == order
    np.testing.assert_allclose(values, [want[k] for k in order], rtol=1e-6)


def test_single_output_dedup_and_a_metric_named_loss(make_model):
    model = kp.Model(make_model("identity")).compile(
        kp.optimizers.SGD(0.0), "mse", metrics=["mse", "mse", kp.metrics.MeanSquaredError(
            name="loss")], weighted_metrics=["mse", "mse"])
    x = np.arange(5, dtype=np.float32)
    logs = model.evaluate(x, np.zeros(5), sample_weight=[1, 1, 1, 1, 0], verbose=0,
                          return_dict=True)
    assert logs == pytest.approx({"loss": 2.8, "mse": 6.0, "mse_1": 6.0, "loss_1": 6.0,
                                  "weighted_mse": 3.5, "weighted_mse_1": 3.5})
    # with several outputs, a metric named "loss" cannot take the per-output loss log
    model = passthrough(make_model, loss="mse", metrics={"z": [kp.metrics.MeanAbsoluteError(
        name="loss")]})
    assert ev(model) == pytest.approx({"loss": 9.5, "z_loss": 7.5, "a_loss": 2.0,
                                       "z_loss_1": 2.5})


# ----------------------------------------------------------------------------- data


def test_targets_and_sample_weights_per_output(make_model):
    model = passthrough(make_model, loss="mse", weighted_metrics=["mae"])
    y_list = [Y["z"], Y["a"]]
    base = ev(model)
    assert ev(model, y=y_list) == base and ev(model, y=tuple(y_list)) == base
    assert ev(model, y={"a": Y["a"], "z": Y["z"]}) == base
    # one 1-D sample_weight applies to every output
    want = {"loss": 2.25, "z_loss": 1.25, "a_loss": 1.0, "z_mae": 1.5, "a_mae": 1.0}
    assert ev(model, sample_weight=SW) == pytest.approx(want)
    assert ev(model, sample_weight=[SW, SW]) == pytest.approx(want)
    # per output, by name, partial: `a` unweighted
    logs = ev(model, sample_weight={"z": SW[::-1].copy()})
    assert logs == pytest.approx({"loss": 6.25 + 2.0, "z_loss": 6.25, "a_loss": 2.0,
                                  "z_mae": 3.5, "a_mae": 1.0})
    logs = ev(model, sample_weight=[None, np.array([0, 1, 0, 1], np.float32)])
    assert logs == pytest.approx({"loss": 7.5 + 2.0, "z_loss": 7.5, "a_loss": 2.0,
                                  "z_mae": 2.5, "a_mae": 2.0})


def test_class_weight_dict_of_dicts_times_sample_weight(make_model):
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]],
                 np.float32)
    labels = np.array([0, 1, 2, 1])
    b = np.full((N, 1), 0.5, np.float32)
    yb = np.array([[0], [1], [1], [0]], np.float32)
    x, y = {"p": p, "b": b}, {"p": np.eye(3, dtype=np.float32)[labels], "b": yb}
    sw = np.array([1, 2, 1, 0], np.float32)
    v_p = np.mean((p - y["p"]) ** 2, -1)
    v_b = np.full(N, 0.25)
    cw = {"p": {0: 2.0, 2: 0.0}, "b": {1: 3.0}}
    w_p, w_b = np.array([2, 1, 0, 1]) * sw, np.array([1, 3, 3, 1]) * sw
    model = passthrough(make_model, names=("p", "b"), loss="mse")
    logs = model.train_on_batch(x, y, sample_weight=sw, class_weight=cw, return_dict=True)
    want_p, want_b = np.sum(w_p * v_p) / N, np.sum(w_b * v_b) / N
    assert logs == pytest.approx({"loss": want_p + want_b, "p_loss": want_p, "b_loss": want_b})
    # sparse targets, only one output weighted; the class weights apply to fit too
    y_sparse = {"p": labels.astype(np.int32), "b": yb[:, 0]}
    model = passthrough(make_model, names=("p", "b"),
                        loss={"p": "sparse_categorical_crossentropy", "b": "mse"})
    hist = model.fit(x, y_sparse, class_weight={"p": {1: 4.0}}, batch_size=N, verbose=0)
    ce = -np.log(p[np.arange(N), labels] / p.sum(-1))
    want_p = np.sum(np.where(labels == 1, 4.0, 1.0) * ce) / N
    assert hist.history["p_loss"][0] == pytest.approx(want_p, rel=1e-5)
    assert hist.history["b_loss"][0] == pytest.approx(0.25)


def test_class_weight_on_temporal_targets(make_model):
    rng = np.random.default_rng(0)
    s = rng.dirichlet(np.ones(3), size=(N, 2)).astype(np.float32)       # (4, 2, 3)
    labels = rng.integers(0, 3, (N, 2)).astype(np.int32)
    table = np.array([0.0, 1.0, 2.0])
    ce = -np.log(np.take_along_axis(s, labels[..., None], -1)[..., 0])  # (4, 2)
    want = np.sum(table[labels] * ce) / ce.size
    cw = {0: 0.0, 2: 2.0}  # class 1 unlisted: 1.0
    for y, loss in ((labels, "sparse_categorical_crossentropy"),
                    (labels[..., None], "sparse_categorical_crossentropy"),
                    (np.eye(3, dtype=np.float32)[labels], "categorical_crossentropy")):
        model = passthrough(make_model, names=("s",), structure="single", loss=loss)
        assert model.train_on_batch({"s": s}, y, class_weight=cw) == pytest.approx(
            want, rel=1e-5), y.shape


def test_temporal_sample_weights_per_output(make_model):
    seq = np.arange(24, dtype=np.float32).reshape(N, 3, 2)
    vec = np.arange(8, dtype=np.float32).reshape(N, 2)
    x = {"seq": seq, "vec": vec}
    y = {"seq": np.zeros_like(seq), "vec": np.zeros_like(vec)}
    w_seq = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [2, 1, 1]], np.float32)
    w_vec = np.array([1, 0, 1, 0], np.float32)
    v_seq, v_vec = np.mean(seq ** 2, -1), np.mean(vec ** 2, -1)
    want = {"seq_loss": np.sum(w_seq * v_seq) / v_seq.size,
            "vec_loss": np.sum(w_vec * v_vec) / N,
            "seq_mse": np.sum(w_seq * v_seq) / w_seq.sum(), "vec_mse": np.sum(w_vec * v_vec) / 2}
    want["loss"] = want["seq_loss"] + want["vec_loss"]
    for mode in (None, "temporal"):
        for modes in ({"seq": mode}, [mode, None]):
            model = passthrough(make_model, names=("seq", "vec"), loss="mse",
                                weighted_metrics=["mse"], sample_weight_mode=modes)
            for sw in ({"seq": w_seq, "vec": w_vec}, [w_seq, w_vec]):
                assert ev(model, x, y, sample_weight=sw) == pytest.approx(want)


@pytest.mark.filterwarnings("ignore:The module has no trainable variables")  # on purpose
def test_target_tensors(make_model):
    x5 = np.arange(5, dtype=np.float32)
    model = kp.Model(make_model("identity")).compile(
        kp.optimizers.SGD(0.0), "mse", target_tensors=np.zeros(5, np.float32))
    assert model.evaluate(x5, batch_size=2, verbose=0) == pytest.approx(6.0)
    hist = model.fit(x5, batch_size=2, shuffle=False, verbose=0)
    assert hist.history["loss"] == pytest.approx([6.0])
    assert model.train_on_batch(x5) == pytest.approx(6.0)
    # the targets are split with x by validation_split
    hist = model.fit(x5, validation_split=0.4, batch_size=5, verbose=0)
    assert hist.history["loss"] == pytest.approx([5 / 3])
    assert hist.history["val_loss"] == pytest.approx([12.5])
    # per output, by name
    model = passthrough(make_model, loss="mse", metrics=["mae"], target_tensors=Y)
    assert ev(model, y=None) == pytest.approx(ev(passthrough(make_model, loss="mse",
                                                             metrics=["mae"])))


# ----------------------------------------------------------------------------- returns


def test_return_values_and_batch_calls(make_model):
    model = passthrough(make_model, loss={"z": "mse"})
    assert isinstance(model.evaluate(X, Y, verbose=0), float)
    model = passthrough(make_model, loss="mse", metrics={"a": ["mae"]})
    assert model.evaluate(X, Y, verbose=0) == pytest.approx([9.5, 7.5, 2.0, 1.0])
    first = {k: v[:2] for k, v in X.items()}, {k: v[:2] for k, v in Y.items()}
    second = {k: v[2:] for k, v in X.items()}, {k: v[2:] for k, v in Y.items()}
    # each call reports its batch alone: z mse [1, 4] then [9, 16]; a [0, 4] then [0, 4]
    assert model.test_on_batch(*first) == pytest.approx([2.5 + 2.0, 2.5, 2.0, 1.0])
    assert model.test_on_batch(*second) == pytest.approx([12.5 + 2.0, 12.5, 2.0, 1.0])
    assert model.train_on_batch(*second) == pytest.approx([14.5, 12.5, 2.0, 1.0])
    logs = model.train_on_batch(*first, return_dict=True)
    assert list(logs) == ["a_loss", "a_mae", "loss", "z_loss"]
    assert logs == pytest.approx({"loss": 4.5, "z_loss": 2.5, "a_loss": 2.0, "a_mae": 1.0})
    logs = model.test_on_batch(*first, return_dict=True)
    assert list(logs) == ["a_loss", "a_mae", "loss", "z_loss"]


def test_fit_val_logs_for_several_outputs(make_model):
    model = passthrough(make_model, loss="mse", metrics={"z": "mae"})
    hist = model.fit(X, Y, validation_data=(X, Y, SW), batch_size=2, shuffle=False,
                     epochs=2, verbose=0)
    assert list(hist.history) == ["a_loss", "loss", "val_a_loss", "val_loss", "val_z_loss",
                                  "val_z_mae", "z_loss", "z_mae"]
    assert hist.history["loss"] == pytest.approx([9.5, 9.5])
    assert hist.history["val_loss"] == pytest.approx([2.25, 2.25])
    assert hist.history["val_z_mae"] == pytest.approx([2.5, 2.5])  # `metrics`: unweighted


def test_recompile_replaces_loss_metrics_and_optimizer_state(make_model):
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    y = np.random.default_rng(1).normal(size=(8, 1)).astype(np.float32)
    model = kp.Model(make_model("linear")).compile(
        kp.optimizers.SGD(0.1, momentum=0.9), "mse", metrics=["mae"])
    for _ in range(3):
        model.train_on_batch(x, y)
    model.compile(kp.optimizers.SGD(0.1, momentum=0.9), "mae", metrics=["mse"])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "mse"}
    assert logs["loss"] == pytest.approx(
        np.mean(np.abs(model.predict(x, verbose=0) - y)), rel=1e-5)
    start = model.get_weights()
    model.train_on_batch(x, y)
    fresh = kp.Model(make_model("linear")).compile(kp.optimizers.SGD(0.1, momentum=0.9), "mae")
    fresh.set_weights(start)
    fresh.train_on_batch(x, y)  # no momentum carried over from the first compile
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_multi_input_dict_and_tuple(make_model):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 2)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)
    wa, ba = models.init_weights(2, 2, 11)
    wb, bb = models.init_weights(3, 1, 12)
    out1, out2 = a @ wa + ba + b[:, :2], (b @ wb + bb)[:, 0] + a[:, 0]
    y1, y2 = rng.normal(size=(6, 2)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    want = {"loss": np.mean((out1 - y1) ** 2) + 2 * np.mean(np.abs(out2 - y2)),
            "output_1_loss": np.mean((out1 - y1) ** 2), "output_2_loss": np.mean(
                np.abs(out2 - y2))}
    model = kp.Model(make_model("multi_input")).compile(
        kp.optimizers.SGD(0.0), ["mse", "mae"], loss_weights={"output_2": 2})
    for x in ({"b": b, "a": a}, (a, b)):
        logs = model.evaluate(x, (y1, y2), verbose=0, return_dict=True)
        assert logs == pytest.approx(want, rel=1e-5)
        pred = model.predict(x, verbose=0)
        np.testing.assert_allclose(pred[1], out2, rtol=1e-5, atol=1e-6)


def _nested_module(backend):
    """{"a": (x @ w1, x @ w2), "b": {"p": x @ w3}}: outputs nested one level, shapes 3, 1, 2."""
    r = np.random.default_rng(3)
    ws = [r.normal(size=(4, k)).astype(np.float32) for k in (3, 1, 2)]
    if backend == "jax":
        import jax.numpy as jnp
        from flax import nnx

        class Nested(nnx.Module):
            def __init__(self):
                self.ws = nnx.List([nnx.Param(jnp.asarray(w)) for w in ws])

            def __call__(self, x):
                return {"a": (x @ self.ws[0], x @ self.ws[1]), "b": {"p": x @ self.ws[2]}}
    else:
        import torch

        class Nested(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.ws = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(w))
                                                  for w in ws])

            def forward(self, x):
                return {"a": (x @ self.ws[0], x @ self.ws[1]), "b": {"p": x @ self.ws[2]}}

    return Nested(), ws


def test_outputs_nested_one_level(backend):
    module, ws = _nested_module(backend)
    r = np.random.default_rng(4)
    x = r.normal(size=(12, 4)).astype(np.float32)
    y = {"a": (r.normal(size=(12, 3)).astype(np.float32), r.normal(size=(12, 1)).astype(
        np.float32)), "b": {"p": r.normal(size=(12, 2)).astype(np.float32)}}
    model = kp.Model(module).compile(
        kp.optimizers.SGD(0.0), {"a_1": "mse", "a_2": "mae", "b_p": "mse"},
        loss_weights={"b_p": 2.0}, metrics={"a_2": ["mse"]})
    logs = model.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    preds = [x @ w for w in ws]
    expected = {"a_1_loss": np.mean((preds[0] - y["a"][0]) ** 2),
                "a_2_loss": np.mean(np.abs(preds[1] - y["a"][1])),
                "b_p_loss": np.mean((preds[2] - y["b"]["p"]) ** 2),
                "a_2_mse": np.mean((preds[1] - y["a"][1]) ** 2)}
    expected["loss"] = expected["a_1_loss"] + expected["a_2_loss"] + 2 * expected["b_p_loss"]
    assert logs == pytest.approx(expected, rel=1e-5)
    out = model.predict(x, verbose=0)
    assert isinstance(out["a"], tuple) and list(out["b"]) == ["p"]
    np.testing.assert_allclose(out["a"][1], preds[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["b"]["p"], preds[2], rtol=1e-5, atol=1e-5)
    flat_y = {"a_1": y["a"][0], "a_2": y["a"][1], "b_p": y["b"]["p"]}  # flat names work too
    assert model.evaluate(x, flat_y, verbose=0, return_dict=True) == pytest.approx(
        expected, rel=1e-5)
