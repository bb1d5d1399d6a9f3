"""``kp.distribution.FSDP`` on torch: FSDP2 (``torch.distributed.fsdp.fully_shard``).

Used by ``DistributedTorchBackend`` (torch_ddp.py) in place of the DDP wrapper. At the first
build, before the optimizer exists (an optimizer built over the unsharded parameters would
silently update tensors FSDP no longer uses):

- process 0's parameters and buffers are broadcast (FSDP2, unlike DDP, shards whatever each
  process holds);
- ``fully_shard`` is applied to the submodules ``FSDP.shard_modules`` selects, innermost
  first, then to the root; a mixed dtype policy becomes a ``MixedPrecisionPolicy`` (the
  parameters gathered in the compute dtype, gradients reduced in float32).

The parameters are then ``DTensor`` shards: the optimizer state is sharded like them, and
``clip_grad_norm_`` computes the global norm over the sharded gradients. Reading or
writing the weights whole (``get_weights``, saving, loading) gathers or re-shards each
array (``torch_state.full`` / ``torch_state.onto``): gathering is a collective, so every
process must take part (the rule for JAX arrays sharded across processes too). Batches,
metrics and predictions are shared between the processes exactly as under DDP
(torch_ddp.py); FSDP's gradient reduce-scatter averages like DDP's all-reduce.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard


def apply(module: torch.nn.Module, fsdp: Any, policy: Any, device: torch.device) -> None:
    """Shard ``module`` in place (once; a recompile keeps the sharding)."""
    if isinstance(module, FSDPModule):
        return
    with torch.no_grad():  # process 0's weights everywhere, as DDP does
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    kwargs: dict[str, Any] = {"mesh": mesh, "reshard_after_forward": fsdp.reshard_after_forward}
    compute, variables = policy.compute_dtype, policy.variable_dtype
    if compute != variables:
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=getattr(torch, compute),
                                                   reduce_dtype=torch.float32)
    chosen = [(name, m) for name, m in module.named_modules()
              if name and fsdp.selects(name, m) and any(True for _ in m.parameters())]
    for _, sub in reversed(chosen):  # innermost first
        fully_shard(sub, **kwargs)
    fully_shard(module, **kwargs)

