"""Each metric state declares how it merges (``Metric.merges``), and every merge uses it:
``Metric.merge``, the objective's merge of step increments, and torch DDP's all-reduce.
The reference is NumPy on the same values."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from array_api_compat import array_namespace

import kompile as kp
from kompile.metrics.base import merge_values

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "torch_ddp_merge.py")


class _Extremes(kp.metrics.Metric):
    merges = {"hi": "max", "lo": "min"}

    def init(self):
        return {"hi": np.zeros((), np.float32), "lo": np.full((), np.inf, np.float32),
                "n": np.zeros((), np.float32)}

    def update(self, state, y_true, y_pred, sample_weight=None):
        xp = array_namespace(y_pred)  # one metric for NumPy, JAX and torch
        err = xp.abs(y_pred - y_true)
        return {"hi": xp.maximum(state["hi"], xp.max(err)),
                "lo": xp.minimum(state["lo"], xp.min(err)), "n": state["n"] + err.shape[0]}

    def result(self, state):
        return state["hi"]


def test_merge_follows_the_declaration():
    m = _Extremes()
    r = np.random.default_rng(0)
    a_true, a_pred, b_true, b_pred = (r.normal(size=(5, 1)) for _ in range(4))
    merged = m.merge(m.update(m.init(), a_true, a_pred), m.update(m.init(), b_true, b_pred))
    err = np.abs(np.concatenate([a_pred - a_true, b_pred - b_true]))
    np.testing.assert_allclose(merged["hi"], err.max(), rtol=1e-6)
    np.testing.assert_allclose(merged["lo"], err.min(), rtol=1e-6)
    assert merged["n"] == 10  # undeclared keys sum (5 samples each)
    assert m.merge_rule("n") == "sum" and m.merge_rule("hi") == "max"


def test_built_in_metrics_merge_as_one_update():
    """Merging the states of two halves equals one update on the whole (sum states)."""
    r = np.random.default_rng(1)
    y, p = r.integers(0, 2, (8, 1)).astype(np.float32), r.uniform(size=(8, 1))
    for metric in (kp.metrics.Mean(), kp.metrics.BinaryAccuracy(), kp.metrics.AUC()):
        whole = metric.update(metric.init(), y, p)
        halves = metric.merge(metric.update(metric.init(), y[:4], p[:4]),
                              metric.update(metric.init(), y[4:], p[4:]))
        np.testing.assert_allclose(metric.result(halves), metric.result(whole), rtol=1e-6)


def test_an_unknown_merge_is_refused():
    with pytest.raises(ValueError, match="merges by one of"):
        merge_values("mean", np.ones(()), np.ones(()))


def test_objective_merge_uses_the_metrics_declaration():
    torch = pytest.importorskip("torch")
    module = torch.nn.Linear(2, 1)
    model = kp.Model(module).compile("sgd", "mse", metrics=[_Extremes(name="extremes")])
    model.evaluate(np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32), verbose=0)
    objective = model._objective
    a = objective.init_states()
    b = objective.init_states()
    a["extremes"]["hi"], b["extremes"]["hi"] = np.float32(2.0), np.float32(3.0)
    a["loss"]["total"], b["loss"]["total"] = np.float32(1.0), np.float32(4.0)
    merged = objective.merge(a, b)
    assert merged["extremes"]["hi"] == 3.0  # max, not 5
    assert merged["loss"]["total"] == 5.0  # the loss tracker's mean state sums


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.distributed
def test_max_and_min_states_under_two_process_ddp():
    pytest.importorskip("torch")
    sys.path.insert(0, os.path.dirname(SCRIPT))
    from torch_ddp_merge import data

    x, y, w = data()
    err = np.abs(x @ w - y)
    expected = float(err.max() - err.min())
    port = str(_free_port())
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(os.path.dirname(__file__), "..", "src"), env.get("PYTHONPATH", "")])
    procs = [subprocess.Popen([sys.executable, SCRIPT, str(r), "2", port], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    try:
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, errs) in zip(procs, outs):
        assert p.returncode == 0, errs[-3000:]
    for out, _ in outs:
        result = json.loads(out.strip().splitlines()[-1])
        assert result["backend"] == "DistributedTorchBackend"
        assert result["evaluate"] == pytest.approx(expected, rel=1e-5)
        assert result["fit"] == pytest.approx(expected, rel=1e-5)
