"""Where the JAX step state lives under a distribution: replicated or sharded.

``DataParallel`` replicates the whole state on every device. ``ModelParallel`` gives each
parameter the ``PartitionSpec`` its ``LayoutMap`` entry or its own annotation
(``nnx.with_partitioning``) names, and each optimizer-state leaf that mirrors a parameter
(Adam's moments, momentum, ...: found with ``optax.tree_map_params``) the same one; the rest
(batch statistics, RNG, metric states, step counts, loss scale) is replicated. The compiled
steps constrain their outputs to these layouts (``pin``), so they stay sharded from step
to step and XLA never settles for another layout between calls.

Under ``jax.distributed`` every process holds the same host values (process 0's weights,
agreed at build); each builds its own shards of every global array from them
(``jax.make_array_from_callback``), so no array is sent between processes.

**Data under several processes.** The feed stays on the host (``JaxBackend.put``); each
epoch's batches become global arrays laid out ``(batches, batch_size, ...)`` and split
over the batch axis (``local_batches``), each process gathering and transferring only the
columns of its own devices: every sample of a batch is read by exactly one process (a
batch that does not divide by the batch axis, an epoch's last, is replicated). The steps
take one batch by its index on the first axis (``StepMajor`` leaves, jax_calls.py).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from .. import agreement
from . import jax_state


@jax.tree_util.register_pytree_node_class
class StepMajor:
    """A feed leaf laid out ``(batches, batch_size, ...)``: a step takes its batch by index
    on the first axis (the rows of one batch stay on the devices that hold them)."""

    def __init__(self, array: Any):
        self.array = array

    def tree_flatten(self) -> tuple[tuple[Any], None]:
        return (self.array,), None

    @classmethod
    def tree_unflatten(cls, _: Any, children: Any) -> StepMajor:
        return cls(children[0])


def local_batches(dist: Any, feed: Any, index: Any) -> Any:
    """``feed``'s rows (host arrays) in the batches of ``index`` (``(batches, size)``), as
    global ``StepMajor`` arrays split over the batch axis; this process gathers only the
    rows of its own devices."""
    index = np.asarray(index)
    n_batches, size = index.shape
    spec = PartitionSpec(None, dist.batch_axis) if size % dist.num_devices == 0 \
        else PartitionSpec()
    sharding = NamedSharding(dist.mesh, spec)

    def build(a: Any) -> StepMajor:
        a = np.asarray(a)

        def part(where: tuple[slice, ...]) -> np.ndarray:
            return a[index[where[0], where[1]]][(slice(None), slice(None)) + where[2:]]

        shape = (n_batches, size) + a.shape[1:]
        return StepMajor(jax.make_array_from_callback(shape, sharding, part))  # type: ignore[arg-type]

    return jax.tree.map(build, feed)


def _is_spec(x: Any) -> bool:
    return isinstance(x, PartitionSpec)


def partition_annotations(module: nnx.Module, n: int) -> list[Any]:
    """The sharding annotation of each of the module's ``n`` parameters, in leaf order
    (``None`` where it has none)."""
    try:
        params = nnx.split(module, nnx.Param, ...)[1]
        specs = jax.tree.leaves(nnx.get_partition_spec(params), is_leaf=_is_spec)
    except Exception:  # noqa: BLE001  (a Flax without these helpers: no annotations)
        return [None] * n
    return specs if len(specs) == n else [None] * n


def param_shardings(dist: Any, module: nnx.Module, params_tree: Any) -> list[NamedSharding]:
    """One ``NamedSharding`` per parameter leaf, from ``dist.layout``."""
    pairs = jax_state.named(params_tree)
    notes = partition_annotations(module, len(pairs))
    return [NamedSharding(dist.mesh, dist.layout(name, tuple(a.shape), note))
            for (name, a), note in zip(pairs, notes)]


def opt_shardings(tx: Any, opt: Any, params: list[Any], shardings: list[NamedSharding],
                  replicated: NamedSharding) -> Any:
    """The optimizer state's shardings: a leaf that mirrors a parameter is laid out like it,
    any other leaf is replicated."""
    try:
        return optax.tree_map_params(tx, lambda _, s: s, opt, shardings,
                                     transform_non_params=lambda _: replicated)
    except Exception:  # noqa: BLE001  (not an optax init: match parameters by shape)
        by_shape: dict[tuple, Any] = {}
        for p, s in zip(params, shardings):
            by_shape.setdefault(tuple(p.shape), set()).add(s)

        def guess(a: Any) -> Any:
            found = by_shape.get(tuple(getattr(a, "shape", ())), set())
            return next(iter(found)) if len(found) == 1 else replicated

        return jax.tree.map(guess, opt)


def place(tree: Any, shardings: Any) -> Any:
    """``tree``'s leaves put on ``shardings`` (a tree of the same structure, or one
    sharding for all). With several processes each builds its own shards from its host
    value (the same on every process)."""
    if isinstance(shardings, jax.sharding.Sharding):
        shardings = jax.tree.map(lambda _: shardings, tree)
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)

    def put(a: Any, s: Any) -> Any:
        if jax_state.is_key(a) or not hasattr(a, "shape"):
            return jax.device_put(a, s)
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, s, lambda idx: host[idx])

    return jax.tree.map(put, tree, shardings)


def place_state(backend: Any, state: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The new step ``state`` placed for ``backend.dist``, and the layouts the steps keep
    (``None`` under ``DataParallel``: everything replicated)."""
    dist = backend.dist
    replicated = dist.replicated()
    if not hasattr(dist, "layout"):
        return place(state, replicated), None
    params = state["params"]
    shardings = param_shardings(dist, backend.module, backend.params_tree(params))
    layouts = {"params": shardings,
               "opt": opt_shardings(backend.tx, state["opt"], params, shardings, replicated)}
    rest = {k: v for k, v in state.items() if k not in layouts}
    placed = {**place(rest, replicated), "params": place(params, shardings),
              "opt": place(state["opt"], layouts["opt"])}
    return {k: placed[k] for k in state}, layouts


def pin(state: dict[str, Any], layouts: Any) -> dict[str, Any]:
    """Inside a compiled step: the parameters and optimizer state constrained to their
    layouts (a training state; other states pass unchanged)."""
    if layouts is None or "params" not in state:
        return state
    constrain = jax.lax.with_sharding_constraint
    return {**state, "params": constrain(state["params"], layouts["params"]),
            "opt": constrain(state["opt"], layouts["opt"])}


def device_bytes(tree: Any) -> dict[Any, int]:
    """Bytes each device holds of ``tree``'s arrays (its addressable shards)."""
    out: dict[Any, int] = {}
    for a in jax.tree.leaves(tree):
        for shard in getattr(a, "addressable_shards", ()):
            out[shard.device] = out.get(shard.device, 0) + shard.data.nbytes
    return out


def check_agreement(describe: Any) -> None:
    """With several processes: every process's ``describe()`` (agreement.facts) gathered,
    and the same error raised on all of them when one differs from process 0's."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    described = describe()
    gathered = np.asarray(multihost_utils.process_allgather(agreement.digests(described)))
    message = agreement.disagreement(gathered, described, jax.process_index())
    if message is not None:
        raise RuntimeError(message)


def split_across_processes(backend: Any) -> bool:
    """Whether the step state has arrays split across processes (then reading it whole is
    a collective that every process must enter)."""
    return jax.process_count() > 1 and backend._layouts is not None and any(
        not s.is_fully_replicated for s in jax.tree.leaves(backend._layouts["params"]))
