"""The torch optimizer of a built model: the ``torch.optim`` optimizer from the compile
spec, the ``torch.amp.GradScaler`` of a loss-scaled optimizer, gradient accumulation and the
weights' average (torch_accumulate.py), and torch's fused kernels where they apply.

Called once by ``TorchBackend.build``; owns no step code.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import optimizers
from . import torch_accumulate


def build_optimizer(backend: Any, opt: Any) -> None:
    """Set ``backend.opt_spec``, ``params``, ``opt``, ``_clip`` and ``scaler`` from the
    compile config's optimizer spec ``opt`` (a ``LossScaleOptimizer`` wraps its inner one)."""
    loss_scale = opt if getattr(opt, "is_loss_scale", False) else None
    backend.opt_spec = loss_scale.inner if loss_scale is not None else opt
    backend.opt_spec._bind(backend)  # model.optimizer.learning_rate / .iterations: live
    if backend._variable_dtype is not None:
        backend.module.to(backend._variable_dtype)  # only floating parameters and buffers change
    named = [(n, p) for n, p in backend.module.named_parameters() if p.requires_grad]
    backend.params = [p for _, p in named]
    backend.opt_spec._set_variable_names([n for n, _ in named], [id(p) for p in backend.params])
    backend.opt = backend.opt_spec.build_torch(backend.params) if backend.params else None
    backend._clip = any((getattr(backend.opt_spec, k, None) or 0) > 0
                        for k in ("clipnorm", "global_clipnorm", "clipvalue"))
    torch_accumulate.setup(backend)  # gradient accumulation and the weights' average
    backend.scaler = None
    if loss_scale is not None and backend.opt is not None:
        if backend._variable_dtype == torch.float16:
            raise ValueError(
                f"dtype policy {backend.policy.name!r} keeps the variables in float16, whose "
                "gradients torch.amp.GradScaler cannot unscale. Use 'mixed_float16' (float32 "
                "variables, float16 compute), or compile(auto_scale_loss=False).")
        backend.scaler = loss_scale.torch_grad_scaler(backend.device.type)
    if backend.opt is not None and not isinstance(backend.opt_spec, optimizers.NativeTorch):
        for group in backend.opt.param_groups:
            # keys the spec's pre-step hook adds at the first step, present from the start
            # so that checkpoints hold the same names before and after it
            group.setdefault("iterations", 0)
            group.setdefault("keras_lr", group["lr"])
        _use_fused_kernels(backend.opt)  # (a user's own torch optimizer stays as built)
    if loss_scale is not None:
        scaler, initial = backend.scaler, float(loss_scale.initial_scale)
        # host sync on read
        loss_scale._reader = lambda: float(scaler.get_scale()) if scaler else initial


def _use_fused_kernels(opt: Any) -> None:
    """Adam, AdamW and SGD in torch's fused kernels (one kernel per parameter group instead
    of a Python loop over parameters: a 3x faster optimizer step for small models on CPU),
    where the optimizer left ``fused`` and ``foreach`` unset. Same math; a GradScaler still
    skips the whole ``step()`` (and the spec's pre-step hook) on non-finite gradients, as
    ``_step_supports_amp_scaling`` is left unset."""
    if type(opt) not in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
        return
    for group in opt.param_groups:
        if group.get("fused") is None and group.get("foreach") is None and not group.get(
                "differentiable"):
            group["fused"], group["foreach"] = True, False

