"""Kernels per training step on torch: kompile eager vs the hand-written loop (torch.profiler).

Run:  .venv/bin/python benchmarks/torch_kernels.py [--device cpu|cuda] [--steps 20]

Counts the leaf operators (those that launch a kernel: view and metadata-only operators are
left out) recorded by torch.profiler over a few steps of the benchmark MLP, per step, with
the ten most frequent, for kompile's step (split into forward+loss, metric update, backward
and optimizer by the profiler's call tree) and for the hand-written loop of bench_torch.py.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

NO_KERNEL = {"aten::view", "aten::as_strided", "aten::empty", "aten::expand", "aten::t",
             "aten::transpose", "aten::unsqueeze", "aten::squeeze", "aten::reshape",
             "aten::select", "aten::slice", "aten::detach", "aten::alias", "aten::_unsafe_view",
             "aten::_reshape_alias", "aten::resolve_conj", "aten::resolve_neg", "aten::lift_fresh",
             "aten::empty_strided", "aten::empty_like", "aten::permute", "aten::numpy_T",
             "aten::squeeze_", "aten::unsqueeze_", "aten::detach_", "aten::set_",
             "aten::result_type", "aten::item", "aten::_local_scalar_dense", "aten::is_nonzero",
             "aten::size", "aten::stride", "aten::dim", "aten::_has_compatible_shallow_copy_type",
             "aten::contiguous", "aten::expand_as", "aten::split", "aten::unbind",
             "aten::as_strided_", "aten::view_as", "aten::chunk", "aten::narrow",
             "aten::real"}


def count(run, steps: int) -> tuple[float, collections.Counter]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    run(2)  # warm
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(steps)
    ops = collections.Counter()
    for e in prof.events():
        if not e.name.startswith("aten::") or e.name in NO_KERNEL:
            continue
        if e.name == "aten::to" and not e.cpu_children:  # already that dtype: no copy
            continue
        parent = e.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        if parent is None:  # an operator called from Python or autograd, not from another
            ops[e.name] += 1
    del torch
    return sum(ops.values()) / steps, ops


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import numpy as np
    import torch
    from bench_torch import BATCH, HandWritten, data, torch_mlp

    import kompile as kp

    torch.set_num_threads(1)
    x, y = data()
    model = kp.Model(torch_mlp().to(args.device)).compile(
        kp.optimizers.Adam(1e-3), kp.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    model.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, verbose=0)

    def kompile_run(steps):
        model.fit(x[:steps * BATCH], y[:steps * BATCH], batch_size=BATCH, verbose=0,
                  shuffle=False)

    hand = HandWritten(fused=True, device=args.device)
    baseline = count(lambda steps: model.fit(x[:BATCH], y[:BATCH], batch_size=BATCH,
                                             verbose=0, shuffle=False), 1)[0]
    for name, run in (("kompile eager", kompile_run), ("hand-written, fused Adam", hand.run)):
        per_step, ops = count(run, args.steps)
        if name.startswith("kompile"):  # per-fit work (data, logs) spread over the steps
            per_step = (per_step * args.steps - baseline) / (args.steps - 1)
        print(f"{name}: {per_step:.1f} kernels per step")
        print("   ", ", ".join(f"{k[6:]} {v / args.steps:.1f}" for k, v in ops.most_common(40)))
    np.random.seed(0)


if __name__ == "__main__":
    main()
