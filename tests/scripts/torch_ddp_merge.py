"""One torch process of a 2-process gloo group, started by tests/test_metric_merge.py.

Usage: torch_ddp_merge.py RANK WORLD PORT. Evaluates and fits (learning rate 0: the weights
stay) a fixed linear module with a metric whose states merge by max and by min, and prints
its results as JSON on the last line. Each process sees half of every batch, so a metric
state summed over the processes (the bug this guards against) gives the sum of the halves'
maxima instead of the maximum.
"""

import datetime
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import kompile as kp  # noqa: E402


class AbsErrorRange(kp.metrics.Metric):
    """Largest and smallest absolute error seen; the result is their difference."""

    merges = {"max": "max", "min": "min"}

    def init(self):
        return {"max": np.zeros((), np.float32), "min": np.full((), np.inf, np.float32)}

    def update(self, state, y_true, y_pred, sample_weight=None):
        err = (y_pred - y_true).abs()
        return {"max": torch.maximum(state["max"], err.max()),
                "min": torch.minimum(state["min"], err.min())}

    def result(self, state):
        return state["max"] - state["min"]


def data():
    """16 samples whose predictions (x @ W) are known; the largest error is on a sample of
    process 1's half of the second batch, the smallest on process 0's half."""
    x = np.linspace(-1.0, 1.0, 48, dtype=np.float32).reshape(16, 3)
    w = np.array([[0.5], [-1.0], [2.0]], np.float32)
    y = x @ w + np.linspace(0.1, 0.4, 16, dtype=np.float32)[:, None]
    y[13] += 5.0  # batch 2 (rows 8-15): rank 1 holds rows 12-15
    y[9] = (x @ w)[9] + 0.01  # rank 0's half of batch 2
    return x, y, w


def run():
    x, y, w = data()
    module = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(w.T))
    model = kp.Model(module).compile(kp.optimizers.SGD(0.0), "mse",
                                     metrics=[AbsErrorRange(name="range")])
    ev = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    hist = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return {"evaluate": ev["range"], "fit": hist.history["range"][-1],
            "backend": type(model._backend).__name__}


def main():
    rank, world, port = (int(a) for a in sys.argv[1:4])
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=60))
    print(json.dumps(run()), flush=True)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    os._exit(0)  # gloo's threads may abort the interpreter's teardown (see torch_ddp.py)


if __name__ == "__main__":
    main()
