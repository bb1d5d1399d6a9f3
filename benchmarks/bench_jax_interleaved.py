"""The JAX MLP benchmark with every loop in ONE process, alternating round by round.

Run by hand:  .venv/bin/python benchmarks/bench_jax_interleaved.py

bench_jax.py runs each configuration in its own process (clean memory numbers); on a shared
machine, load drifts between those processes. Here the loops alternate epoch by epoch and
each keeps its fastest epoch, so drift hits them alike. kompile and Keras are timed over
whole ``fit`` epochs (their per-epoch work included); the hand-written loops over their steps.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from bench_jax import _hand_parts, flax_mlp, mlp_data  # noqa: E402

ROUNDS, STEPS, BS = 7, 256, 32


def timed_fit(model, x, y):
    model.fit(x, y, batch_size=BS, epochs=1, verbose=0)  # compile

    def run():
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=BS, epochs=1, verbose=0)
        return STEPS / (time.perf_counter() - t0)

    return run


def kompile_loop(x, y, spe):
    import kompile as kp

    model = kp.Model(flax_mlp()).compile(
        kp.optimizers.Adam(1e-3), kp.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"], steps_per_execution=spe)
    return timed_fit(model, x, y)


def keras_loop(x, y, spe):
    import keras

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], steps_per_execution=spe)
    return timed_fit(model, x, y)


def hand_loops(x, y):
    step, params, opt_state = _hand_parts("mlp")
    step = jax.jit(step, donate_argnums=(0, 1, 2))
    xd, yd = jax.device_put(x), jax.device_put(y)
    state = [params, opt_state, tuple(jnp.array(float(i)) * 0 for i in range(3))]

    def run(batches):
        t0 = time.perf_counter()
        for xb, yb in batches():
            state[0], state[1], state[2] = step(*state, xb, yb)
        jax.block_until_ready(state[2])
        return STEPS / (time.perf_counter() - t0)

    def presliced():
        perm = np.random.permutation(len(x))
        xs, ys = xd[perm].reshape(STEPS, BS, -1), yd[perm].reshape(STEPS, BS)
        ready = [(xs[i], ys[i]) for i in range(STEPS)]
        jax.block_until_ready(ready)  # slicing happens before the timed steps
        return run(lambda: ready)

    def slicing():
        perm = np.random.permutation(len(x))
        xs, ys = xd[perm], yd[perm]
        return run(lambda: ((xs[i * BS:(i + 1) * BS], ys[i * BS:(i + 1) * BS])
                            for i in range(STEPS)))

    return presliced, slicing


def main() -> None:
    x, y = mlp_data()
    presliced, slicing = hand_loops(x, y)
    loops = {"kompile spe=1": kompile_loop(x, y, 1), "kompile spe=32": kompile_loop(x, y, 32),
             "hand-written step, batches pre-sliced": presliced,
             "hand-written step, slicing each batch": slicing,
             "keras3-jax spe=1": keras_loop(x, y, 1), "keras3-jax spe=32": keras_loop(x, y, 32)}
    best: dict[str, float] = {}
    for _ in range(ROUNDS):
        for name, run in loops.items():
            best[name] = max(best.get(name, 0.0), run())
    for name, rate in best.items():
        print(f"{name:40s} {rate:9.0f} steps/s")
    k1, k32 = best["kompile spe=1"], best["kompile spe=32"]
    print(f"\nkompile spe=1 / pre-sliced hand step:   {k1 / best[list(loops)[2]]:.2f}x")
    print(f"kompile spe=1 / slicing hand step:      {k1 / best[list(loops)[3]]:.2f}x")
    print(f"kompile spe=1 / Keras 3 spe=1:          {k1 / best['keras3-jax spe=1']:.2f}x")
    print(f"kompile spe=32 / Keras 3 spe=32:        {k32 / best['keras3-jax spe=32']:.2f}x")


if __name__ == "__main__":
    main()
