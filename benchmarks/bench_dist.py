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

``--torch`` also runs the same MLP on torch with 4 gloo processes (CPU): DDP
(``DataParallel``) vs FSDP2 (``FSDP(shard_modules=torch.nn.Linear)``), per-process bytes of
the parameters and Adam state each process holds, and steps/s.

Prints per-device parameter + optimizer-state bytes (the largest over devices, from the
arrays' addressable shards), their ratio, and steps/s (the best of several timed epochs,
the two models' epochs interleaved).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
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


def _torch_worker(rank: int, world: int, port: str, mode: str) -> None:
    """One gloo process: fit the MLP under DDP or FSDP2, print bytes held and steps/s."""
    import numpy as np
    import torch

    import kompile as kp

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    layers: list = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    module = torch.nn.Sequential(*layers[:-1])
    dist = kp.distribution.FSDP(shard_modules=torch.nn.Linear) if mode == "fsdp" \
        else kp.distribution.DataParallel()
    model = kp.Model(module, distribution=dist).compile(
        kp.optimizers.Adam(1e-4), kp.losses.SparseCategoricalCrossentropy(from_logits=True))
    r = np.random.default_rng(0)
    x = r.normal(size=(BATCH * STEPS, SIZES[0])).astype(np.float32)
    y = r.integers(0, SIZES[-1], BATCH * STEPS)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    times = []
    for _ in range(EPOCHS):
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    local = lambda t: t.to_local() if hasattr(t, "to_local") else t  # noqa: E731
    held = sum(local(p).numel() * p.element_size() for p in module.parameters())
    held += sum(local(v).numel() * v.element_size() for st in model._backend.opt.state.values()
                for v in st.values() if torch.is_tensor(v) and v.dim())
    print(json.dumps({"bytes": held, "steps_s": STEPS / min(times)}), flush=True)
    torch.distributed.barrier()
    os._exit(0)


def _torch(world: int) -> dict:
    out = {}
    for mode in ("ddp", "fsdp"):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = str(sock.getsockname()[1])
        procs = [subprocess.Popen([sys.executable, __file__, "--torch-worker", str(r),
                                   str(world), port, mode], stdout=subprocess.PIPE, text=True)
                 for r in range(world)]
        results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        out[mode] = {"bytes": max(r["bytes"] for r in results),
                     "steps_s": min(r["steps_s"] for r in results)}
    return out


def _print(title: str, results: dict, a: str, b: str) -> None:
    print(title)
    print(f"{'':16}{'params+opt bytes/device':>26}{'steps/s':>10}")
    for name, res in results.items():
        print(f"{name:16}{res['bytes'] / 2**20:>22.1f} MiB{res['steps_s']:>10.2f}")
    ratio = results[b]["bytes"] / results[a]["bytes"]
    speed = results[b]["steps_s"] / results[a]["steps_s"]
    print(f"{b} / {a}: {ratio:.3f}x bytes per device (target <= 0.3), {speed:.2f}x steps/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or gpu (JAX platform)")
    parser.add_argument("--devices", type=int, default=4, help="devices to spread over")
    parser.add_argument("--torch", action="store_true",
                        help="also torch DDP vs FSDP2 with --devices gloo processes (CPU)")
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
    _print(f"JAX {jax.__version__}, {len(devices)} {devices[0].platform} devices, "
           f"{results['sharded']['params'] / 1e6:.1f}M parameters, Adam, batch {BATCH}",
           results, "data parallel", "sharded")
    if args.torch:
        import torch

        _print(f"torch {torch.__version__}, {args.devices} gloo processes (CPU)",
               _torch(args.devices), "ddp", "fsdp")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--torch-worker"]:
        _torch_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        main()
