"""The torch fast path (backends/torch_fast.py) equals the shared array-API loss and metric
code within 1e-6: loss value, its gradient and every tracker after several batches."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import kompile as kp  # noqa: E402
from kompile.backends import torch_fast  # noqa: E402

N, C = 16, 5


def _targets(kind, r):
    if kind == "sparse":
        return r.integers(0, C, N).astype(np.int32), C
    if kind == "sparse_col":
        return r.integers(0, C, (N, 1)).astype(np.int64), C
    if kind == "onehot":
        return np.eye(C, dtype=np.float32)[r.integers(0, C, N)], C
    if kind == "soft":
        p = r.random((N, C)).astype(np.float32)
        return p / p.sum(1, keepdims=True), C
    if kind == "binary":
        return r.integers(0, 2, (N, 3)).astype(np.float32), 3
    if kind == "binary1":
        return r.integers(0, 2, N).astype(np.float32), 1
    return r.normal(size=(N, 3)).astype(np.float32), 3


CASES = [  # (loss, metrics, target kind, predictions are probabilities)
    (kp.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"], "sparse", False),
    (kp.losses.SparseCategoricalCrossentropy(), ["accuracy", "sparse_categorical_crossentropy"],
     "sparse_col", True),
    (kp.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum"), ["acc"],
     "sparse", False),
    (kp.losses.CategoricalCrossentropy(from_logits=True), ["accuracy"], "onehot", False),
    (kp.losses.CategoricalCrossentropy(), ["categorical_accuracy"], "soft", True),
    (kp.losses.BinaryCrossentropy(from_logits=True), ["binary_accuracy"], "binary", False),
    (kp.losses.BinaryCrossentropy(from_logits=True), ["accuracy"], "binary1", False),
    ("mse", ["mae", "mse"], "dense", False),
    (kp.losses.MeanAbsoluteError(reduction="sum"), ["mse"], "dense", False),
]


class Head(torch.nn.Module):
    def __init__(self, n_out):
        super().__init__()
        self.n_out = n_out

    def forward(self, x):
        return x[:, : self.n_out]


# both paths get the same raw outputs
@pytest.mark.filterwarnings(
    "ignore:The loss '.*' of output 'output' expects probabilities:kompile.KompileWarning")
@pytest.mark.parametrize("loss, metrics, target, probs", CASES)
def test_fast_path_equals_the_shared_code(loss, metrics, target, probs):
    r = np.random.default_rng(0)
    y, width = _targets(target, r)
    x = r.normal(size=(N, width)).astype(np.float32)
    model = kp.Model(Head(width)).compile("sgd", loss, metrics=metrics)
    model.evaluate(x, y, batch_size=N, verbose=0)  # builds the objective
    objective = model._objective
    fast = torch_fast.plan(objective)
    assert fast is not None
    states_fast = states_ref = model._backend.put(objective.init_states())
    for seed in range(3):
        r = np.random.default_rng(seed + 1)
        yb = torch.as_tensor(_targets(target, r)[0])
        raw = r.normal(size=(N, width)).astype(np.float32)
        if probs:
            raw = np.exp(raw) / np.exp(raw).sum(1, keepdims=True)
        p1 = torch.tensor(raw, requires_grad=True)
        p2 = torch.tensor(raw, requires_grad=True)
        total, states_fast = fast.step([yb], [p1], [None], states_fast)
        ref, per_output = objective.compute_loss([yb], [p2], [None])
        with torch.no_grad():
            states_ref = objective.update(states_ref, [yb], [p2.detach()], [None],
                                          ref.detach(), [v.detach() for v in per_output], N)
        np.testing.assert_allclose(total.item(), ref.item(), rtol=1e-6, atol=1e-7)
        total.backward()
        ref.backward()
        np.testing.assert_allclose(p1.grad.numpy(), p2.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert list(states_fast) == list(states_ref)
    for log in states_ref:
        for k in ("total", "count"):
            np.testing.assert_allclose(float(states_fast[log][k]), float(states_ref[log][k]),
                                       rtol=1e-6, err_msg=f"{log}.{k}")
    results = {k: float(v) for k, v in objective.results(states_fast).items()}
    expect = {k: float(v) for k, v in objective.results(states_ref).items()}
    assert results == pytest.approx(expect, rel=1e-6)


# both paths get the same raw outputs
@pytest.mark.filterwarnings(
    "ignore:The loss '.*' of output 'output' expects probabilities:kompile.KompileWarning")
def test_fast_path_is_not_used_where_it_does_not_apply():
    r = np.random.default_rng(0)
    x = r.normal(size=(N, 3)).astype(np.float32)
    y = r.normal(size=(N, 3)).astype(np.float32)

    def planned(**compile_kw):
        model = kp.Model(Head(3)).compile("sgd", **compile_kw)
        model.evaluate(x, y, batch_size=N, verbose=0)
        return torch_fast.plan(model._objective)

    assert planned(loss="mse", metrics=["mae"]) is not None
    assert planned(loss="huber") is None  # no fused form
    assert planned(loss="mse", metrics=["mae", kp.metrics.R2Score()]) is None
    assert planned(loss=kp.losses.CategoricalCrossentropy(label_smoothing=0.1)) is None

    class Custom(kp.losses.MeanSquaredError):
        def call(self, y_true, y_pred):
            return super().call(y_true, y_pred) * 2

    assert planned(loss=Custom()) is None


def test_fit_with_sample_weights_and_without_matches_the_shared_code(monkeypatch):
    """End to end: the fast path (and its fallback for weighted batches) gives the numbers
    of the shared code in fit and evaluate."""
    r = np.random.default_rng(0)
    x = r.normal(size=(48, 4)).astype(np.float32)
    y = r.integers(0, 3, 48).astype(np.int32)
    sw = r.random(48).astype(np.float32)
    runs = []
    for use_fast in (True, False):
        if not use_fast:
            monkeypatch.setattr(torch_fast, "plan", lambda objective: None)
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                     torch.nn.Linear(8, 3))
        model = kp.Model(module).compile(
            "adam", kp.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"])
        hist = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                         validation_data=(x[:16], y[:16]))
        assert (model._backend._fast is not None) == use_fast
        weighted = model.fit(x, y, sample_weight=sw, batch_size=8, shuffle=False, verbose=0)
        runs.append((hist.history, weighted.history, model.get_weights()))
    (h1, w1, p1), (h2, w2, p2) = runs
    for key in h1:
        np.testing.assert_allclose(h1[key], h2[key], rtol=1e-6)
    for key in w1:
        np.testing.assert_allclose(w1[key], w2[key], rtol=1e-6)
    for a, b in zip(p1, p2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
