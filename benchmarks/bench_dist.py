"""Per-device memory and speed: data parallel vs sharded parameters (JAX), 4 devices.

Run:  .venv/bin/python benchmarks/bench_dist.py [--device cpu|gpu] [--devices 4]
(``make bench-dist``). On CPU the devices are XLA host devices
(``--xla_force_host_platform_device_count``), so steps/s measures the partitioned
program's overhead, not a real interconnect; on GPU it needs that many GPUs.

The model: an MLP of about 10M parameters (1024 -> 2048 -> 2048 -> 1024 -> 1024 -> 16),
Adam, batch 64 per step. Two distributions over the same devices:

- ``DataParallel``: every device holds all parameters and both Adam moments.
- ``ModelParallel`` with ``layout_map["kernel"] = ("batch", None)`` on a 1-D mesh: each
  kernel (and its Adam moments) split over the devices on its first axis, batches split
  over the same axis (FSDP / ZeRO-3 style); biases and step counts replicated.

Prints per-device parameter + optimizer-state bytes (the largest over devices, from the
arrays' addressable shards), their ratio, and steps/s (the best of several timed epochs,
the two models' epochs interleaved).
"""

from __future__ import annotations

import argparse
import os
import time

SIZES = (1024, 2048, 2048, 1024, 1024, 16)
BATCH, STEPS, EPOCHS = 64, 8, 3


def _model():
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs)
                                    for a, b in zip(SIZES[:-1], SIZES[1:])])

        def __call__(self, x):
            for layer in self.layers[:-1]:
                x = nnx.relu(layer(x))
            return self.layers[-1](x)

    return MLP(nnx.Rngs(0))


def _build(distribution, x, y):
    import kompile as kp

    model = kp.Model(_model(), distribution=distribution)
    model.compile(kp.optimizers.Adam(1e-4), kp.losses.SparseCategoricalCrossentropy(
        from_logits=True), steps_per_execution=STEPS)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # compiles
    return model


def _time_epoch(model, x, y) -> float:
    import jax

    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    jax.block_until_ready(model._backend.state)
    return time.perf_counter() - start


def _measure(models: dict, x, y) -> dict:
    """Epochs of the models interleaved (the machine's other load hits both alike); the
    best epoch of each."""
    from kompile.backends import jax_sharding

    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(EPOCHS):
        for name, model in models.items():
            times[name].append(_time_epoch(model, x, y))
    out = {}
    for name, model in models.items():
        state = model._backend.state
        per_device = jax_sharding.device_bytes((state["params"], state["opt"]))
        out[name] = {"bytes": max(per_device.values()), "steps_s": STEPS / min(times[name]),
                     "params": sum(a.size for a in state["params"])}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or gpu (JAX platform)")
    parser.add_argument("--devices", type=int, default=4, help="devices to spread over")
    args = parser.parse_args()
    os.environ["JAX_PLATFORMS"] = {"gpu": "cuda"}.get(args.device, args.device)
    if args.device == "cpu":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={args.devices}")
    import jax
    import numpy as np

    import kompile as kp

    devices = jax.devices()[:args.devices]
    if len(devices) < args.devices:
        raise SystemExit(f"--devices {args.devices}: only {len(jax.devices())} "
                         f"{args.device} devices here.")
    r = np.random.default_rng(0)
    x = r.normal(size=(BATCH * STEPS, SIZES[0])).astype(np.float32)
    y = r.integers(0, SIZES[-1], BATCH * STEPS).astype(np.int32)
    mesh = kp.distribution.DeviceMesh((len(devices),), ["batch"], devices=devices)
    layout_map = kp.distribution.LayoutMap(mesh)
    layout_map["kernel"] = ("batch", None)
    runs = {"data parallel": kp.distribution.DataParallel(devices=devices),
            "sharded": kp.distribution.ModelParallel(layout_map=layout_map)}
    results = _measure({name: _build(dist, x, y) for name, dist in runs.items()}, x, y)
    print(f"JAX {jax.__version__}, {len(devices)} {devices[0].platform} devices, "
          f"{results['sharded']['params'] / 1e6:.1f}M parameters, Adam, batch {BATCH}")
    print(f"{'':16}{'params+opt bytes/device':>26}{'steps/s':>10}")
    for name, res in results.items():
        print(f"{name:16}{res['bytes'] / 2**20:>22.1f} MiB{res['steps_s']:>10.1f}")
    ratio = results["sharded"]["bytes"] / results["data parallel"]["bytes"]
    speed = results["sharded"]["steps_s"] / results["data parallel"]["steps_s"]
    print(f"sharded / data parallel: {ratio:.3f}x bytes per device (target <= 0.3), "
          f"{speed:.2f}x steps/s")


if __name__ == "__main__":
    main()
