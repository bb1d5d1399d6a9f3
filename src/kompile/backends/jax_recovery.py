"""Run-time failures on the JAX backend: the last good training state, kept on the host.

A compiled step donates its state. When it fails at run time (out of memory, an error
inside the module or a host callback), the arrays it took are deleted, and every array a
failed computation was to produce is an error: a later step that takes them, the module
they are written into, ``get_weights``, ``predict`` all raise. On CPU (and for errors
raised inside a running computation on any device) the failure is only seen when the host
next reads a result, possibly several calls later, so the state just before the failing
step no longer exists anywhere.

kompile therefore keeps a *host copy* of the training state where the loop already waits
for the device (the start of a ``fit`` or ``train_on_batch`` call, and each epoch's end,
when the epoch logs have been read): a device-to-host transfer of weights, optimizer,
metric and RNG state, off the per-step path and using no device memory. After an
exception, ``settle`` checks every array of the state; the ones a failure deleted or
poisoned are replaced from that copy (weights the module received later, when a callback
read ``model.module``, are preferred when they are valid), so the model, its module and
another ``fit`` work again. Arrays that are valid are kept as they are.
"""

from __future__ import annotations

import time
import warnings
import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .jax_calls import _copy_scalar
from .jax_state import is_key


def valid(a: Any) -> bool:
    """Whether ``a`` (a state leaf) can be read: not donated, not the result of a failed
    computation. Blocks until ``a`` is computed (called only after an exception)."""
    if not isinstance(a, jax.Array):
        return True
    if a.is_deleted():
        return False
    try:
        a.block_until_ready()
    except Exception:  # noqa: BLE001  (the error of the computation that was to produce it)
        return False
    return True


def _ref(a: Any) -> Any:
    try:
        return weakref.ref(a)
    except TypeError:
        return None


class Snapshot:
    """A host copy of a state pytree, with what is needed to put it back on the device."""

    def __init__(self, state: Any, where: str, writes: int):
        leaves, self.treedef = jax.tree.flatten(state)
        self.where, self.writes = where, writes
        self.taken, self.cost = time.perf_counter(), 0.0
        self._refs = [_ref(a) for a in leaves]  # what it copied (to skip taking it again)
        self.host = _to_host(leaves)

    def same(self, state: Any) -> bool:
        """Whether ``state`` holds exactly the arrays this copy was taken from."""
        leaves, treedef = jax.tree.flatten(state)
        if treedef != self.treedef:  # type: ignore[operator]
            return False
        return len(leaves) == len(self._refs) and all(
            r is not None and r() is a for r, a in zip(self._refs, leaves))

    def restore(self, state: Any, keep: Any = None) -> tuple[Any, int] | None:
        """``state`` with each leaf that is not valid put back from this copy (or from
        ``keep(i)`` when it returns a valid array), and how many were replaced; None when
        the structure changed since the copy."""
        leaves, treedef = jax.tree.flatten(state)
        if treedef != self.treedef:  # type: ignore[operator]
            return None
        out, replaced = [], 0
        for i, (old, host) in enumerate(zip(leaves, self.host)):
            if valid(old):
                out.append(old)
                continue
            replaced += 1
            newer = keep(i) if keep is not None else None
            out.append(newer if newer is not None else _to_device(host, old))
        return jax.tree.unflatten(treedef, out), replaced


_SMALL = 1 << 22  # bytes: smaller leaves travel packed, one buffer per dtype


@jax.jit
def _pack(groups: list[list[Any]]) -> list[Any]:
    return [jnp.concatenate([a.reshape(-1) for a in group]) for group in groups]


_LAYOUTS: dict[Any, Any] = {}  # leaf shapes and dtypes -> how they travel (bounded below)


def _layout(leaves: list[Any]) -> tuple[list[bool], list[list[int]], list[int], list[int]]:
    """Per leaf whether it is a key array; the packed groups (leaf indices per dtype); the
    leaves that travel alone; and each leaf's size. Cached by the leaves' shapes and dtypes
    (a state keeps them from step to step)."""
    sig = tuple((a.shape, a.dtype) if isinstance(a, jax.Array) else None for a in leaves)
    found = _LAYOUTS.get(sig)
    if found is not None:
        return found
    keys = [is_key(a) for a in leaves]
    groups: dict[Any, list[int]] = {}
    alone, sizes = [], []
    for i, (a, key) in enumerate(zip(leaves, keys)):
        if not isinstance(a, jax.Array):
            sizes.append(0)
            continue
        data = jax.random.key_data(a) if key else a
        sizes.append(int(data.size))
        if data.nbytes < _SMALL:
            groups.setdefault(data.dtype, []).append(i)
        else:
            alone.append(i)
    if len(_LAYOUTS) > 64:
        _LAYOUTS.clear()
    found = _LAYOUTS[sig] = (keys, list(groups.values()), alone, sizes)
    return found


def _to_host(leaves: list[Any]) -> list[Any]:
    """Host copies of the leaves (key arrays as their key data). Small leaves are packed
    into one flat buffer per dtype first: one transfer instead of one per leaf (a small
    model's state is dozens of leaves, each transfer costing more than its bytes); large
    ones are transferred alone (no packed copy of them on the device)."""
    keys, order, alone, sizes = _layout(leaves)
    arrays = [jax.random.key_data(a) if k else a for a, k in zip(leaves, keys)]
    host: list[Any] = list(leaves)
    packed = _pack([[arrays[i] for i in idx] for idx in order]) if order else []
    for idx, flat in zip(order, packed):
        flat = np.array(flat, copy=True)  # host sync; a copy (on CPU a view of the buffer)
        offset = 0
        for i in idx:
            host[i] = flat[offset:offset + sizes[i]].reshape(arrays[i].shape)
            offset += sizes[i]
    for i, h in zip(alone, jax.device_get([arrays[i] for i in alone])):
        host[i] = np.array(h, copy=True)
    return host


def _to_device(host: Any, like: Any) -> Any:
    if not isinstance(like, jax.Array):
        return host
    if is_key(like):
        return jax.random.wrap_key_data(jax.device_put(host, like.sharding),
                                        impl=jax.random.key_impl(like))
    return jax.device_put(host, like.sharding)


class LastGood:
    """The JaxBackend's recovery after a run-time failure (a mixin: it uses the backend's
    ``state``, ``eval_state``, module methods and ``build``)."""

    # the JaxBackend's (and CompiledCalls') members this mixin uses
    state: Any
    eval_state: Any
    objective: Any
    _config: Any
    _shared: bool
    _cursor: dict[str, int]
    _index_id: dict[str, Any]
    _order: dict[str, Any]
    _order_src: dict[str, Any]
    _module_leaves: Any
    _count: Any
    reset_metrics: Any
    prepare_predict: Any
    build: Any

    _good: Snapshot | None = None
    _writes = 0  # module writes, so that weights a callback read later are preferred

    def keep_last_good(self, where: str, often: bool = False) -> None:
        """Take the host copy of the training state (skipped when it has not changed since
        the last one). Called by the loop where it already waits for the device. ``often``
        (a call per step, as ``train_on_batch``): skipped until 100 times the time the last
        copy took has passed, so that copies cost at most about 1% of the time (the module
        still gets the weights of every completed call)."""
        state = self.state
        if state is None or "opt" not in state:
            return
        good = self._good
        if good is not None and good.same(state):
            good.where = where
            return
        now = time.perf_counter()
        if often and good is not None and now < good.taken + 100 * good.cost:
            return
        self._good = Snapshot(state, where, self._writes)
        self._good.cost = time.perf_counter() - now

    def settle(self) -> bool:
        """After an exception: make every state array valid again (see the module
        docstring). Returns whether anything was restored (and warns then)."""
        restored = False
        if self.eval_state is not None and not all(map(valid, jax.tree.leaves(self.eval_state))):
            self.reset_metrics("eval")
            self.eval_state["cursor"] = self._fresh_cursor()
            self._cursor["eval"], self._index_id["eval"] = -1, None
        state = self.state
        if state is None or all(map(valid, jax.tree.leaves(state))):
            return restored
        self._cursor["train"], self._index_id["train"] = -1, None
        self._order.clear()
        self._order_src.clear()
        good = self._good
        result = good.restore(state, self._module_leaf_keeper(state, good)) \
            if good is not None else None
        if result is None or good is None:
            self._rebuild_from_module("opt" in state)
            return True
        self.state = result[0]
        self._shared = True  # restored arrays may be the module's: copied before donating
        warnings.warn(
            "A step failed at run time (its error follows), after it had taken the training "
            f"state. The model is back to its state at {good.where}, "
            f"{time.perf_counter() - good.taken:.1f} s before the failure (weights, optimizer, "
            "metric and RNG state; weights a callback read later through `model.module` are "
            "kept). The module holds those weights, and fit can run again.", stacklevel=4)
        return True

    def _module_leaf_keeper(self, state: dict[str, Any], good: Snapshot) -> Any:
        """Weights and other module variables written into the module after the copy
        (a callback read ``model.module``), valid: newer than the copy."""
        if self._writes <= good.writes:
            return None
        try:
            module = self._module_leaves()
        except Exception:  # noqa: BLE001  (a module a user left unreadable)
            return None
        n = len(state["params"]) + len(state["rest"])
        order = _positions(state)
        if len(module) != n or not all(map(valid, module)):
            return None
        return lambda i: module[order[i]] if i in order else None

    def _fresh_cursor(self) -> Any:
        return _copy_scalar(self._count(0))

    def _rebuild_from_module(self, built: bool) -> None:
        """No host copy fits the state (never taken, or another structure): the weights the
        module holds, a fresh optimizer (the behaviour before copies were kept). Before any
        training (``built`` False: predict's state is the module's) nothing else is lost."""
        if not all(map(valid, self._module_leaves())):
            raise RuntimeError("A step failed at run time and the arrays the module holds are "
                               "not valid either: the model cannot be recovered; load saved "
                               "weights.")
        self.state = None
        if not built:
            self.prepare_predict(getattr(self, "_config", None))
            return
        self.build(self.objective, self._config)
        warnings.warn(
            "A training step failed at run time after it had taken the training state, and "
            "no copy of that state was kept: the model's weights are back to those its module "
            "held, and the optimizer state starts afresh (its step count from 0).",
            stacklevel=4)


def _positions(state: dict[str, Any]) -> dict[int, int]:
    """Flat index in ``state`` of each params/rest leaf -> its index in params + rest."""
    out: dict[int, int] = {}
    offset, n_params = 0, len(state["params"])
    for key in sorted(state):  # jax flattens a dict in sorted key order
        size = len(jax.tree.leaves(state[key]))
        if key in ("params", "rest"):
            base = 0 if key == "params" else n_params
            out.update({offset + j: base + j for j in range(size)})
        offset += size
    return out
