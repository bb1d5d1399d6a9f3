"""Two JAX processes (2 CPU devices each, gloo): each puts only its own share of every
batch on its devices (each sample in exactly one process per epoch), and training with
DataParallel and ModelParallel equals one device."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from .compare import assert_close

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "jax_per_process.py")


def _last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def _port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


@pytest.fixture(scope="module")
def results():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    one = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, env=env,
                         timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    port = _port()
    procs = [subprocess.Popen([sys.executable, SCRIPT, str(i), port], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return _last_json(one.stdout)["one"], [_last_json(out) for out, _ in outs]


@pytest.mark.distributed
def test_each_sample_in_exactly_one_process(results):
    _, procs = results
    first, second = (p["seen"] for p in procs)
    assert len(first) == len(second) == 2  # epochs
    for a, b in zip(first, second):
        assert not set(a) & set(b)  # no sample on both processes' devices
        assert sorted(a + b) == list(range(44))  # every sample on one of them
        assert len(a) == len(b) == 22


@pytest.mark.distributed
@pytest.mark.parametrize("kind", ["dp", "mp"])
def test_two_processes_equal_one_device(results, kind):
    one, procs = results
    for p in procs:  # history, evaluate, predict and weights agree on every process
        assert_close(one, {k: v for k, v in p[kind].items() if k != "saved"})


@pytest.mark.distributed
def test_sharded_across_processes_saves_one_file(results):
    """ModelParallel over both processes: model.save on every process writes one file of
    full arrays; a one-device model loaded from it continues with the sharded model's loss;
    ModelCheckpoint (process 0 only) is a clear error instead of a hang."""
    _, procs = results
    for p in procs:
        saved = p["mp"]["saved"]
        assert "ModelCheckpoint cannot save a model whose parameters are sharded across " \
            "processes" in saved["checkpoint_error"]
        assert_close(saved["one"], saved["sharded"])


@pytest.mark.distributed
def test_disagreeing_process_stops_every_process(results):
    """Process 1 has fewer samples: both raise at the start of fit, naming it."""
    _, procs = results
    for me, p in enumerate(procs):
        assert p["disagree"].startswith("Process 1 disagrees with process 0 on the number "
                                        "of samples")
        assert f"this is process {me}: the number of samples = {44 - 8 * me}" in p["disagree"]


@pytest.mark.distributed
def test_killed_process_ends_the_other():
    """Process 1 dies mid-fit: process 0 does not hang; it ends with an error naming the
    dead task within the heartbeat timeout (10 s here) plus scheduling slack."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    port = _port()
    procs = [subprocess.Popen([sys.executable, SCRIPT, str(i), port, "kill"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    out1, _ = procs[1].communicate(timeout=300)
    died = _last_json(out1)["died"]
    out0, err0 = procs[0].communicate(timeout=120)
    ended = time.time()
    assert procs[1].returncode == 3
    assert procs[0].returncode != 0 and "finished" not in out0
    assert "stopped sending heartbeats" in err0 and "\n1\n" in err0, err0[-2000:]
    assert ended - died < 90
