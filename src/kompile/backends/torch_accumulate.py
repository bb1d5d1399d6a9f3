"""Gradient accumulation and the weights' moving average on the torch backend.

``gradient_accumulation_steps=N`` (Keras's semantics, see optimizers/averaging.py): each
batch's loss divided by N is backpropagated into ``.grad``, which is cleared only at the
start of a cycle; at the N-th batch the summed gradients (Keras's mean of the N gradients)
are clipped and applied, and the GradScaler (mixed precision) unscales and checks them
once. Under DistributedDataParallel the N-1 non-final batches run in ``no_sync()``: their
gradients are all-reduced with the final batch's, once per update. The average
(``use_ema``) is an ``optimizers.averaging.TorchAverage``, updated after every batch.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..optimizers.averaging import TorchAverage


def setup(backend: Any) -> None:
    """After the optimizer is built: the accumulation count and the average (if asked)."""
    spec = backend.opt_spec
    backend._accum = getattr(spec, "gradient_accumulation_steps", None) or 1
    backend._micro = 0
    backend.average = None
    if backend.opt is not None and getattr(spec, "use_ema", False):
        backend.average = TorchAverage(backend.params, spec.ema_momentum,
                                       spec.ema_overwrite_frequency, backend._accum)


def train_step(backend: Any, feed: Any, row: Any, states: dict[str, Any],
               compiling: bool = False) -> dict[str, Any]:
    """One batch with accumulation: backward into ``.grad``; every N-th batch the update."""
    opt, scaler, n = backend.opt, backend.scaler, backend._accum
    if backend._micro % n == 0:
        opt.zero_grad(set_to_none=True)
    final = (backend._micro + 1) % n == 0
    ddp = backend.train_module
    quiet = ddp.no_sync() if not final and hasattr(ddp, "no_sync") else contextlib.nullcontext()
    with quiet:
        total, states = backend._fn("train_forward")(feed, row, states)
        loss = total / n
        (loss if scaler is None else scaler.scale(loss)).backward()
    backend._micro += 1
    backend._steps += 1
    applied = True
    if final:
        applied = apply(backend, compiling)
    if backend.average is not None and applied:
        backend.average.update()
    return states


def apply(backend: Any, compiling: bool) -> bool:
    """Clip and step (through the GradScaler when there is one); False when the scaler
    skipped the step for non-finite gradients."""
    opt, scaler = backend.opt, backend.scaler
    if scaler is not None and backend._clip:
        scaler.unscale_(opt)  # clip the true gradients
    if backend._clip:
        backend.opt_spec.torch_clip(backend.params)
    if compiling:
        backend._guard.open()  # the window of the first compiled step: the update
    before = opt.param_groups[0].get("iterations")
    if scaler is None:
        opt.step()
    else:
        scaler.step(opt)
        scaler.update()
    return before is None or opt.param_groups[0].get("iterations") != before


def after_plain_step(backend: Any) -> None:
    """The average's update after a step without accumulation; not after a step the
    GradScaler skipped (the spec's pre-step hook, which counts steps, did not run)."""
    average, taken = backend.average, backend.opt.param_groups[0].get("iterations")
    if average is None or (taken is not None and taken == getattr(average, "seen", None)):
        return
    average.seen = taken
    average.update()


def extra_state(backend: Any) -> dict[str, Any]:
    """Checkpoint arrays: the batches of the current accumulation cycle and their summed
    gradients, and the average."""
    import numpy as np

    out: dict[str, Any] = {}
    if getattr(backend, "_accum", 1) > 1 and backend.opt is not None:
        out["accumulation/batches"] = np.asarray(backend._micro, np.int64)
        for i, p in enumerate(backend.params):
            g = p.grad if p.grad is not None and backend._micro % backend._accum else None
            out[f"accumulation/grads/{i}"] = (np.zeros(tuple(p.shape), np.float32) if g is None
                                              else g.detach().float().cpu().numpy().copy())
    if getattr(backend, "average", None) is not None:
        state = backend.average.state()
        out["ema/batches"] = np.asarray(state["batches"], np.int64)
        for i, a in enumerate(state["average"]):
            out[f"ema/average/{i}"] = a.detach().float().cpu().numpy().copy()
    return out


def load_extra_state(backend: Any, state: dict[str, Any]) -> None:
    import torch

    if "accumulation/batches" in state and getattr(backend, "_accum", 1) > 1:
        backend._micro = int(state["accumulation/batches"])
        for i, p in enumerate(backend.params):
            g = torch.as_tensor(state[f"accumulation/grads/{i}"], dtype=p.dtype,
                                device=p.device)
            p.grad = g if backend._micro % backend._accum else None
    if "ema/batches" in state and getattr(backend, "average", None) is not None:
        count = len(backend.average.average)
        backend.average.load(state["ema/batches"],
                             [state[f"ema/average/{i}"] for i in range(count)])
