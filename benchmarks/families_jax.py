"""Model families on JAX: kompile's default ``fit`` against a hand-written loop, interleaved.

Run:  .venv/bin/python benchmarks/families_jax.py [--device cpu|gpu] [--rounds 5]

Four families, each trained with sparse crossentropy from logits, Adam and accuracy: the MLP
64-128-128-10 as a class and as ``nnx.Sequential`` (which declares ``rngs``: kompile passes
it a key nobody draws from), a small CNN, and a transformer block with dropout (which draws
from the ``nnx.Rngs`` kompile passes, a fresh key per step). Each is timed against a
hand-written whole-epoch ``lax.scan`` of the same step (Optax Adam, the key split once per
step where the model draws), in the same process, round by round; a rate is a loop's best
epoch. kompile is timed over whole ``fit(epochs=1)`` calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def _platform(device: str) -> None:
    os.environ["JAX_PLATFORMS"] = {"gpu": "cuda", "cuda": "cuda"}.get(device, device)


def families():
    """name -> (module factory, x, y, batch size, draws)."""
    from flax import nnx

    r = np.random.default_rng(0)

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.l1, self.l2 = nnx.Linear(64, 128, rngs=rngs), nnx.Linear(128, 128, rngs=rngs)
            self.l3 = nnx.Linear(128, 10, rngs=rngs)

        def __call__(self, x):
            return self.l3(nnx.relu(self.l2(nnx.relu(self.l1(x)))))

    def seq():
        rngs = nnx.Rngs(0)
        return nnx.Sequential(nnx.Linear(64, 128, rngs=rngs), nnx.relu,
                              nnx.Linear(128, 128, rngs=rngs), nnx.relu,
                              nnx.Linear(128, 10, rngs=rngs))

    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.c1 = nnx.Conv(3, 16, (3, 3), rngs=rngs)
            self.c2 = nnx.Conv(16, 32, (3, 3), rngs=rngs)
            self.out = nnx.Linear(32 * 4 * 4, 10, rngs=rngs)

        def __call__(self, x):
            x = nnx.avg_pool(nnx.relu(self.c1(x)), (2, 2), (2, 2))
            x = nnx.avg_pool(nnx.relu(self.c2(x)), (2, 2), (2, 2))
            return self.out(x.reshape(x.shape[0], -1))

    class Block(nnx.Module):
        """Embedding, one pre-norm transformer block with dropout, mean pool, classifier."""

        def __init__(self, rngs, d=32, heads=4, vocab=64):
            self.emb = nnx.Embed(vocab, d, rngs=rngs)
            self.n1, self.n2 = nnx.LayerNorm(d, rngs=rngs), nnx.LayerNorm(d, rngs=rngs)
            self.att = nnx.MultiHeadAttention(heads, d, decode=False, rngs=rngs)
            self.f1, self.f2 = nnx.Linear(d, 2 * d, rngs=rngs), nnx.Linear(2 * d, d, rngs=rngs)
            self.drop = nnx.Dropout(0.1)
            self.out = nnx.Linear(d, 10, rngs=rngs)

        def __call__(self, x, rngs=None):
            h = self.emb(x)
            h = h + self.drop(self.att(self.n1(h)), rngs=rngs)
            h = h + self.drop(self.f2(nnx.relu(self.f1(self.n2(h)))), rngs=rngs)
            return self.out(h.mean(1))

    xm = r.normal(size=(8192, 64)).astype(np.float32)
    ym = np.abs(xm[:, :10]).argmax(1).astype(np.int32)
    xc = r.normal(size=(512, 16, 16, 3)).astype(np.float32)
    yc = r.integers(0, 10, 512).astype(np.int32)
    xt = r.integers(0, 64, (2048, 16)).astype(np.int32)
    yt = (xt[:, 0] % 10).astype(np.int32)
    return {
        "MLP (class)": (lambda: MLP(nnx.Rngs(0)), xm, ym, 32, False),
        "MLP (nnx.Sequential)": (seq, xm, ym, 32, False),
        "CNN": (lambda: CNN(nnx.Rngs(0)), xc, yc, 64, False),
        "transformer block, dropout": (lambda: Block(nnx.Rngs(0)), xt, yt, 32, True),
    }


def hand_scan(make, x, y, bs, draws):
    """A whole-epoch ``lax.scan`` of a hand-written step; returns one timed epoch."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    graphdef, params, rest = nnx.split(make(), nnx.Param, ...)
    tx = optax.adam(1e-3, eps=1e-7)
    steps = len(x) // bs
    xd, yd = jax.device_put(x[:steps * bs]), jax.device_put(y[:steps * bs])

    def step(carry, batch):
        params, opt_state, key, sums = carry
        xb, yb = batch
        sub = None
        if draws:
            key, sub = jax.random.split(key)

        def loss_fn(p):
            kw = {} if sub is None else {"rngs": nnx.Rngs(sub)}
            logits = nnx.merge(graphdef, p, rest, copy=True)(xb, **kw)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        acc = jnp.mean(jnp.argmax(logits, -1) == yb)
        sums = (sums[0] + loss * bs, sums[1] + acc * bs, sums[2] + bs)
        return (optax.apply_updates(params, updates), opt_state, key, sums), None

    @jax.jit
    def epoch(params, opt_state, key, perm):
        xs = xd[perm].reshape((steps, bs) + x.shape[1:])
        ys = yd[perm].reshape(steps, bs)
        zero = (jnp.zeros(()), jnp.zeros(()), jnp.zeros(()))
        return jax.lax.scan(step, (params, opt_state, key, zero), (xs, ys))[0]

    state = [params, tx.init(params), jax.random.key(0)]

    def run():
        t0, c0 = time.perf_counter(), time.process_time()
        p, o, k, sums = epoch(*state, np.random.permutation(steps * bs))
        jax.block_until_ready(sums)
        state[:] = [p, o, k]
        return rates(steps, t0, c0)

    run()  # compile
    return run


def kompile_fit(make, x, y, bs, draws, spe=None):
    import kompile as kp

    extra = {} if spe is None else {"steps_per_execution": spe}
    model = kp.Model(make(), seed=0 if draws else None).compile(
        kp.optimizers.Adam(1e-3), kp.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"], **extra)
    steps = len(x) // bs
    model.fit(x, y, batch_size=bs, epochs=1, verbose=0)  # compile, calibrate

    def run():
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(x, y, batch_size=bs, epochs=1, verbose=0)
        return rates(steps, t0, c0)

    return run


TARGETS = [  # (numerator, denominator, target)
    ("MLP (class): kompile", "MLP (class): hand", 0.85),
    ("MLP (nnx.Sequential): kompile", "MLP (nnx.Sequential): hand", 0.85),
    ("MLP (nnx.Sequential): kompile", "MLP (class): kompile", 0.97),
    ("CNN: kompile", "CNN: hand", 0.85),
    ("transformer block, dropout: kompile", "transformer block, dropout: hand", 0.9),
    # XLA:CPU runs convolution gradients inside a loop (scan, fori_loop) far slower than in a
    # one-step call: docs/performance.md
    ("CNN: kompile steps_per_execution=1", "CNN: kompile", None),
]


def rates(steps: int, t0: float, c0: float) -> tuple[float, float]:
    """Steps per second of wall time and per second of the process's CPU time (all its
    threads: other processes on a shared machine disturb it much less)."""
    return (steps / (time.perf_counter() - t0),
            steps / max(time.process_time() - c0, 1e-9))


def interleave(loops: dict, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Each loop's rates, the loops alternating round by round (reversed every other)."""
    got: dict[str, list[tuple[float, float]]] = {name: [] for name in loops}
    names = list(loops)
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            got[name].append(loops[name]())
    return got


def report(got: dict[str, list[tuple[float, float]]], targets: list) -> None:
    wall = {k: [w for w, _ in v] for k, v in got.items()}
    cpu = {k: [c for _, c in v] for k, v in got.items()}
    print(f"\n{'':44s} {'steps/s':>8s} {'spread':>7s} {'per CPU s':>10s}")
    for name, r in wall.items():
        print(f"{name:44s} {max(r):8.0f} {max(r) / min(r):6.2f}x {max(cpu[name]):10.0f}")
    print("\nratios of the best epochs, wall (CPU time) (target):")
    for a, b, target in targets:
        ratio = max(wall[a]) / max(wall[b])
        verdict = "" if target is None else (
            f" (>= {target}) {'ok' if ratio >= target else 'MISSED'}")
        print(f"  {a} / {b}: {ratio:.2f}x ({max(cpu[a]) / max(cpu[b]):.2f}x){verdict}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu", help="cpu or gpu (JAX platform)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="families whose name contains this")
    args = parser.parse_args()
    _platform(args.device)
    import jax

    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU cores; "
          f"{args.rounds} interleaved rounds", flush=True)
    loops = {}
    for name, (make, x, y, bs, draws) in families().items():
        if args.only not in name:
            continue
        loops[f"{name}: kompile"] = kompile_fit(make, x, y, bs, draws)
        loops[f"{name}: hand"] = hand_scan(make, x, y, bs, draws)
        if name == "CNN":
            loops["CNN: kompile steps_per_execution=1"] = kompile_fit(make, x, y, bs, draws, 1)
    report(interleave(loops, args.rounds), [t for t in TARGETS if t[0] in loops and t[1] in loops])


if __name__ == "__main__":
    sys.exit(main())
