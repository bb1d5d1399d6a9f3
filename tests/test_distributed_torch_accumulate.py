"""Gradient accumulation under torch DistributedDataParallel (2 gloo processes): the same
weights as one process, and one gradient all-reduce per update (the non-final batches of a
cycle run in ``no_sync``)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "torch_ddp_accumulate.py")


@pytest.mark.distributed
def test_accumulation_under_ddp():
    from tests.scripts.torch_ddp_accumulate import run

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    procs = [subprocess.Popen([sys.executable, SCRIPT, str(r), "2", port], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    try:
        reference = run()
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        result = json.loads(out.strip().splitlines()[-1])
        assert result["iterations"] == reference["iterations"] == 4  # 12 batches / 3
        assert result["allreduce"] == 4  # one per update: no_sync on the other 8 batches
        for a, b in zip(result["weights"], reference["weights"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
