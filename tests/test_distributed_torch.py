"""torch DistributedDataParallel over 2 gloo processes equals one process.

The two processes run tests/scripts/torch_ddp.py; the one-process reference is the same
``run`` in this process without a process group, on the same global batches.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from .compare import assert_close

pytest.importorskip("torch")

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "torch_ddp.py")
WORLD = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def results():
    """Start the two processes, and compute the one-process reference while they run."""
    from tests.scripts.torch_ddp import run

    port = str(_free_port())
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    procs = [subprocess.Popen([sys.executable, SCRIPT, str(r), str(WORLD), port], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(WORLD)]
    try:
        reference = {"single": run("single")}
        # without a process group, DataParallel on torch is one process (and says so)
        with pytest.warns(UserWarning, match="none is initialised, so training runs in this"):
            reference["multi"] = run("multi")
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return reference, [(json.loads(out.strip().splitlines()[-1]), out) for out, _ in outs]


@pytest.fixture(scope="module")
def reference(results):
    return results[0]


@pytest.fixture(scope="module")
def ranks(results):
    return results[1]


_close = assert_close


@pytest.mark.distributed
@pytest.mark.parametrize("kind", ["single", "multi"])
def test_two_processes_equal_one(ranks, reference, kind):
    """Weights, History, evaluate and predict equal one process on every rank (rank 1
    started from other weights and another NumPy seed)."""
    one = reference[kind]
    assert len(one["history"]["loss"]) == 3 and len(one["predict"]) >= 1
    for result, _ in ranks:
        assert result["ddp"] == "DistributedTorchBackend"
        _close(one["history"], result[kind]["history"])
        _close(one["evaluate"], result[kind]["evaluate"])
        _close(one["predict"], result[kind]["predict"])
        _close(one["weights"], result[kind]["weights"])
        # the user's module: state_dict names without DDP's "module." prefix
        assert result[kind]["names"] == one["names"]
        assert not any(n.startswith("module.") for n in one["names"])


@pytest.mark.distributed
def test_multi_output_reports_every_log(ranks, reference):
    """The multi-output model has per-output losses (one with reduction="sum") and metrics."""
    logs = set(ranks[0][0]["multi"]["history"])
    assert {"loss", "a_loss", "z_loss", "m_loss", "m_accuracy", "z_mae"} <= logs


@pytest.mark.distributed
def test_only_rank_zero_prints(ranks):
    assert "Epoch 1/3" in ranks[0][1]
    assert "Epoch" not in ranks[1][1]


@pytest.mark.distributed
def test_indivisible_batch_size_is_a_clear_error(ranks):
    for result, _ in ranks:
        assert result["error"].startswith(
            "`batch_size`=5 is not divisible by the world size 2 of the torch.distributed "
            "process group; use a multiple of 2")


@pytest.mark.distributed
def test_mean_with_sample_weight_reduction_warns(ranks):
    for result, _ in ranks:
        assert any("reduction='mean_with_sample_weight' under DistributedDataParallel divides "
                   "each process's loss by its own sum of sample weights" in w
                   for w in result["warnings"])


@pytest.mark.distributed
def test_torchrun_without_a_process_group_warns(monkeypatch):
    import kompile as kp
    from tests.models import build

    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.warns(UserWarning, match=r"WORLD_SIZE=4 \(torchrun\?\) but no torch.distributed "
                      r"process group is initialised, so every process trains alone"):
        model = kp.Model(build("torch", "mlp"))
    # one process training alone: the plain backend (every backend has process_index now)
    assert type(model._backend).__name__ == "TorchBackend"
