"""The JAX backend's state outside the steps: the user's module, and checkpoint files.

**The module and the step state.** During a call the weights live in the step state; the
module gets them lazily (at the end of a call, from ``Model.module``, for saving), so a
step costs nothing for it. A step never donates an array the module (or a caller) holds:
after a write into the module the arrays are shared, and the next training step copies
them first (one device copy, only after the module was handed out). What the user
replaces on the module (a callback between batches, code between calls) is found by leaf
identity against the leaves kompile last wrote or read, and taken into the state leaf by
leaf before the next step or write; the optimizer state is kept.

**Variables a call creates** are lined up by path (``after_call``): sown intermediates are
popped and never carried; any other new variable is an error naming it.

**Checkpoint state** as flat ``{name: np.ndarray}`` dicts.

Names are pytree paths joined with ``/`` (``params/l1/kernel``, ``rest/drop/rngs/key``,
``opt/inner_state/slots/0/1``, ``metrics/loss/total``); an nnx Variable is named by its
path, without the trailing ``value``. RNG key arrays are stored as their raw key data
(``jax.random.key_data``) and rewrapped with the current key implementation on load.
Loading replaces leaves by name inside the current tree structure, keeping each leaf's
dtype and sharding.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .base import check_weights


def name(path: Any) -> str:
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
    if parts and parts[-1] == "value" and type(path[-1]).__name__ == "GetAttrKey":
        parts.pop()  # an nnx.Variable's value: name the variable
    return "/".join(parts)


def is_key(a: Any) -> bool:
    return hasattr(a, "dtype") and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def named(tree: Any) -> list[tuple[str, Any]]:
    """``(name, leaf)`` pairs of a pytree, in leaf order."""
    return [(name(p), a) for p, a in jax.tree_util.tree_flatten_with_path(tree)[0]]


def gather_global(a: Any) -> Any:
    """A global array split across processes, whole on this host (a collective: every
    process must call it); other values as they are."""
    if getattr(a, "is_fully_addressable", True) or a.is_fully_replicated:
        return a
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(a, tiled=True)


def to_host(pairs: list[tuple[str, Any]]) -> dict[str, np.ndarray]:
    values = [jax.random.key_data(a) if is_key(a) else a for _, a in pairs]
    if jax.process_count() > 1:  # arrays sharded across processes: gathered one by one
        values = [gather_global(a) for a in values]
    host = jax.device_get(values)  # host sync: one transfer for the whole state
    return {n: np.asarray(v) for (n, _), v in zip(pairs, host)}


def replace(tree: Any, arrays: dict[str, Any]) -> Any:
    """``tree`` with the leaves named in ``arrays`` replaced, dtypes and shardings kept."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    leaves = []
    for path, old in pairs:
        key = name(path)
        if key not in arrays:
            leaves.append(old)
        elif not hasattr(old, "dtype"):  # a Python scalar in an optimizer state
            leaves.append(type(old)(np.asarray(arrays[key]).item()))
        elif is_key(old):
            leaves.append(jax.random.wrap_key_data(jnp.asarray(arrays[key]),
                                                   impl=jax.random.key_impl(old)))
        else:
            value = np.asarray(arrays[key], dtype=np.dtype(old.dtype))
            sharding = getattr(old, "sharding", None)
            if sharding is not None and not sharding.is_fully_addressable:  # several processes
                leaves.append(jax.make_array_from_callback(value.shape, sharding,
                                                           lambda idx, v=value: v[idx]))  # type: ignore[misc]
                continue
            leaves.append(jax.device_put(value, sharding) if sharding is not None
                          else jnp.asarray(value))
    return jax.tree_util.tree_unflatten(treedef, leaves)


@jax.jit
def _copy(tree: Any) -> Any:
    return jax.tree.map(jnp.copy, tree)


def _like(new: Any, old: Any) -> Any:
    """A value the user put into the module, with the dtype and placement of the state
    leaf it replaces (so the compiled steps neither retrace nor move data)."""
    if new is old or not hasattr(old, "dtype") or is_key(old):
        return new
    if not hasattr(new, "dtype") or new.dtype != old.dtype:
        new = jnp.asarray(new, dtype=old.dtype)
    sharding = getattr(old, "sharding", None)
    if sharding is not None and getattr(new, "sharding", None) != sharding:
        new = jax.device_put(new, sharding)
    return new


def split_params(module: Any, wrt: Any = nnx.Param) -> Any:
    """``nnx.split(module, wrt, ...)``: ``(graphdef, params, rest)``; ``wrt`` the filter of
    the trained variables (``kp.Model(trainable=...)``, default ``nnx.Param``)."""
    return nnx.split(module, wrt, ...)


def after_call(module: Any, rest: list[Any], p_def: Any, r_def: Any,
               wrt: Any = nnx.Param) -> tuple[list[Any], Any]:
    """The module's other variables after a call, lined up with the carried ``rest`` (leaves
    of ``r_def``) by path, never by position; and the sown intermediates, popped.

    Values sown during the call (``self.sow(nnx.Intermediate, ...)`` and its subclasses)
    are taken out of the module and returned (an ``nnx.State``): they never join the step
    state. A variable the call created that is not an intermediate (a Param, a BatchStat,
    a custom Variable) is an error naming it, since the compiled step carries a fixed set
    of variables; a carried variable the call deleted keeps its value. ``wrt``: the filter
    of the trained variables, as for ``split_params``.
    """
    sown = nnx.pop(module, nnx.Intermediate)
    _, params, new = split_params(module, wrt)
    leaves, treedef = jax.tree.flatten(new)
    if treedef == r_def and jax.tree.structure(params) == p_def:
        return leaves, sown  # the usual case: the same variables as before the call
    old = [n for n, _ in named(jax.tree.unflatten(r_def, rest))]
    p_old = {n for n, _ in named(jax.tree.unflatten(p_def, [0] * p_def.num_leaves))}
    created = sorted({n for n, _ in named(new)} - set(old))
    created += sorted({n for n, _ in named(params)} - p_old)
    if created:
        raise ValueError(
            f"The module created the variable(s) {created} while it was called (in "
            f"{type(module).__name__}.__call__). kompile carries a fixed set of variables "
            "through its compiled steps: create them in __init__ (e.g. "
            "`self.count = nnx.BatchStat(jnp.zeros(()))`), or sow values you only read "
            "with `self.sow(nnx.Intermediate, name, value)` (dropped after each call).")
    by_name = dict(named(new))
    return [by_name.get(n, a) for n, a in zip(old, rest)], sown


def class_dicts(module: Any) -> dict[type, dict[str, Any]]:
    """The attributes of the classes of every node of ``module``'s graph."""
    types = {type(node) for _, node in nnx.iter_graph(module)}
    return {t: dict(vars(t)) for t in types if isinstance(t, type)}


def restore_class_dicts(saved: dict[type, dict[str, Any]]) -> None:
    """Put back what ``class_dicts`` saw (methods nnx.tabulate replaced and left)."""
    for cls, attrs in saved.items():
        for key in [k for k in vars(cls) if k not in attrs]:
            delattr(cls, key)
        for key, value in attrs.items():
            if vars(cls).get(key, object()) is not value and key not in ("__dict__",
                                                                        "__weakref__"):
                setattr(cls, key, value)


def _is_var(node: Any) -> bool:
    return isinstance(node, nnx.Variable)


class ModuleView:
    """The module's variables in ``nnx.split(module, wrt, ...)`` leaf order, read and
    written through jax's C++ pytree flatten (about 20 us for a small model, where
    ``nnx.split`` or ``nnx.update`` take 100-170 us: several per fit call).

    Valid while the module has the structure it had when the view was built: the same
    pytree structure and the same Variable objects. Anything else (a replaced Variable or
    submodule, shared arrays, array refs, a module jax cannot flatten) makes ``read`` and
    ``write`` return None/False, and the caller takes the ``nnx.split`` path.
    """

    def __init__(self, module: Any, split_leaves: list[Any], n_params: int):
        self.ok = False
        self.n_params = n_params
        try:
            self._build(module, split_leaves)
        except Exception:  # noqa: BLE001  (a module or a Flax version without these APIs)
            self.ok = False

    def _build(self, module: Any, split_leaves: list[Any]) -> None:
        self.treedef: Any
        self.vars, self.treedef = jax.tree.flatten(module, is_leaf=_is_var)
        by_id: dict[int, Any] = {}
        for v in self.vars:
            if not _is_var(v):
                continue
            raw = v.get_raw_value()
            if nnx.variablelib.is_array_ref(raw) or id(raw) in by_id:
                return  # array refs, or one array in two variables: the slow path
            by_id[id(raw)] = v
        ordered: list[Any] = [by_id.get(id(a)) for a in split_leaves]
        if any(v is None for v in ordered) or len({id(v) for v in ordered}) != len(ordered):
            return
        self.ordered = ordered
        self.ok = True

    def _current(self, module: Any) -> bool:
        if not self.ok:
            return False
        try:
            vars_, treedef = jax.tree.flatten(module, is_leaf=_is_var)
        except Exception:  # noqa: BLE001
            return False
        return treedef == self.treedef and all(a is b for a, b in zip(vars_, self.vars))

    def read(self, module: Any) -> list[Any] | None:
        """The module's leaves in split order, or None (structure changed)."""
        if not self._current(module):
            return None
        return [v.get_raw_value() for v in self.ordered]

    def write(self, module: Any, leaves: list[Any]) -> bool:
        """Set the module's leaves (split order); False (nothing written) if the structure
        changed."""
        if not self._current(module) or len(leaves) != len(self.ordered):
            return False
        try:
            for v, a in zip(self.ordered, leaves):
                v.set_raw_value(a, _unsafe_bypass_check=True)  # as nnx.update does
        except TypeError:  # a Flax version without this keyword: nnx.update (at the first)
            self.ok = False
            return False
        return True


class ModuleState:
    """The JaxBackend's methods for the module and for state files (a mixin: it uses the
    backend's ``module``, ``state``, ``_leaves``, ``params_tree`` and ``rest_tree``)."""

    module: Any
    state: Any
    _view: ModuleView | None = None
    wrt: Any = nnx.Param  # the trained variables: the step state's "params" (set_trainable)

    def set_trainable(self, trainable: Any) -> None:
        """Train the ``nnx.Param`` variables that match the nnx filter ``trainable`` (a
        Variable type such as ``nnx.LoRAParam``, a path string, a callable ``(path, value)
        -> bool``, ``nnx.Any``/``nnx.All``/``nnx.Not`` ...); the others are held as the
        module's other variables (never differentiated nor updated). Before the first
        build."""
        if trainable is None:
            self.wrt = nnx.Param
            return
        try:
            wrt = nnx.All(nnx.Param, trainable)
            selected = jax.tree.leaves(nnx.state(self.module, wrt))
        except Exception as err:  # noqa: BLE001  (a value nnx cannot read as a filter)
            raise TypeError("`trainable` must be an nnx filter (a Variable type such as "
                            "nnx.LoRAParam, a path string, a callable (path, value) -> bool, "
                            f"nnx.Any/All/Not of those); received {trainable!r} ({err}).") from err
        if not selected:
            raise ValueError(f"`trainable`={trainable!r} selects none of the module's nnx.Param "
                             "variables, so nothing would train. Pass a filter that matches "
                             "some (e.g. nnx.LoRAParam for the adapters of nnx.LoRA layers).")
        self.wrt = wrt

    # declared here, set by JaxBackend (jax.py)
    _synced: list[Any] | None
    _shared: bool
    _exposed: bool
    _syncing: bool

    if TYPE_CHECKING:  # the backend's other parts (jax.py)
        def _leaves(self, params: Any, rest: Any) -> tuple[list[Any], list[Any]]: ...
        def params_tree(self, leaves: Any = None) -> Any: ...
        def rest_tree(self, leaves: Any = None) -> Any: ...

    def _split_leaves(self) -> tuple[list[Any], Any, Any]:
        """The module's leaves (params first), through the view when it is current; the
        nnx trees (params, rest) only when it was not (else None, None)."""
        if self._view is not None:
            leaves = self._view.read(self.module)
            if leaves is not None:
                return leaves, None, None
        _, params, rest = split_params(self.module, self.wrt)
        p_leaves = jax.tree.leaves(params)
        leaves = p_leaves + jax.tree.leaves(rest)
        self._view = ModuleView(self.module, leaves, len(p_leaves))
        return leaves, params, rest

    def _module_leaves(self) -> list[Any]:
        return self._split_leaves()[0]

    def sync_to_module(self) -> None:
        """Write the latest state into the module, keeping what the user changed on it."""
        if self.state is None:
            return
        self.refresh_from_module()
        self._write_module()

    def _write_module(self) -> None:
        self._syncing = True  # an interrupted write is finished later, never read back
        leaves = self.state["params"] + self.state["rest"]
        if self._view is not None and self._view.write(self.module, leaves):
            self._synced = leaves
        else:
            nnx.update(self.module, self.params_tree(), self.rest_tree())
            self._synced = self._module_leaves()
        self._shared = self._exposed = True
        self._syncing = False
        self._writes = getattr(self, "_writes", 0) + 1  # (jax_recovery prefers newer writes)

    def _unshare(self) -> None:
        self.state["params"], self.state["rest"] = _copy((self.state["params"],
                                                          self.state["rest"]))
        self._shared = False

    def refresh_from_module(self) -> None:
        """Take into the state the module variables the user replaced since kompile last
        wrote or read the module."""
        if self.state is None:
            return
        if self._syncing:  # a write into the module was interrupted: finish it
            self._write_module()
            return
        leaves, params, rest = self._split_leaves()
        synced, n = self._synced, self._view.n_params if self._view is not None else -1
        mine = self.state["params"] + self.state["rest"]
        if synced is None or not len(leaves) == len(synced) == len(mine) or \
                n != len(self.state["params"]):  # a new structure: take it whole
            if params is None:
                _, params, rest = split_params(self.module, self.wrt)
            self.state["params"], self.state["rest"] = self._leaves(params, rest)
            self._shared = True
        else:
            changed = [i for i, (a, b) in enumerate(zip(leaves, synced)) if a is not b]
            if changed:
                for i in changed:
                    mine[i] = _like(leaves[i], mine[i])
                self.state["params"], self.state["rest"] = mine[:n], mine[n:]
                self._shared = True
        self._synced = leaves
        self._exposed = False

    def get_weights(self) -> list[np.ndarray]:
        if self.wrt is not nnx.Param:  # frozen parameters are in "rest": read the module
            self.sync_to_module()
            return [np.array(a) for a in jax.tree.leaves(nnx.state(self.module, nnx.Param))]
        self.refresh_from_module()
        leaves = (jax.tree.leaves(nnx.state(self.module, nnx.Param)) if self.state is None
                  else self.state["params"])
        return [np.array(a) for a in leaves]  # copies the caller owns

    def set_weights(self, weights: list[Any]) -> None:
        if self.wrt is not nnx.Param:  # through the module; the state takes what changed
            self.sync_to_module()
        else:
            self.refresh_from_module()
        params = nnx.state(self.module, nnx.Param)
        leaves, treedef = jax.tree.flatten(params)
        if self.state is not None and self.wrt is nnx.Param:
            leaves = self.state["params"]
        check_weights(weights, leaves)
        # copies: the state is donated by the next step, the caller's arrays must survive it
        new = [_like(jnp.array(w, dtype=a.dtype, copy=True), a) for w, a in zip(weights, leaves)]
        if self.state is None or self.wrt is not nnx.Param:
            nnx.update(self.module, jax.tree.unflatten(treedef, new))
            self.refresh_from_module()
        else:
            self.state["params"] = new  # the module gets them at the next write

    # ================================================================== state files (issue 7)
    # Flat ``name -> NumPy array`` views of the state for kompile.saving and the checkpoint
    # callbacks; the naming and conversion live in py.
    def _state_trees(self) -> dict[str, Any]:
        if self.state is None or "opt" not in self.state:
            raise ValueError("The model has no training state yet: compile it and run fit() or "
                             "train_on_batch() once, so that its optimizer state exists.")
        trees = {"params": self.params_tree(), "rest": self.rest_tree(),
                 "opt": self.state["opt"], "metrics": self.state["metrics"]}
        if "rng" in self.state:  # the kompile-owned key behind `rngs`
            trees["rng"] = self.state["rng"]
        if "loss_scale" in self.state:
            trees["loss_scale"] = self.state["loss_scale"]
        return trees

    def state_dict(self) -> dict[str, np.ndarray]:
        """Weights, other module variables (RNG included), optimizer, train-metric and
        loss-scale state: everything a resumed fit needs."""
        return to_host(named(self._state_trees()))

    def load_state_dict(self, arrays: dict[str, Any]) -> None:
        trees = self._state_trees()
        missing = [n for n, _ in named(trees) if n not in arrays]
        if missing:
            raise ValueError(f"load_state_dict: the arrays lack {missing[:6]} "
                             f"({len(missing)} missing).")
        new = replace(trees, arrays)
        self.state["params"], self.state["rest"] = self._leaves(new["params"], new["rest"])
        self.state.update({k: v for k, v in new.items() if k not in ("params", "rest")})

    def _module_trees(self) -> tuple[Any, Any]:
        self.refresh_from_module()
        if self.state is None:
            return split_params(self.module, self.wrt)[1:]
        return self.params_tree(), self.rest_tree()

    def weights_dict(self) -> dict[str, np.ndarray]:
        """The module's parameters and other variables except RNG state, by module path."""
        rng = {n for n, _ in named(nnx.state(self.module, nnx.RngState))}
        params, rest = self._module_trees()
        pairs = named(params) + [(n, a) for n, a in named(rest)
                                           if n not in rng]
        return to_host(pairs)

    def load_weights_dict(self, arrays: dict[str, Any]) -> None:
        params, rest = self._module_trees()
        params, rest = replace(params, arrays), replace(rest, arrays)
        if self.state is None:
            nnx.update(self.module, params, rest)
            return
        self.state["params"], self.state["rest"] = self._leaves(params, rest)
        self.sync_to_module()


# nnx.merge(..., copy=True) (newer flax) gives the merged module Variables of its own;
# older releases always build new Variables from the state and have no `copy` keyword.
_MERGE_COPY = "copy" in inspect.signature(nnx.merge).parameters


def merge(graphdef: Any, *states: Any) -> Any:
    """``nnx.merge`` giving the merged module Variables of its own, on every flax."""
    return nnx.merge(graphdef, *states, copy=True) if _MERGE_COPY else nnx.merge(graphdef, *states)


def tabulate(module: Any, x: Any) -> tuple[str | None, str | None]:
    """``nnx.tabulate``'s table of ``module`` called on ``x``, or None and why it failed.
    tabulate replaces the methods of the module's classes while it runs and does not put
    them back when it fails (nnx.RNN): they are restored here in any case."""
    saved = class_dicts(module)
    try:
        return nnx.tabulate(module, x, console_kwargs={"force_terminal": False,
                                                       "no_color": True, "width": 120}), None
    except Exception as err:  # noqa: BLE001  (summary() falls back to the plain table)
        return None, f"(nnx.tabulate failed: {type(err).__name__}: {err})"
    finally:
        restore_class_dicts(saved)
