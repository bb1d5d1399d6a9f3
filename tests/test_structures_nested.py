"""Any output structure (issue 11 items 2-3, issue 16 items 3-5, issue 13 item 6), on both
backends, against hand-computed NumPy values.

The modules here are one weight matrix ``W`` followed by a ``pack`` function that slices
``h = x @ W`` into a structure; the same ``pack`` applied to NumPy's ``h`` is the reference.
"""

from __future__ import annotations

import warnings
from collections import namedtuple

import numpy as np
import pytest

import kompile as kp

N, N_IN, N_H = 6, 3, 10
RNG = np.random.default_rng(0)
W = RNG.normal(0, 0.5, (N_IN, N_H)).astype(np.float32)
X = RNG.normal(size=(N, N_IN)).astype(np.float32)
H = X.astype(np.float64) @ W

Pair = namedtuple("Pair", ["u", "v"])


def net(backend, pack, n_in=N_IN, weights=None):
    """A module computing ``pack(x @ W)``."""
    w0 = W if weights is None else weights
    if backend == "jax":
        import jax.numpy as jnp
        from flax import nnx

        class Net(nnx.Module):
            def __init__(self):
                self.w = nnx.Param(jnp.asarray(w0))

            def __call__(self, x):
                return pack(x @ self.w[...])

        return Net()
    import torch
    from torch import nn

    class TNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(w0))

        def forward(self, x):
            return pack(x @ self.w)

    return TNet()


def deep(h):
    """Outputs nested three levels, with a namedtuple: a_1, a_2_c, a_2_d, b_u, b_v."""
    return {"a": (h[:, 0:1], {"c": h[:, 1:3], "d": h[:, 3:6]}),
            "b": Pair(u=h[:, 6:8], v=h[:, 8:10])}


DEEP_NAMES = ["a_1", "a_2_c", "a_2_d", "b_u", "b_v"]
P = {"a_1": H[:, 0:1], "a_2_c": H[:, 1:3], "a_2_d": H[:, 3:6], "b_u": H[:, 6:8],
     "b_v": H[:, 8:10]}
Y = {k: RNG.normal(size=v.shape).astype(np.float32) for k, v in P.items()}


def mse(name):
    return float(np.mean((P[name] - Y[name]) ** 2))


def mae(name):
    return float(np.mean(np.abs(P[name] - Y[name])))


def nested_y():
    return {"a": (Y["a_1"], {"c": Y["a_2_c"], "d": Y["a_2_d"]}),
            "b": Pair(u=Y["b_u"], v=Y["b_v"])}


def evaluate(model, y, **kw):
    return model.evaluate(X, y, batch_size=3, verbose=0, return_dict=True, **kw)


def close(logs, want):
    assert sorted(logs) == sorted(want), (sorted(logs), sorted(want))
    for k, v in want.items():
        assert logs[k] == pytest.approx(v, rel=1e-4, abs=1e-6), k


# ----------------------------------------------------------------------------- names, predict


def test_deep_outputs_are_named_by_path_and_predict_keeps_the_structure(backend):
    model = kp.Model(net(backend, deep)).compile("sgd", "mse")
    want = {"loss": sum(mse(n) for n in DEEP_NAMES), **{f"{n}_loss": mse(n) for n in DEEP_NAMES}}
    close(evaluate(model, nested_y()), want)
    assert model.metrics_names == ["loss", *[f"{n}_loss" for n in DEEP_NAMES]]
    pred = model.predict(X, batch_size=4, verbose=0)
    assert list(pred) == ["a", "b"] and isinstance(pred["a"], tuple)
    assert isinstance(pred["b"], Pair) and list(pred["a"][1]) == ["c", "d"]
    np.testing.assert_allclose(pred["b"].v, P["b_v"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred["a"][1]["d"], P["a_2_d"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("form", ["nested", "flat", "position", "partial_nested"])
def test_every_argument_nested_flat_or_by_position(backend, form):
    losses = {"a_1": "mse", "a_2_c": "mae", "a_2_d": "mse", "b_u": "mae", "b_v": "mse"}
    weights = {"a_1": 1.0, "a_2_c": 2.0, "a_2_d": 0.5, "b_u": 3.0, "b_v": 1.0}
    sw = {n: RNG.choice([0.0, 1.0, 2.0], N).astype(np.float32) for n in DEEP_NAMES}

    def shaped(d):
        if form == "flat":
            return dict(reversed(list(d.items())))  # any key order
        if form == "position":
            return [d[n] for n in DEEP_NAMES]
        return {"a": [d["a_1"], {"c": d["a_2_c"], "d": d["a_2_d"]}],
                "b": {"u": d["b_u"], "v": d["b_v"]} if form == "nested"
                else Pair(u=d["b_u"], v=d["b_v"])}

    metrics = shaped({n: (["mae"] if n != "b_u" else None) for n in DEEP_NAMES})
    model = kp.Model(net(backend, deep)).compile(
        "sgd", shaped(losses), loss_weights=shaped(weights), metrics=metrics)
    logs = evaluate(model, shaped(Y), sample_weight=shaped(sw))
    fn = {"mse": lambda n: (P[n] - Y[n]) ** 2, "mae": lambda n: np.abs(P[n] - Y[n])}

    def weighted(n):
        return float(np.mean(fn[losses[n]](n).mean(-1) * sw[n]))

    want = {"loss": sum(weights[n] * weighted(n) for n in DEEP_NAMES),
            **{f"{n}_loss": weighted(n) for n in DEEP_NAMES},
            **{f"{n}_mae": mae(n) for n in DEEP_NAMES if n != "b_u"}}
    close(logs, want)


def test_a_loss_at_an_inner_node_receives_the_subtree(backend):
    seen = []

    def pair_loss(y_true, y_pred):  # the subtree's structures, as the module returns them
        seen.append((type(y_true).__name__, type(y_pred).__name__))
        return ((y_pred.u - y_true.u) ** 2).mean(-1) + (abs(y_pred.v - y_true.v)).mean(-1)

    model = kp.Model(net(backend, deep)).compile(
        "sgd", {"a_2": {"c": "mse"}, "b": pair_loss})
    y = {"a": (None, {"c": Y["a_2_c"], "d": None}), "b": Pair(Y["b_u"], Y["b_v"])}
    b = mse("b_u") + mae("b_v")
    close(evaluate(model, y), {"loss": mse("a_2_c") + b, "a_2_c_loss": mse("a_2_c"),
                               "b_loss": b})
    assert ("Pair", "Pair") in seen
    # a registered loss at an inner node applies to every output below it
    model = kp.Model(net(backend, deep)).compile("sgd", {"b": "mse"})
    close(evaluate(model, {"b_u": Y["b_u"], "b_v": Y["b_v"]}),
          {"loss": mse("b_u") + mse("b_v"), "b_u_loss": mse("b_u"), "b_v_loss": mse("b_v")})


def test_several_losses_per_output_are_summed_and_logged_as_one(backend):
    pack = lambda h: {"a": h[:, 0:1], "b": h[:, 1:3]}  # noqa: E731
    model = kp.Model(net(backend, pack)).compile("sgd", {"a": ["mse"], "b": ["mse", "mae"]})
    y = {"a": Y["a_1"], "b": Y["a_2_c"]}
    b = mse("a_2_c") + mae("a_2_c")
    close(evaluate(model, y), {"loss": mse("a_1") + b, "a_loss": mse("a_1"), "b_loss": b})
    model = kp.Model(net(backend, pack)).compile("sgd", ["mse", ["mse", "mae"]],
                                                 loss_weights=[1.0, 2.0])
    close(evaluate(model, [Y["a_1"], Y["a_2_c"]]),
          {"loss": mse("a_1") + 2 * b, "a_loss": mse("a_1"), "b_loss": b})


# ----------------------------------------------------------------------------- shortcuts


@pytest.mark.parametrize("container", ["list", "dict", "nested"])
def test_one_output_in_any_container_takes_bare_arguments(backend, container):
    pack = {"list": lambda h: [h[:, 1:3]], "dict": lambda h: {"out": h[:, 1:3]},
            "nested": lambda h: {"out": (h[:, 1:3],)}}[container]
    sw = np.array([1, 0, 2, 1, 1, 0], np.float32)
    model = kp.Model(net(backend, pack)).compile("sgd", ["mse", "mae"], metrics=["mae"])
    logs = evaluate(model, Y["a_2_c"], sample_weight=sw)
    e = P["a_2_c"] - Y["a_2_c"]
    wmse, wmae = np.mean((e ** 2).mean(-1) * sw), np.mean(np.abs(e).mean(-1) * sw)
    name = {"list": "output_1", "dict": "out", "nested": "out_1"}[container]
    close(logs, {"loss": wmse + wmae, f"{name}_loss": wmse + wmae, "mae": mae("a_2_c")})
    model.fit(X, Y["a_2_c"], epochs=1, verbose=0)


def test_targets_only_for_the_outputs_with_a_loss(backend):
    pack = lambda h: (h[:, 0:1], h[:, 1:3], h[:, 3:6])  # noqa: E731
    model = kp.Model(net(backend, pack)).compile("sgd", [None, "mse", "mae"])
    close(evaluate(model, [Y["a_2_c"], Y["a_2_d"]]),
          {"loss": mse("a_2_c") + mae("a_2_d"), "output_2_loss": mse("a_2_c"),
           "output_3_loss": mae("a_2_d")})
    model = kp.Model(net(backend, pack)).compile("sgd", {"output_3": "mae"})
    close(evaluate(model, Y["a_2_d"]), {"loss": mae("a_2_d")})
    with pytest.raises(ValueError, match=r"Targets may also be given for exactly the outputs "
                       r"with a loss, \['output_3'\]"):
        evaluate(model, [Y["a_2_c"], Y["a_2_d"]])


def test_custom_losses_and_metrics_may_return_python_floats(backend):
    def const_loss(y_true, y_pred):
        return 0.25

    def scalar_metric(y_true, y_pred):
        return ((y_pred - y_true) ** 2).mean()  # a 0-d array: the batch mean

    pack = lambda h: h[:, 1:3]  # noqa: E731
    model = kp.Model(net(backend, pack)).compile("sgd", ["mse", const_loss],
                                                 metrics=[scalar_metric, lambda a, b: 1.5])
    logs = evaluate(model, Y["a_2_c"])
    close(logs, {"loss": mse("a_2_c") + 0.25, "output_loss": mse("a_2_c") + 0.25,
                 "scalar_metric": mse("a_2_c"), "<lambda>": 1.5})


# ----------------------------------------------------------------------------- model's own loss


def hf_like(backend):
    """A Hugging Face style module: logits, and a 0-d `loss` when `labels` are passed."""
    def pack(h):
        return {"logits": h[:, 0:3], "hidden": h[:, 3:6]}

    if backend == "jax":
        import jax.numpy as jnp
        from flax import nnx

        class HF(nnx.Module):
            def __init__(self):
                self.w = nnx.Param(jnp.asarray(W))

            def __call__(self, x):
                out = pack(x["features"] @ self.w[...])
                if "labels" in x:
                    out["loss"] = jnp.mean((out["logits"] - x["labels"]) ** 2)
                return out

        return HF()
    import torch
    from torch import nn

    class THF(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(W))

        def forward(self, x):
            out = pack(x["features"] @ self.w)
            if "labels" in x:
                out["loss"] = torch.mean((out["logits"] - x["labels"]) ** 2)
            return out

    return THF()


def test_a_model_provided_loss_trains_without_y(backend):
    labels = RNG.normal(size=(N, 3)).astype(np.float32)
    x = {"features": X, "labels": labels}
    own = float(np.mean((H[:, 0:3] - labels) ** 2))
    model = kp.Model(hf_like(backend)).compile(kp.optimizers.SGD(0.0))
    logs = model.evaluate(x, batch_size=3, verbose=0, return_dict=True)
    close(logs, {"loss": own})
    hist = model.fit(x, batch_size=3, epochs=1, verbose=0, shuffle=False).history
    assert hist["loss"][0] == pytest.approx(own, rel=1e-4)
    # metrics on the other outputs when y is given
    model = kp.Model(hf_like(backend)).compile(kp.optimizers.SGD(0.0),
                                               metrics={"logits": ["mae"]},
                                               steps_per_execution=2)
    logs = model.evaluate(x, {"logits": labels}, batch_size=3, verbose=0, return_dict=True)
    close(logs, {"loss": own, "logits_mae": float(np.mean(np.abs(H[:, 0:3] - labels)))})
    pred = model.predict(x, batch_size=2, verbose=0)  # the 0-d loss is left out
    assert list(pred) == ["logits", "hidden"]
    np.testing.assert_allclose(pred["logits"], H[:, 0:3], rtol=1e-5, atol=1e-5)
    model.fit(x, {"logits": labels}, batch_size=3, epochs=1, verbose=0)
    # predict without labels (no loss returned) before and after training on the own loss
    model = kp.Model(hf_like(backend)).compile(kp.optimizers.SGD(0.0))
    pred = model.predict({"features": X}, verbose=0)
    np.testing.assert_allclose(pred["hidden"], H[:, 3:6], rtol=1e-5, atol=1e-5)
    hist = model.fit(x, batch_size=3, epochs=1, verbose=0, shuffle=False).history
    assert hist["loss"][0] == pytest.approx(own, rel=1e-4)
    assert list(model.predict({"features": X}, verbose=0)) == ["logits", "hidden"]
    with pytest.raises(ValueError, match="this call's output has no 'loss' entry"):
        model.evaluate({"features": X}, verbose=0)
    # a compiled loss wins over the model's own
    model = kp.Model(hf_like(backend)).compile("sgd", {"hidden": "mae"})
    logs = model.evaluate(x, {"hidden": labels}, batch_size=3, verbose=0, return_dict=True)
    close(logs, {"loss": float(np.mean(np.abs(H[:, 3:6] - labels)))})


def test_a_model_with_neither_loss_is_refused(backend):
    model = kp.Model(net(backend, lambda h: {"logits": h})).compile("sgd")
    with pytest.raises(ValueError, match="compiled without a loss"):
        model.fit(X, H, verbose=0)


def test_outputs_that_are_not_arrays_are_left_out_with_one_warning(backend):
    class Cache:
        pass

    cache = Cache()

    def pack(h):
        return {"logits": h[:, 0:3], "cache": cache, "none": None, "step": h.sum() * 0,
                "more": (h[:, 3:4], None)}

    model = kp.Model(net(backend, pack)).compile("sgd", "mse")
    with pytest.warns(UserWarning, match=r"outputs 'cache' \(Cache\), 'none' \(None\), "
                      r"'step' \(0-d .*\), 'more_2' \(None\) are not arrays with a batch axis"):
        logs = evaluate(model, {"logits": Y["a_2_d"], "more": Y["a_1"]})
    logits = float(np.mean((H[:, 0:3] - Y["a_2_d"]) ** 2))
    more = float(np.mean((H[:, 3:4] - Y["a_1"]) ** 2))
    close(logs, {"loss": logits + more, "logits_loss": logits, "more_1_loss": more})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning: the names were found once
        pred = model.predict(X, verbose=0)
    assert list(pred) == ["logits", "more"] and pred["more"][1] is None


# ----------------------------------------------------------------------------- backend ops, shapes


def test_a_metric_written_in_torch_ops_works_on_torch():
    torch = pytest.importorskip("torch")

    def torch_mse(y_true, y_pred):
        return torch.mean(torch.square(y_true - y_pred), dim=-1)

    class TorchTotal(kp.metrics.Metric):  # a metric class of one's own, in torch ops
        def init(self):
            return {"total": np.zeros((), np.float32)}

        def update(self, state, y_true, y_pred, sample_weight=None):
            return {"total": state["total"] + torch.sum(torch.abs(y_pred - y_true))}

        def result(self, state):
            return state["total"]

    model = kp.Model(net("torch", lambda h: h[:, 1:3])).compile(
        "sgd", torch_mse, metrics=[torch_mse, TorchTotal(name="total")])
    logs = evaluate(model, Y["a_2_c"])
    close(logs, {"loss": mse("a_2_c"), "torch_mse": mse("a_2_c"),
                 "total": float(np.sum(np.abs(P["a_2_c"] - Y["a_2_c"])))})
    model.fit(X, Y["a_2_c"], verbose=0)


def test_sequence_outputs_evaluate_any_length_they_predict(backend):
    if backend == "jax":
        from flax import nnx

        class Seq(nnx.Module):
            def __init__(self):
                self.d = nnx.Linear(2, 3, rngs=nnx.Rngs(0))

            def __call__(self, x):
                return self.d(x)
    else:
        from torch import nn

        class Seq(nn.Module):
            def __init__(self):
                super().__init__()
                self.d = nn.Linear(2, 3)

            def forward(self, x):
                return self.d(x)

    model = kp.Model(Seq()).compile("sgd", "mse", metrics=["mae"])
    x3, x7 = np.ones((4, 3, 2), np.float32), np.ones((4, 7, 2), np.float32)
    model.fit(x3, np.zeros((4, 3, 3), np.float32), verbose=0)
    pred = model.predict(x7, verbose=0)
    logs = model.evaluate(x7, np.zeros((4, 7, 3), np.float32), verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(float(np.mean(pred ** 2)), rel=1e-5)
    with pytest.raises(ValueError, match=r"`y` for output 'output' has per-sample shape "
                       r"\(7, 4\) but the output has per-sample shape \(7, 3\)"):
        model.evaluate(x7, np.zeros((4, 7, 4), np.float32), verbose=0)


# ----------------------------------------------------------------------------- inputs


def test_namedtuple_inputs_and_none_in_a_dict_input_reach_the_module(backend):
    Inputs = namedtuple("Inputs", ["a", "b"])
    seen = []

    def pack_nt(x):
        seen.append(type(x).__name__)
        return x.a + x.b

    def pack_none(x):
        seen.append(x["mask"] is None)
        return x["a"]

    if backend == "jax":
        from flax import nnx

        class Fn(nnx.Module):
            def __init__(self, fn):
                self.fn = fn

            def __call__(self, x):
                return self.fn(x)
    else:
        from torch import nn

        class Fn(nn.Module):
            def __init__(self, fn):
                super().__init__()
                self.fn = fn

            def forward(self, x):
                return self.fn(x)

    a, b = X[:, :2], X[:, 1:]
    model = kp.Model(Fn(pack_nt)).compile("sgd", "mse")
    logs = model.evaluate(Inputs(a, b), np.zeros((N, 2)), verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(float(np.mean((a + b) ** 2)), rel=1e-5)
    assert set(seen) == {"Inputs"}
    np.testing.assert_allclose(model.predict(Inputs(a, b), verbose=0), a + b, rtol=1e-6)
    seen.clear()
    model = kp.Model(Fn(pack_none)).compile("sgd", "mse")
    logs = model.evaluate({"a": a, "mask": None}, np.zeros((N, 2)), verbose=0,
                          return_dict=True)
    assert logs["loss"] == pytest.approx(float(np.mean(a ** 2)), rel=1e-5)
    assert set(seen) == {True}
