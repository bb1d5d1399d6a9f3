"""One torch process of a gloo group, started by tests/test_distributed_torch_accumulate.py:
gradient accumulation under DistributedDataParallel. Counts DDP's gradient all-reduces
(a communication hook) and prints the weights and the count as JSON on the last line.
``run`` without a process group is the one-process reference."""

import datetime
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import (  # noqa: E402
    allreduce_hook,
)

import kompile as kp  # noqa: E402
from tests.models import build  # noqa: E402


def run():
    r = np.random.default_rng(0)
    x = r.normal(size=(48, 4)).astype(np.float32)
    y = r.integers(0, 3, 48).astype(np.int64)
    torch.manual_seed(0)
    module = build("torch", "mlp", n_in=4, hidden=16, n_out=3)
    model = kp.Model(module).compile(
        kp.optimizers.SGD(0.05, momentum=0.9, gradient_accumulation_steps=3),
        "sparse_categorical_crossentropy")
    calls = []

    def count(state, bucket):
        calls.append(1)
        return allreduce_hook(state, bucket)

    def hook(logs):
        ddp = model._backend.train_module
        if ddp is not None:
            ddp.register_comm_hook(None, count)

    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
              callbacks=[kp.callbacks.LambdaCallback(on_train_begin=hook)])
    return {"weights": [w.tolist() for w in model.get_weights()], "allreduce": len(calls),
            "iterations": model.optimizer.iterations}


def main():
    rank, world, port = (int(a) for a in sys.argv[1:4])
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=60))
    print(json.dumps(run()))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
