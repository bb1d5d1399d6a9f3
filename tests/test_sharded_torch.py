"""kp.distribution.FSDP on torch (FSDP2, fully_shard) with 2 gloo processes on CPU: trains
like one process, holds half the parameters and optimizer state per process, saves one
file that loads under FSDP again, refuses process-0-only checkpoint callbacks."""

import json
import os
import socket
import subprocess
import sys

import pytest

from .compare import assert_close

pytest.importorskip("torch")

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "torch_fsdp.py")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    folder = str(tmp_path_factory.mktemp("fsdp"))
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, SCRIPT, str(r), "2", port, folder], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


@pytest.mark.distributed
@pytest.mark.parametrize("kind", ["mlp", "block"])
def test_fsdp_equals_one_process(ranks, kind):
    """Adam with global_clipnorm (clipped on the sharded gradients), steps_per_execution=2;
    process 1 started from other weights (FSDP starts from process 0's)."""
    from tests.scripts.torch_fsdp import run

    reference = run(kind)[0]
    for out in ranks:
        assert_close(reference, out[kind])


@pytest.mark.distributed
def test_fsdp_mixed_precision(ranks):
    """mixed_bfloat16: FSDP gathers bfloat16 parameters (MixedPrecisionPolicy), one process
    autocasts float32 ones: equal up to bfloat16 rounding; the variables stay float32."""
    from tests.scripts.torch_fsdp import run

    reference = run("mixed")[0]
    for out in ranks:
        assert_close(reference["history"], out["mixed"]["history"], tol=2e-2)
        assert out["mixed_facts"]["dtype"] == "torch.float32"


@pytest.mark.distributed
@pytest.mark.parametrize("kind", ["mlp", "block"])
def test_parameters_and_optimizer_state_are_sharded(ranks, kind):
    for out in ranks:
        facts = out[kind + "_facts"]
        assert facts["dtensor"]
        assert facts["local"] <= facts["total"] // 2 + 16  # half, up to uneven rows
        assert facts["opt_local"] == 2 * facts["local"]  # Adam's two moments, sharded alike


@pytest.mark.distributed
def test_fsdp_checkpoints(ranks):
    for out in ranks:
        ck = out["checkpoint"]
        assert "ModelCheckpoint cannot save a model whose parameters are sharded across " \
            "processes" in ck["checkpoint_error"]
        assert_close(ck["continued"], ck["loaded"])
