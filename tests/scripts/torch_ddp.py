"""One torch process of a gloo process group, started by tests/test_distributed_torch.py.

Usage: torch_ddp.py RANK WORLD PORT. Trains the models of ``run`` under
DistributedDataParallel and prints the results as JSON on the last line. ``run`` without
a process group is the one-process reference (the test calls it in its own process).
Process 0's weights are the reference's; the other processes start from other weights and
another NumPy seed, so equal results show DDP's weight broadcast and the agreed data order.
"""

import datetime
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import kompile as kp  # noqa: E402
from tests.models import build  # noqa: E402

N = 75  # 9 batches of 8 and a last batch of 3, which does not divide by 2 processes


def data(kind):
    r = np.random.default_rng(0)
    x = r.normal(size=(N, 4)).astype(np.float32)
    sw = r.uniform(0.1, 2.0, size=N).astype(np.float32)
    if kind == "single":
        return x, r.integers(0, 3, N).astype(np.int64), sw
    return x, {"z": r.normal(size=(N, 3)).astype(np.float32),
               "a": r.normal(size=(N, 1)).astype(np.float32),
               "m": np.eye(5, dtype=np.float32)[r.integers(0, 5, N)]}, sw


def run(kind, rank=0):
    x, y, sw = data(kind)
    if kind == "single":  # no distribution argument: the process group alone switches DDP on
        module = build("torch", "mlp", n_in=4, hidden=16, n_out=3)
        kwargs = {}
        compile_kw = dict(loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                          weighted_metrics=["sparse_categorical_crossentropy"])
    else:
        module = build("torch", "multi", n_in=4)
        kwargs = {"distribution": kp.distribution.DataParallel()}
        compile_kw = dict(loss={"z": "mse", "a": kp.losses.MeanAbsoluteError(reduction="sum"),
                                "m": "categorical_crossentropy"},
                          loss_weights={"z": 1.0, "a": 0.5, "m": 2.0},
                          metrics={"m": ["accuracy"], "z": ["mae"]}, weighted_metrics=["mse"])
    if rank:
        with torch.no_grad():
            for p in module.parameters():
                p.add_(1.0)
    model = kp.Model(module, **kwargs).compile(
        kp.optimizers.SGD(0.05, momentum=0.9), steps_per_execution=2, **compile_kw)
    np.random.seed(rank)  # the shuffled order must still be process 0's everywhere
    hist = model.fit(x, y, batch_size=8, epochs=3, sample_weight=sw,
                     verbose=2 if kind == "single" else 0)
    ev = model.evaluate(x, y, batch_size=8, sample_weight=sw, verbose=0, return_dict=True)
    pred = model.predict(x, batch_size=8, verbose=0)
    pred = pred if isinstance(pred, dict) else {"out": pred}
    return {"history": hist.history, "evaluate": ev,
            "weights": [w.tolist() for w in model.get_weights()],
            "names": sorted(model._backend.weights_dict()),
            "predict": {k: np.asarray(v).tolist() for k, v in pred.items()}}


def main():
    rank, world, port = (int(a) for a in sys.argv[1:4])
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=60))
    out = {kind: run(kind, rank) for kind in ("single", "multi")}
    backend = kp.Model(build("torch", "mlp"))._backend
    out["ddp"] = type(backend).__name__
    try:
        kp.Model(build("torch", "mlp")).compile("sgd", "sparse_categorical_crossentropy").fit(
            np.zeros((10, 8), np.float32), np.zeros(10, np.int64), batch_size=5, verbose=0)
        out["error"] = None
    except ValueError as err:
        out["error"] = str(err)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kp.Model(build("torch", "linear", n_in=2, n_out=1)).compile(
            "sgd", kp.losses.MeanSquaredError(reduction="mean_with_sample_weight")).fit(
            np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32), batch_size=4, verbose=0)
    out["warnings"] = [str(w.message) for w in caught]
    print(json.dumps(out), flush=True)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    # gloo's threads can abort the interpreter's own teardown ("terminate called without an
    # active exception") when the machine is loaded; the results are out, so leave at once
    os._exit(0)


if __name__ == "__main__":
    main()
