"""Model families on torch: kompile's ``fit`` against a hand-written loop, interleaved.

Run:  .venv/bin/python benchmarks/families_torch.py [--device cpu|cuda] [--rounds 5]
      [--no-compile]

The families of families_jax.py: the MLP 64-128-128-10 as a class and as
``torch.nn.Sequential``, a small CNN, and a transformer block with dropout
(``nn.TransformerEncoderLayer``, dropout 0.1). Each is timed eager (kompile's default ``fit``
against a hand-written loop: the batch gathered from the device copy of the data, zero_grad,
forward, cross-entropy, backward, fused Adam, loss and accuracy sums kept on the device), and
the MLP also compiled (``jit_compile=True`` against the same hand-written step under
``torch.compile``, backward traced into the graph as kompile does; ``--no-compile`` skips
it: compiling takes tens of seconds on CPU). Same process, round by round; a rate is a
loop's best epoch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families_jax import interleave, rates, report  # noqa: E402


def families():
    """name -> (module factory, x, y, batch size)."""
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2, self.l3 = nn.Linear(64, 128), nn.Linear(128, 128), nn.Linear(128, 10)

        def forward(self, x):
            return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))

    def seq():
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                             nn.Linear(128, 10))

    def cnn():
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                             nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                             nn.Flatten(), nn.Linear(32 * 4 * 4, 10))

    class Block(nn.Module):
        def __init__(self, d=32, heads=4, vocab=64):
            super().__init__()
            self.emb = nn.Embedding(vocab, d)
            self.block = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.1,
                                                    batch_first=True, norm_first=True)
            self.out = nn.Linear(d, 10)

        def forward(self, x):
            return self.out(self.block(self.emb(x)).mean(1))

    r = np.random.default_rng(0)
    xm = r.normal(size=(8192, 64)).astype(np.float32)
    ym = np.abs(xm[:, :10]).argmax(1).astype(np.int64)
    xc = r.normal(size=(1024, 3, 16, 16)).astype(np.float32)
    yc = r.integers(0, 10, 1024)
    xt = r.integers(0, 64, (2048, 16))
    yt = xt[:, 0] % 10
    return {"MLP (class)": (MLP, xm, ym, 32), "MLP (nn.Sequential)": (seq, xm, ym, 32),
            "CNN": (cnn, xc, yc, 64), "transformer block, dropout": (Block, xt, yt, 32)}


def hand_loop(make, x, y, bs, device, compiled=False):
    import torch

    torch.manual_seed(0)
    model = make().to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3, eps=1e-7, fused=True)
    xd, yd = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
    steps = len(x) // bs

    def step(xb, yb, sums):
        logits = model(xb)
        loss = torch.nn.functional.cross_entropy(logits, yb)
        loss.backward()
        opt.step()
        with torch.no_grad():
            correct = (logits.argmax(-1) == yb).sum()
            return sums + torch.stack([loss.detach() * len(yb), correct.float()])

    step_fn = step
    if compiled:  # backward traced into the graph where this torch can (as kompile does)
        inner = torch.compile(step)
        config = torch._dynamo.config
        patch = ({"trace_autograd_ops": True} if hasattr(config, "trace_autograd_ops")
                 else {})

        def step_fn(xb, yb, sums):
            with config.patch(**patch):
                return inner(xb, yb, sums)

    def run():
        model.train()
        rows = torch.randperm(steps * bs, device=device).view(steps, bs)
        sums = torch.zeros(2, device=device)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            sums = step_fn(xd.index_select(0, rows[i]), yd.index_select(0, rows[i]), sums)
        sums.tolist()  # sync
        return rates(steps, t0, c0)

    run()  # warm up (compiles)
    return run


def kompile_fit(make, x, y, bs, device, jit=False):
    import torch

    import kompile as kp

    torch.manual_seed(0)
    model = kp.Model(make().to(device)).compile(
        kp.optimizers.Adam(1e-3), kp.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"], jit_compile=jit)
    steps = len(x) // bs
    model.fit(x, y, batch_size=bs, epochs=1, verbose=0)  # warm up (compiles)

    def run():
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(x, y, batch_size=bs, epochs=1, verbose=0)
        return rates(steps, t0, c0)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--only", default="", help="families whose name contains this")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__} on {args.device}, {torch.get_num_threads()} threads; "
          f"{args.rounds} interleaved rounds", flush=True)
    loops, targets = {}, []
    for name, (make, x, y, bs) in families().items():
        if args.only not in name:
            continue
        loops[f"{name}: kompile"] = kompile_fit(make, x, y, bs, args.device)
        loops[f"{name}: hand"] = hand_loop(make, x, y, bs, args.device)
        targets.append((f"{name}: kompile", f"{name}: hand", 0.95))
    targets.append(("MLP (nn.Sequential): kompile", "MLP (class): kompile", 0.97))
    if not args.no_compile:
        make, x, y, bs = families()["MLP (class)"]
        loops["MLP compiled: kompile jit_compile=True"] = kompile_fit(make, x, y, bs,
                                                                      args.device, jit=True)
        loops["MLP compiled: hand torch.compile"] = hand_loop(make, x, y, bs, args.device,
                                                              compiled=True)
        targets += [("MLP compiled: kompile jit_compile=True", "MLP compiled: hand torch.compile",
                     0.95),
                    ("MLP compiled: kompile jit_compile=True", "MLP (class): kompile", None)]
    report(interleave(loops, args.rounds), [t for t in targets if t[0] in loops and t[1] in loops])


if __name__ == "__main__":
    main()
