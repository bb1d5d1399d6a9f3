"""torch whole-step compilation (``jit_compile=True`` or a ``torch.compile`` mode).

One function per training step is handed to ``torch.compile``: forward, loss, metric update,
backward (traced into the graph where this torch can: ``torch._dynamo.config.
trace_autograd_ops``; otherwise AOTAutograd's compiled backward runs at ``backward()``),
gradient clipping and the optimizer step. The optimizer step itself is torch's fused kernel
(Adam, AdamW and SGD: one kernel for all parameters; see ``_use_fused_kernels`` in torch_optim.py),
called from the compiled function but not traced: Dynamo refuses to trace fused optimizers,
and kompile's Keras-exact pre-step hook keeps Python counters (the step count, a scheduled
learning rate) that would specialise and recompile the graph at every step. Learning-rate
changes therefore never recompile.

Shapes: a ragged last batch recompiles once, with the batch dimension dynamic (Dynamo's
automatic dynamic shapes); every later epoch reuses both graphs.

``mode`` is ``torch.compile``'s: ``None`` (its default), ``"reduce-overhead"`` (CUDA graphs
on a GPU: the launch overhead of small steps disappears; on CPU it behaves as the default) or
``"max-autotune"``.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch

from ..compile import _TORCH_MODES as MODES


def compile_mode(jit_compile: Any) -> str | None:
    """The ``torch.compile`` mode of a ``jit_compile`` value (``True``: the default)."""
    return jit_compile if isinstance(jit_compile, str) and jit_compile in MODES else None


@contextlib.contextmanager
def _autograd_in_graph():
    """Let Dynamo trace ``backward()`` into the step's graph where this torch can."""
    config = torch._dynamo.config
    if not hasattr(config, "trace_autograd_ops"):
        yield
        return
    with config.patch(trace_autograd_ops=True):
        yield


def whole_step(backend: Any, mode: str | None) -> Any:
    """The compiled training step of ``backend`` (a TorchBackend): ``(feed, row, states)
    -> states``; gradients must be cleared before each call."""

    @torch._dynamo.disable
    def update() -> None:  # eager: the fused kernel and kompile's pre-step hook
        if backend._compiling_now:
            backend._guard.open()  # the window of the first compiled step: the update
        scaler, opt = backend.scaler, backend.opt
        if backend._clip:
            if scaler is not None:
                scaler.unscale_(opt)  # clip the true gradients
            backend.opt_spec.torch_clip(backend.params)
        if scaler is None:
            opt.step()
        else:  # skips opt.step() on non-finite gradients; GradScaler reads found_inf here
            scaler.step(opt)
            scaler.update()

    def step(feed: Any, row: torch.Tensor, states: dict[str, Any]) -> dict[str, Any]:
        total, states = backend._train_forward(feed, row, states)
        scaler = backend.scaler
        (total if scaler is None else scaler.scale(total)).backward()
        update()
        return states

    compiled = torch.compile(step, mode=mode)

    def run(feed: Any, row: torch.Tensor, states: dict[str, Any]) -> dict[str, Any]:
        with _autograd_in_graph():
            return compiled(feed, row, states)

    return run


# array-api-compat caches its namespace lookups with functools.lru_cache; dynamo traces
# through the cache (harmless) and warns about it once per function at compile time.
_DYNAMO_NOISE = "Dynamo detected a call to a `functools.lru_cache`"


def quiet(fn: Any) -> Any:
    """``fn`` with dynamo's warning about array-api-compat's lru_cache silenced."""
    def call(*args: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_DYNAMO_NOISE)
            return fn(*args)

    return call
