"""One torch process of a gloo process group, started by tests/test_sharded_torch.py.

Usage: torch_fsdp.py RANK WORLD PORT FOLDER. Trains an MLP (float32 and mixed_bfloat16)
and a transformer block with
``kp.distribution.FSDP`` (FSDP2) and prints the results as JSON on the last line.
``run(kind)`` without a process group is the one-process reference (the test calls it in
its own process). Process 1 starts from other weights: FSDP must start from process 0's.
"""

import datetime
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import kompile as kp  # noqa: E402

N = 36  # 4 batches of 8 and a last one of 4


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.out = (torch.nn.Linear(6, 16), torch.nn.Linear(16, 16),
                                      torch.nn.Linear(16, 3))

    def forward(self, x):
        return self.out(torch.relu(self.l2(torch.relu(self.l1(x)))))


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        # no biases: the key bias has no gradient (softmax ignores it), and Adam would turn
        # rounding noise in it into steps of the learning rate
        self.block = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True,
                                                      bias=False)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.block(x.reshape(-1, 3, 8)).mean(1))


def data(kind):
    r = np.random.default_rng(0)
    x = r.normal(size=(N, 24 if kind == "block" else 6)).astype(np.float32)
    return x, r.integers(0, 3, N).astype(np.int64)


def build(kind, rank):
    torch.manual_seed(0)
    module = Block() if kind == "block" else MLP()
    if rank:
        with torch.no_grad():
            for p in module.parameters():
                p.add_(1.0)
    return module


def run(kind, rank=0, distributed=False):
    x, y = data(kind)
    shard = torch.nn.TransformerEncoderLayer if kind == "block" else torch.nn.Linear
    dist = kp.distribution.FSDP(shard_modules=shard) if distributed else None
    policy = "mixed_bfloat16" if kind == "mixed" else None  # FSDP's MixedPrecisionPolicy
    model = kp.Model(build(kind, rank), dtype_policy=policy, distribution=dist).compile(
        kp.optimizers.Adam(0.01, global_clipnorm=0.5),
        kp.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
        steps_per_execution=2)
    hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    out = {"history": hist.history,
           "evaluate": model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True),
           "predict": np.asarray(model.predict(x, batch_size=8, verbose=0)).tolist(),
           "weights": [w.tolist() for w in model.get_weights()]}
    return out, model


def sharded_facts(model):
    params = list(model._backend.module.parameters())
    local = sum(p.to_local().numel() for p in params)
    opt = sum(v.to_local().numel() for s in model._backend.opt.state.values()
              for v in s.values() if hasattr(v, "to_local"))
    return {"dtensor": all(hasattr(p, "to_local") for p in params), "dtype": str(params[0].dtype),
            "local": local, "total": sum(p.numel() for p in params), "opt_local": opt}


def checkpoint(model, folder, rank):
    """model.save on every process (process 0 writes); loaded under FSDP again, it continues
    like the model itself; ModelCheckpoint is refused (process 0 alone cannot gather)."""
    x, y = data("mlp")
    out = {}
    path = os.path.join(folder, "fsdp.kompile")
    try:
        model.fit(x, y, batch_size=8, verbose=0,
                  callbacks=[kp.callbacks.ModelCheckpoint(path + ".ckpt")])
    except ValueError as err:
        out["checkpoint_error"] = str(err)
    model.save(path)
    torch.distributed.barrier()
    loaded = kp.load_model(path, build("mlp", rank), distribution=kp.distribution.FSDP())
    fit = dict(batch_size=8, epochs=1, verbose=0, shuffle=False)
    out["loaded"] = loaded.fit(x, y, **fit).history["loss"]
    out["continued"] = model.fit(x, y, **fit).history["loss"]
    return out


def main():
    rank, world, port = (int(a) for a in sys.argv[1:4])
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=120))
    out = {}
    for kind in ("mlp", "block", "mixed"):
        out[kind], model = run(kind, rank, distributed=True)
        out[kind + "_facts"] = sharded_facts(model)
        if kind == "mlp":
            out["checkpoint"] = checkpoint(model, sys.argv[4], rank)
    print(json.dumps(out), flush=True)
    torch.distributed.barrier()  # every process is done
    torch.distributed.destroy_process_group()
    os._exit(0)  # gloo's threads can abort the interpreter's teardown


if __name__ == "__main__":
    main()
