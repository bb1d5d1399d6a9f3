"""One of two JAX processes (CPU, gloo collectives), started by tests/test_distributed_jax.py.

Usage: jax_multiprocess.py PROCESS_ID PORT. Each process has 2 local CPU devices (4 in
all); prints its training results as JSON.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(f"127.0.0.1:{sys.argv[2]}", num_processes=2,
                           process_id=int(sys.argv[1]))

import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402

import kompile as kp  # noqa: E402
from tests.scripts.jax_data_parallel import run  # noqa: E402

if __name__ == "__main__":
    assert len(jax.devices()) == 4 and len(jax.local_devices()) == 2
    np.random.seed(int(sys.argv[1]))  # different seeds: the data order must still agree
    result = run("single", kp.distribution.DataParallel())
    result.pop("all_reduce")
    print(json.dumps(result), flush=True)
    # Leave together: a barrier over both processes' devices, then the coordination service's
    # own shutdown barrier, so process 0 (which hosts the service) never vanishes while
    # process 1 still polls it ("Failed to send RPC to coordination service ... Socket closed").
    multihost_utils.sync_global_devices("kompile-test-done")
    jax.distributed.shutdown()
    os._exit(0)  # everyone is past the shutdown barrier; skip the interpreter's teardown
