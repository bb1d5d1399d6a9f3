"""Training-loop speed on torch: kompile vs a hand-written loop vs Keras 3, in one run.

Run by hand (not part of the tests):  .venv/bin/python benchmarks/bench_torch.py [--quick]

The MLP 64 -> 128 -> 128 -> 10 (batch 32, Adam, sparse crossentropy from logits, accuracy)
on digits-sized random data, trained by:
- kompile eager (``jit_compile="auto"``) and kompile ``jit_compile=True`` (torch.compile);
- a hand-written nanoGPT-style loop doing the same work per step (gather the batch,
  forward, cross entropy, backward, Adam step, loss and accuracy sums kept on the device),
  once with torch's default Adam kernel and once with ``fused=True`` (what kompile picks for
  Adam, AdamW and SGD);
- Keras 3 on its torch backend, in a subprocess (Keras picks its backend at import).
The kompile and hand-written runs share one process and alternate round by round, so
drifting machine load hits them alike; every configuration uses the same torch thread
count (``--threads``, default 1: faster than 2 for this model, and steadier on a shared
machine). Prints steps per second (median of the rounds) and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

N, BATCH = 8192, 32


def data():
    r = np.random.default_rng(0)
    x = r.normal(size=(N, 64)).astype(np.float32)
    return x, np.abs(x[:, :10]).argmax(1).astype(np.int32)


def torch_mlp():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, 10))


def _rates(t0: float, c0: float) -> tuple[float, float]:
    """Steps per second of wall time and of this thread's CPU time (the second is steadier
    when other processes share the cores)."""
    steps = N // BATCH
    return steps / (time.perf_counter() - t0), steps / (time.thread_time() - c0)


class Kompile:
    def __init__(self, jit: bool):
        import kompile as kp

        self.x, self.y = data()
        self.model = kp.Model(torch_mlp()).compile(
            kp.optimizers.Adam(1e-3), kp.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"], jit_compile=jit)
        t0 = time.perf_counter()
        self.model.fit(self.x[:BATCH], self.y[:BATCH], batch_size=BATCH, verbose=0)
        self.first_step = time.perf_counter() - t0
        self.epoch()  # warm: compiles (jit) and allocates everything once

    def epoch(self) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.thread_time()
        hist = self.model.fit(self.x, self.y, batch_size=BATCH, epochs=1, verbose=0)
        assert np.isfinite(hist.history["loss"][-1])
        return _rates(t0, c0)


class HandWritten:
    """What a careful user writes: data on the device, one index row per step, no host
    sync inside the epoch, the epoch's loss and accuracy read once at its end."""

    def __init__(self, fused: bool | None):
        import torch

        x, y = data()
        self.torch, self.x, self.y = torch, torch.from_numpy(x), torch.from_numpy(y).long()
        self.module = torch_mlp()
        self.opt = torch.optim.Adam(self.module.parameters(), lr=1e-3, eps=1e-7, fused=fused)
        # (torch.optim's one-time import of torch._dynamo, ~2 s, was paid by kompile eager,
        # which builds the first optimizer of the process)
        t0 = time.perf_counter()
        self.run(1)
        self.first_step = time.perf_counter() - t0
        self.epoch()

    def run(self, steps: int) -> tuple[float, float]:
        torch, module, opt = self.torch, self.module, self.opt
        order = torch.randperm(N)[: steps * BATCH].view(steps, BATCH)
        loss_sum, correct = torch.zeros(()), torch.zeros(())
        module.train()
        for i in range(steps):
            idx = order[i]
            xb, yb = self.x[idx], self.y[idx]
            opt.zero_grad(set_to_none=True)
            logits = module(xb)
            loss = torch.nn.functional.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += loss.detach() * BATCH
                correct += (logits.argmax(-1) == yb).sum()
        return float(loss_sum) / (steps * BATCH), float(correct) / (steps * BATCH)

    def epoch(self) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.thread_time()
        self.run(N // BATCH)
        return _rates(t0, c0)


def keras_child(rounds: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    import keras

    x, y = data()
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, epochs=1, verbose=0)
    first = time.perf_counter() - t0
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    rates = []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.thread_time()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        rates.append(_rates(t0, c0))
    print(json.dumps({"rates": rates, "first_step_s": first}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 rounds, no Keras")
    parser.add_argument("--keras-child", action="store_true")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    if args.keras_child:
        return keras_child(rounds, args.threads)
    import torch

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {N} samples, batch {BATCH}, "
          f"{N // BATCH} steps per epoch, {rounds} rounds\n", flush=True)
    runners = {"kompile eager": lambda: Kompile(jit=False),
               "kompile jit_compile=True": lambda: Kompile(jit=True),
               "hand-written (torch default Adam)": lambda: HandWritten(fused=None),
               "hand-written (fused Adam)": lambda: HandWritten(fused=True)}
    built = {name: make() for name, make in runners.items()}
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in built}
    for _ in range(rounds):
        for name, runner in built.items():
            rates[name].append(runner.epoch())
    median = lambda r, i: statistics.median(v[i] for v in r)  # noqa: E731
    rows = {name: (median(r, 0), median(r, 1), built[name].first_step)
            for name, r in rates.items()}
    if not args.quick:
        out = subprocess.run(
            [sys.executable, __file__, "--keras-child", "--rounds", str(rounds),
             "--threads", str(args.threads)],
            capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "torch"})
        if out.returncode:
            print(f"keras3-torch: failed\n{out.stderr[-2000:]}")
        else:
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows["keras3-torch"] = (median(result["rates"], 0), median(result["rates"], 1),
                                    result["first_step_s"])
    print(f"{'':36s} {'steps/s':>8s} {'per CPU s':>10s}")
    for name, (rate, cpu_rate, first) in rows.items():
        print(f"{name:36s} {rate:8.0f} {cpu_rate:10.0f}   first step {first:6.2f}s")
    ratio = lambda a, b, i: rows[a][i] / rows[b][i]  # noqa: E731
    print("\nratios, wall (CPU time) (target):")
    for a, b, target in [("kompile eager", "hand-written (torch default Adam)", 0.9),
                         ("kompile eager", "hand-written (fused Adam)", None),
                         ("kompile eager", "keras3-torch", 3.0),
                         ("kompile jit_compile=True", "kompile eager", None),
                         ("kompile jit_compile=True", "keras3-torch", None)]:
        if a in rows and b in rows:
            goal = f"(target >= {target}x)" if target else ""
            print(f"  {a} / {b}: {ratio(a, b, 0):.2f}x ({ratio(a, b, 1):.2f}x) {goal}")


if __name__ == "__main__":
    main()
