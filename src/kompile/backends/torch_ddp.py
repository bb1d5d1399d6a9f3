"""The torch backend over several processes: ``DistributedDataParallel`` (``torchrun``).

Chosen by ``torch_backend()`` whenever a ``torch.distributed`` process group is
initialised, with or without ``kp.distribution.DataParallel()`` (what a torchrun user
expects: the process group is the only switch). Every process runs the same script on
the same data; this module owns how the processes share the work:

- **Batches.** The loop hands the backend index rows of each *global* batch; a process
  takes its contiguous share of every row (``batch_size / world_size`` samples), so the
  global ``batch_size`` must divide by the world size (``check_batch_size``). A row that
  does not divide (an epoch's last, partial batch, or a data iterable's odd batch) runs
  whole on every process: the gradients are then the same everywhere and DDP's average
  leaves them unchanged, and only one copy of its metrics counts. Either way results
  equal one process on the same global batches (as JAX's ``DataParallel`` does).
- **Gradients** are DDP's: the training forward calls the DDP wrapper; the user's module
  stays the backend's ``module``, so weights, ``state_dict`` names (no ``module.``
  prefix), checkpoints and saving are unchanged. DDP averages gradients, and the mean of
  per-process mean losses is the global mean loss for equal shares, so the default
  reduction trains exactly as one process. A ``reduction="sum"`` loss would train with the
  gradient divided by the world size: its value is multiplied by the world size on shared
  batches (``_ShardedObjective``), which makes both the gradient and the logged loss equal
  one process's. ``reduction="mean_with_sample_weight"`` is normalised by each process's
  own weight sum (equal to one process only when the shares' weight sums are equal; warned).
- **Metrics.** A call accumulates from zero states; the increments are summed over the
  processes (one ``all_reduce`` per call, all states in one buffer per dtype) and added to
  the running states, so every process holds the global states at all times and
  ``results()`` needs no communication. (A collective inside ``results()`` would hang:
  only process 0 shows a progress bar, so only it reads the per-batch logs.)
- **Predictions** of each call are gathered (``all_gather``) in sample order, so
  ``predict`` returns the global result on every process.
- ``agree`` broadcasts process 0's host value (the epoch's data order);
  ``process_index`` is the rank (the loop prints and writes files on rank 0 only).

``steps_per_execution=N`` runs N optimizer steps per call, each with its own DDP gradient
all-reduce; with ``gradient_accumulation_steps`` the non-final batches of a cycle run in
``no_sync()`` (torch_accumulate.py), so gradients are all-reduced once per update.
BatchNorm normalises over each process's share (DDP's behaviour); convert the module with
``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` for global batch statistics.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .. import agreement
from ..objective import Objective
from .torch import TorchBackend


def process_group_ready() -> bool:
    return dist.is_available() and dist.is_initialized()


def torch_backend(module: torch.nn.Module, policy: Any, output_names: Any = None,
                  distribution: Any = None) -> TorchBackend:
    """The torch backend for ``module``: DDP when a process group is initialised."""
    if hasattr(distribution, "layout_map"):  # a ModelParallel: JAX's layouts
        raise TypeError("`distribution`=ModelParallel(...) lays out parameters on JAX only; on "
                        "torch, use kp.distribution.FSDP() (FSDP2 under torchrun) or "
                        "DataParallel() (DDP).")
    if process_group_ready():
        return DistributedTorchBackend(module, policy, output_names, distribution)
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world > 1:
        warnings.warn(f"WORLD_SIZE={world} (torchrun?) but no torch.distributed process group "
                      "is initialised, so every process trains alone on all the data. Call "
                      "torch.distributed.init_process_group() before kp.Model(...).",
                      stacklevel=3)
    elif distribution is not None:
        warnings.warn(f"kp.distribution.{type(distribution).__name__} on torch uses the "
                      "processes of a "
                      "torch.distributed process group (started with torchrun); none is "
                      "initialised, so training runs in this one process.", stacklevel=3)
    return TorchBackend(module, policy, output_names, distribution)


class _ShardedObjective(Objective):
    """The objective, with ``reduction="sum"`` losses multiplied by the world size while
    ``shared`` (each process holds a share of the batch): DDP averages the gradients of the
    processes, and the loss trackers sum ``value * share`` over them."""

    def __init__(self, objective: Objective, world: int):
        self.__dict__.update(objective.__dict__)
        self.world, self.shared = world, False
        self._summed = [i for i, t in enumerate(self.terms)
                        if getattr(t.loss, "reduction", None) == "sum"]

    def compute_loss(self, ys: list[Any], preds: list[Any], sws: list[Any]):
        total, per_output = super().compute_loss(ys, preds, sws)
        if self.shared:
            for i in self._summed:
                extra = per_output[i] * (self.world - 1)
                total = total + extra * self.terms[i].weight
                per_output[i] = per_output[i] + extra
        return total, per_output


_REDUCE_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


def _reduce_states(states: dict[str, Any], shared: bool,
                   rules: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Metric states merged over the processes (``shared``) as each state declares
    (``rules``: Metric.merges, "sum", "max" or "min"), else process 0's (every process
    computed the same whole batch). One buffer per dtype and merge: one collective each."""
    leaves = [(log, key, t) for log, values in states.items() for key, t in values.items()]
    groups: dict[Any, list[tuple[str, str, torch.Tensor]]] = {}
    for leaf in leaves:
        groups.setdefault((leaf[2].dtype, rules[leaf[0]][leaf[1]]), []).append(leaf)
    out: dict[str, dict[str, Any]] = {log: {} for log in states}
    for (_, how), group in groups.items():
        buffer = torch.cat([t.reshape(-1) for _, _, t in group])
        if shared:
            dist.all_reduce(buffer, op=_REDUCE_OPS[how])
        else:
            dist.broadcast(buffer, src=0)
        for (log, key, t), part in zip(group, buffer.split([t.numel() for _, _, t in group])):
            out[log][key] = part.reshape(t.shape)
    return out


class DistributedTorchBackend(TorchBackend):
    """``TorchBackend`` with one process's share of each global batch (see module doc)."""

    def __init__(self, module: torch.nn.Module, policy: Any, output_names: Any = None,
                 distribution: Any = None):
        super().__init__(module, policy, output_names, distribution)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def check_agreement(self, describe: Any) -> None:
        """Every process's ``describe()`` (agreement.facts) gathered; the same error on all
        processes when one differs from rank 0's, instead of a hang in DDP's collectives."""
        described = describe()
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, agreement.digests(described))
        message = agreement.disagreement(np.stack(gathered), described, self.rank)
        if message is not None:
            raise RuntimeError(message)

    @property
    def split_across_processes(self) -> bool:
        """FSDP: the parameters are shards, read whole only by every process together."""
        return hasattr(self.dist, "shard_modules")

    @property
    def process_index(self) -> int:
        return self.rank

    def agree(self, value: Any) -> Any:
        """Process 0's host value on every process (e.g. the epoch's data order)."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def check_batch_size(self, batch_size: int, argument: str = "batch_size") -> None:
        if batch_size % self.world:
            raise ValueError(
                f"`{argument}`={batch_size} is not divisible by the world size {self.world} of "
                f"the torch.distributed process group; use a multiple of {self.world} (the "
                f"global batch is split evenly: each process takes batch_size / {self.world} "
                "samples of it).")

    # ------------------------------------------------------------------ build
    def build(self, objective: Any, config: Any) -> None:
        sharded = _ShardedObjective(objective, self.world)
        if any(getattr(t.loss, "reduction", None) == "mean_with_sample_weight"
               for t in sharded.terms):
            warnings.warn("reduction='mean_with_sample_weight' under DistributedDataParallel "
                          "divides each process's loss by its own sum of sample weights; the "
                          "result equals one process only when those sums are equal.",
                          stacklevel=3)
        fsdp = hasattr(self.dist, "shard_modules")
        if fsdp:  # FSDP2: sharded before super().build() builds the optimizer over them
            from .torch_fsdp import apply

            apply(self.module, self.dist, self.policy, self.device)
        super().build(sharded, config)
        self._merge_rules = sharded.merge_rules()  # how the processes' states merge
        self.train_module = None
        if fsdp:  # the sharded module is its own training wrapper
            self.train_module = self.module
        elif self.opt is not None:  # DDP needs parameters that require gradients
            device = self.device
            # outputs without a loss leave their parameters without gradients
            unused = any(e.loss is None for e in sharded.entries) or sharded.model_loss
            # DDP broadcasts process 0's parameters and buffers into every module here
            self.train_module = DistributedDataParallel(
                self.module, device_ids=[device] if device.type == "cuda" else None,
                find_unused_parameters=unused)

    def unbuild(self) -> None:
        super().unbuild()
        self.train_module = None

    # ------------------------------------------------------------------ steps
    def _share(self, index: Any, start: int, n: int) -> tuple[Any, int, bool]:
        """This process's columns of rows ``start:start+n`` (``shared``), or all of them."""
        size = index.shape[-1]
        if size % self.world:
            return index, start, False
        share = size // self.world
        lo = self.rank * share
        return index[start:start + n, lo:lo + share], 0, True

    @contextlib.contextmanager
    def _summed(self, phase: str, shared: bool):
        """Run a call from zero metric states, then add the processes' increments."""
        before = self.metrics[phase]
        self.metrics[phase] = self._initial
        try:
            yield
        except BaseException:  # no collective after a failed step: the others may not be here
            self.metrics[phase] = before
            raise
        with torch.no_grad():
            delta = _reduce_states(self.metrics[phase], shared, self._merge_rules)
            self.metrics[phase] = self.objective.merge(before, delta)

    def train(self, feed: Any, index: Any, start: int, n: int) -> None:
        index, start, shared = self._share(index, start, n)
        self.objective.shared = shared
        with self._summed("train", shared):
            super().train(feed, index, start, n)

    def evaluate(self, feed: Any, index: Any, start: int, n: int) -> None:
        index, start, shared = self._share(index, start, n)
        self.objective.shared = shared
        with self._summed("eval", shared):
            super().evaluate(feed, index, start, n)

    def predict(self, feed: Any, index: Any, start: int, n: int) -> list[Any]:
        index, start, shared = self._share(index, start, n)
        out = super().predict(feed, index, start, n)
        if not shared:
            return out
        with torch.inference_mode():
            return [self._gather_rows(t, n) for t in out]

    def _gather_rows(self, local: torch.Tensor, n: int) -> torch.Tensor:
        """Every process's predictions for ``n`` rows, back in global sample order."""
        local = local.contiguous()
        parts = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(parts, local)
        rest = tuple(local.shape[1:])
        rows = [p.reshape(n, -1, *rest) for p in parts]  # (n, share, ...) per process
        return torch.stack(rows, 1).reshape(-1, *rest)
