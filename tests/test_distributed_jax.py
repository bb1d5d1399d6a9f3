"""Data-parallel JAX training equals single-device training (4 host CPU devices)."""

import json
import os
import subprocess
import sys

import pytest

from .compare import assert_close

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "jax_data_parallel.py")


@pytest.fixture(scope="module")
def results():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    out = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


_close = assert_close


@pytest.mark.distributed
@pytest.mark.parametrize("kind", ["single", "multi"])
def test_data_parallel_equals_single_device(results, kind):
    one, dp = results[kind]["one"], results[kind]["dp"]
    # the data-parallel step really is split across devices: XLA inserted all-reduces
    assert dp.pop("all_reduce") is True and one.pop("all_reduce") is False
    assert set(one["history"]) == set(dp["history"]) and len(one["history"]["loss"]) == 3
    _close(one, dp)


@pytest.mark.distributed
def test_indivisible_batch_size_is_a_clear_error(results):
    assert "`batch_size`=6 is not divisible by the 4 devices" in results["error"]


@pytest.mark.distributed
def test_two_processes_equal_one(results, tmp_path):
    """Two processes with 2 CPU devices each (gloo) train like one process."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    script = os.path.join(os.path.dirname(__file__), "scripts", "jax_multiprocess.py")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [subprocess.Popen([sys.executable, script, str(i), port], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    one = dict(results["single"]["one"])
    one.pop("all_reduce", None)
    for stdout, _ in outs:  # evaluate/predict/history agree on every process
        _close(one, json.loads(stdout.strip().splitlines()[-1]))
