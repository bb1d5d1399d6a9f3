"""JAX backend for Flax NNX modules: the train, eval and predict steps and where state lives.

State is one pytree (parameters and other module variables as flat lists of arrays,
optimizer state, metric states, loss scale, a batch cursor) donated to one jitted function
per call. This module holds the pure steps and the state's life cycle; jax_calls.py builds
and runs the compiled calls, jax_state.py keeps the user's module and checkpoint state.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .. import calling, precision, structures
from .. import data as data_mod
from ..warn import KompileWarning
from . import extra_losses, jax_rng, jax_sharding, jax_state
from .interrupts import SignalGuard
from .jax_average import Averaging
from .jax_calls import TRACE_ERRORS, CompiledCalls, _consumed
from .jax_recovery import LastGood

precision.register_pytree()
def _all_finite(tree: Any) -> Any:
    leaves = [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


class JaxBackend(jax_state.ModuleState, CompiledCalls, LastGood, Averaging):
    name = "jax"

    def __init__(self, module: nnx.Module, policy: precision.Policy,
                 output_names: Any = None, distribution: Any = None):
        self.module = module
        self.dist = distribution
        self._layouts: Any = None  # the sharded state's layouts the steps keep (jax_sharding)
        self._x_keys: dict[frozenset, list[Any]] = {}  # each dict x's key order, by key set
        self.policy = policy
        self.output_names = output_names
        self.jit_compile: Any = None
        self.state: Any = None  # dict[str, Any] once built
        self.eval_state: Any = None
        # The module and the step state (see "module state" below): _synced holds the leaves
        # the module had when kompile last wrote or read it; _shared says the module holds
        # arrays of the state (copied before a step donates them); _exposed says the module
        # was handed out since the last step (a callback may have changed it).
        self._synced: list[Any] | None = None
        self._shared = self._exposed = self._syncing = False
        self._guard = SignalGuard(_consumed)
        self._cursor = {"train": -1, "eval": -1}
        self._index_id: dict[str, Any] = {"train": None, "eval": None}
        self._order: dict[str, Any] = {}
        self._order_src: dict[str, Any] = {}
        self.paced: dict[str, bool] = {}  # phases whose calls the loop paces (pacing.py)
        self._counts: dict[int, Any] = {}
        # the calling rule (kompile.calling) and the kompile-owned key behind `rngs`
        self.signature = calling.ModuleSignature(module, "__call__", rngs_allowed=True)
        self.seed: int | None = None  # set by Model when the module takes `rngs`
        self._key: Any = None  # the key between builds (the step state holds it otherwise)
        self._rng_idx: list[int] = []  # the module's own RNG leaves in `rest`
        self._rng_advanced = False  # by evaluate/predict, not yet written to the module

    # ------------------------------------------------------------------ shapes
    def _user_order(self, x: Any) -> Any:
        """A dict input with the user's key order (JAX pytrees sort dict keys)."""
        if not isinstance(x, dict):
            return x
        keys = self._x_keys.get(frozenset(x))
        return x if keys is None else {k: x[k] for k in keys}

    def use_inputs(self, x: Any) -> calling.CallRule:
        """This call's ``x`` (one batch): its calling rule (an error naming what the module
        cannot take, before any step) and a dict's key order (kept per set of keys)."""
        if isinstance(x, dict):
            self._x_keys[frozenset(x)] = list(x)
        return self.signature.rule_for(x)

    def output_spec(self, x: Any) -> structures.OutputSpec:
        rule = self.use_inputs(x)
        self.module.eval()
        graphdef, state = nnx.split(self.module)
        seen: list[Any] = []

        def forward(s: Any, x: Any) -> Any:
            module = jax_state.merge(graphdef, s)
            out = rule.call(module, self._cast(self._user_order(x)), False, nnx.Rngs(0))
            seen.append(out)  # the module's own dict order (JAX pytrees sort dict keys)
            # shapes are read from the traced outputs in `seen`; returning nothing lets a
            # module return non-array entries (caches, Python objects) as well

        try:
            try:
                jax.eval_shape(forward, state, x)
            except TRACE_ERRORS:  # a module that cannot be traced: one eager call on one sample
                one = self._cast(self._user_order(jax.tree.map(lambda a: jnp.asarray(a[:1]), x)))
                seen = [rule.call(self.module, one, False, nnx.Rngs(0))]
        except Exception as err:  # noqa: BLE001  (re-raised with what x held, chained)
            raise calling.first_call_error(self.signature, x, err) from err
        return structures.output_spec(seen[-1], self.output_names)

    def sample_outputs(self, x: Any) -> list[Any]:
        """Flat host predictions for the first few samples of ``x`` (eval mode; the module
        and the step state are left as they were). One small compile: eager JAX compiles
        every primitive separately, which costs more."""
        self.prepare_predict()
        few = jax.tree.map(lambda a: jnp.asarray(a[:8]), x)
        forward = lambda p, r, k, x: self._forward(self.gd_eval, p, r, x, k)[0]  # noqa: E731
        args = (self.state["params"], self.state["rest"], self.state.get("rng"), few)
        try:
            out = jax.jit(forward)(*args)
        except TRACE_ERRORS:
            out = forward(*args)
        return self.to_host(out)

    # ------------------------------------------------------------------ precision
    def _cast(self, tree: Any) -> Any:
        """Floating leaves to the compute dtype (a no-op under float32)."""
        dtype = jnp.dtype(self.policy.compute_dtype)
        if dtype == jnp.float32:
            return tree
        return jax.tree.map(
            lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)

    # ------------------------------------------------------------------ build
    def build(self, objective: Any, config: Any) -> None:
        self.objective, self._config = objective, config
        opt = config.optimizer
        self.loss_scale_opt = opt if getattr(opt, "is_loss_scale", False) else None
        self.opt_spec = self.loss_scale_opt.inner if self.loss_scale_opt else opt
        self.opt_spec._bind(self)  # model.optimizer.learning_rate / .iterations: live
        self._keep_key()
        params, rest = self._split_module()
        self.opt_spec._set_variable_names(  # exclude_from_weight_decay matches these
            [n for n, _ in jax_state.named(self.params_tree(params))])
        self.tx = self.opt_spec.build_optax()
        params = jax.tree.map(lambda a: a.astype(self.policy.variable_dtype)
                              if jnp.issubdtype(a.dtype, jnp.floating) else a, params)
        # assembled aside and stored at the end, so an interrupted build leaves no half state
        state = {
            "params": params, "rest": rest, "opt": self.tx.init(params),
            "metrics": jax.device_put(objective.init_states()),
            "cursor": jnp.zeros((), jnp.int32),
        }
        self._put_key(state)
        if self.loss_scale_opt is not None:
            ls = self.loss_scale_opt
            state["loss_scale"] = precision.LossScale(
                jnp.asarray(ls.initial_scale, jnp.float32), jnp.zeros((), jnp.int32),
                ls.dynamic_growth_steps)
            ls._reader = lambda: float(self.state["loss_scale"].scale)  # host sync on read
        eval_state = {"metrics": jax.device_put(objective.init_states()),
                      "cursor": jnp.zeros((), jnp.int32)}
        # donation needs one buffer per leaf (optimizer states may share arrays), and the
        # module keeps its own arrays: the state donated by the steps is a copy
        state = jax.tree.map(lambda a: jnp.array(a, copy=True), state)
        if self.dist is not None:  # replicated, or sharded by a ModelParallel's layouts
            state["params"] = self.agree(state["params"])  # process 0's weights
            state, self._layouts = jax_sharding.place_state(self, state)
            eval_state = jax.device_put(eval_state, self.dist.replicated())
        self._synced = self._module_leaves()
        self.state, self.eval_state = state, eval_state
        self._shared = self._exposed = self._syncing = False
        eager = not self.resolve_jit(config)
        if config.run_eagerly and config.jit_compile is True:
            warnings.warn("run_eagerly=True overrides jit_compile=True: the steps run eagerly.",
            KompileWarning, stacklevel=3)
        self.jit_compile = False if eager else True
        self._strict = config.jit_compile is True
        self._fns: dict[Any, Any] = {}
        self._zeros: Any = None
        self._results = jax.jit(objective.results) if not eager else objective.results

    def _split_module(self) -> tuple[Any, Any]:
        self.module.train()
        self.gd_train, params, rest = jax_state.split_params(self.module, self.wrt)
        self.module.eval()
        self.gd_eval = jax_state.split_params(self.module, self.wrt)[0]
        self._draw_cache: dict[Any, bool] = {}  # jax_rng: per graphdef and mode
        is_var = lambda v: isinstance(v, nnx.Variable)  # noqa: E731
        flags = jax.tree.leaves(jax.tree.map(lambda v: isinstance(v, nnx.RngState), rest,
                                             is_leaf=is_var))
        leaves = self._leaves(params, rest)
        # the module's own RNG streams, advanced and written back by evaluate and predict too
        self._rng_idx = [i for i, f in enumerate(flags) if f] if len(flags) == len(
            leaves[1]) else list(range(len(leaves[1])))
        return leaves

    def _keep_key(self) -> None:
        """Randomness continues across builds (predict before compile, recompiles)."""
        if self.state is not None and "rng" in self.state:
            self._key = self.state["rng"]

    def _put_key(self, state: dict[str, Any]) -> None:
        """The kompile-owned key behind `rngs` into a new step state (kept across builds)."""
        if not self.signature.takes_rngs:
            return
        if self._key is None:
            self._key = jax.random.key(self.seed if self.seed is not None else 0)
        state["rng"] = self._key

    def _leaves(self, params: Any, rest: Any) -> tuple[list[Any], list[Any]]:
        """Module state as flat lists of arrays: the step state is then a pytree that jit's
        C++ dispatch flattens fast (nnx Variables flatten in Python, ~100 us per call)."""
        p_leaves, self._p_def = jax.tree.flatten(params)
        r_leaves, self._r_def = jax.tree.flatten(rest)
        return p_leaves, r_leaves

    def params_tree(self, leaves: Any = None) -> Any:
        """The parameters as an nnx State (names as in the module)."""
        return jax.tree.unflatten(self._p_def, self.state["params"] if leaves is None else leaves)

    def rest_tree(self, leaves: Any = None) -> Any:
        """The module's other variables (batch statistics, RNG state) as an nnx State."""
        return jax.tree.unflatten(self._r_def, self.state["rest"] if leaves is None else leaves)

    def resolve_jit(self, config: Any) -> bool:
        if isinstance(config.jit_compile, str) and config.jit_compile != "auto":
            raise ValueError(f"jit_compile={config.jit_compile!r} is a torch.compile mode (torch "
                             "only); the JAX backend takes True, False or 'auto'.")
        return not (config.run_eagerly or config.jit_compile is False)

    def unbuild(self) -> None:
        """Forget optimizer and metric state (a recompile); the module keeps the weights."""
        self.sync_to_module()
        self._keep_key()
        self.state = self.eval_state = None
        self.jit_compile = None
        self._shared = self._exposed = False

    def prepare_predict(self, config: Any = None) -> None:
        """Predict before fit/evaluate: the module's variables are the whole state (nothing
        is donated). Compiled with the compile ``config``'s mode (``run_eagerly`` and
        ``jit_compile`` as resolved for fit); without one, jitted with the eager fallback.
        Built or not, what the user changed on the module since the last call is used."""
        if self.state is not None:
            self.refresh_from_module()
            return
        params, rest = self._split_module()
        self.state = {"params": params, "rest": rest}
        self._put_key(self.state)
        self._synced, self._shared, self._exposed = params + rest, True, False
        jit = True if config is None else self.resolve_jit(config)
        strict = config is not None and config.jit_compile is True and jit
        self.jit_compile, self._strict, self._fns = jit, strict, {}

    # ------------------------------------------------------------------ steps (pure)
    def _forward(self, graphdef: Any, params: Any, rest: Any, x: Any, key: Any = None,
                 training: bool = False):
        """Flat outputs, the module's new other variables and the next kompile-owned key.
        The key is split (a fresh ``nnx.Rngs`` per step) only when the forward draws from it
        (jax_rng.py); otherwise it passes through unchanged."""
        rngs = None
        if key is not None:
            if self._draws(graphdef, params, rest, x, key, training):
                key, step_key = jax.random.split(key)
                rngs = nnx.Rngs(step_key)
            else:  # nothing reads it: the same numbers without the split
                rngs = nnx.Rngs(key)
        out, new_rest = self._apply(graphdef, params, rest, x, rngs, training)
        return out, new_rest, key

    def _apply(self, graphdef: Any, params: Any, rest: Any, x: Any, rngs: Any,
               training: bool) -> tuple[list[Any], list[Any]]:
        module = jax_state.merge(graphdef, self._cast(self.params_tree(params)),
                                 self.rest_tree(rest))
        nnx.pop(module, nnx.Intermediate)  # values sown before: each call sows its own
        x = self._user_order(x)
        out = self.signature.rule_for(x).call(module, self._cast(x), training, rngs)
        new_rest, sown = jax_state.after_call(module, rest, self._p_def, self._r_def,
                                             self.wrt)
        # kp.add_loss values: read by the step that traces this forward (_added_loss)
        self._added = extra_losses.jax_total(sown)
        # (RNG key arrays have no astype outside jit, and never change dtype)
        new_rest = [new if new.dtype == old.dtype else new.astype(old.dtype)
                    for new, old in zip(new_rest, rest)]
        return self.spec.flatten(out), new_rest

    def _draws(self, graphdef: Any, params: Any, rest: Any, x: Any, key: Any,
               training: bool) -> bool:
        """Whether the forward in this mode draws from the kompile-owned key (traced once
        per build and mode, on shapes only)."""
        cache = self.__dict__.setdefault("_draw_cache", {})
        if (id(graphdef), training) not in cache:
            fwd = lambda p, r, x, k: self._apply(graphdef, p, r, x, nnx.Rngs(k),  # noqa: E731
                                                 training)
            cache[(id(graphdef), training)] = jax_rng.forward_draws(fwd, (params, rest, x), key)
        return cache[(id(graphdef), training)]

    def _added_loss(self, total: Any) -> Any:
        """``total`` plus the ``kp.add_loss`` values of the forward just traced (same trace)."""
        added, self._added = getattr(self, "_added", None), None
        return total if added is None else total + added

    def _rng_of(self, rest: Any) -> list[Any]:
        return [rest[i] for i in self._rng_idx]

    def _with_rng(self, rest: Any, rng: list[Any]) -> list[Any]:
        rest = list(rest)
        for i, a in zip(self._rng_idx, rng):
            rest[i] = a
        return rest

    def _train_one(self, state: dict[str, Any], batch: Any) -> dict[str, Any]:
        x, ys, sws = batch
        ls = state.get("loss_scale")

        def loss_fn(params):
            preds, rest, key = self._forward(self.gd_train, params, state["rest"], x,
                                             state.get("rng"), True)
            total, per_output = self.objective.compute_loss(ys, preds, sws)
            total = self._added_loss(total)
            scaled = ls.scale_loss(total) if ls is not None else total
            return scaled, (total, per_output, preds, rest, key)

        grads, (total, per_output, preds, rest, key) = jax.grad(loss_fn, has_aux=True)(
            state["params"])
        new = dict(state)
        if key is not None:
            new["rng"] = key
        if ls is not None:
            grads = ls.unscale(grads, jax.tree.map)
            finite = _all_finite(grads)
        updates, opt_state = self.tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        if ls is not None:  # a non-finite step changes nothing but the scale
            keep = lambda a, b: jax.tree.map(lambda u, v: jnp.where(finite, u, v), a, b)  # noqa
            params, opt_state = keep(params, state["params"]), keep(opt_state, state["opt"])
            new["loss_scale"] = ls.adjust(finite, jnp)
        batch = jax.tree.leaves(x)[0].shape[0]
        new.update(params=params, opt=opt_state, rest=rest,
                   metrics=self.objective.update(state["metrics"], ys, preds, sws, total,
                                                 per_output, batch))
        return new

    def _eval_one(self, state: dict[str, Any], batch: Any, params: Any, rest: Any) -> Any:
        """One evaluation batch; ``state["rngs"]`` carries the RNG (the module's own streams
        and the kompile-owned key), advanced as in training."""
        x, ys, sws = batch
        rng, key = state["rngs"]
        preds, new_rest, key = self._forward(self.gd_eval, params, self._with_rng(rest, rng), x,
                                             key)
        total, per_output = self.objective.compute_loss(ys, preds, sws)
        total = self._added_loss(total)
        batch = jax.tree.leaves(x)[0].shape[0]
        metrics = self.objective.update(state["metrics"], ys, preds, sws, total, per_output,
                                        batch)
        return {**state, "metrics": metrics, "rngs": (self._rng_of(new_rest), key)}

    def _predict_one(self, params: Any, rest: Any, x: Any, rng: Any) -> tuple[list[Any], Any]:
        leaves, key = rng
        out, new_rest, key = self._forward(self.gd_eval, params, self._with_rng(rest, leaves),
                                           self._shard(x, 0), key)
        # without the model's own 0-d loss
        return out[:len(self.spec.names)], (self._rng_of(new_rest), key)

    # ------------------------------------------------------------------ metrics and host
    def reset_metrics(self, phase: str) -> None:
        target = self.state if phase == "train" else self.eval_state
        if self.dist is not None:
            target["metrics"] = self.put_global(self.objective.init_states())
            return
        if getattr(self, "_zeros", None) is None:
            # fresh zero buffers (the steps donate them) from a compiled call: cheaper
            # than a transfer of the host zeros at every epoch
            initial = self.objective.init_states()
            self._zeros = jax.jit(lambda: initial)
        target["metrics"] = self._zeros()

    def results(self, phase: str) -> dict[str, Any]:
        target = self.state if phase == "train" else self.eval_state
        return self._results(target["metrics"])

    def check_batch_size(self, batch_size: int) -> None:
        if self.dist is not None:
            self.dist.check_batch_size(batch_size)

    check_agreement = staticmethod(jax_sharding.check_agreement)  # several processes

    @property
    def split_across_processes(self) -> bool:
        return jax_sharding.split_across_processes(self)

    def _pin(self, state: dict[str, Any]) -> dict[str, Any]:
        """A step's new state kept in the layouts of a sharded state (inside jit)."""
        return jax_sharding.pin(state, self._layouts)

    def _shard(self, batch: Any, leading: int) -> Any:
        return batch if self.dist is None else self.dist.shard_batch(batch, leading)

    @property
    def per_process(self) -> bool:
        """Several processes: each puts only its own share of the data (jax_sharding)."""
        return self.dist is not None and jax.process_count() > 1

    def put(self, tree: Any) -> Any:
        """The data feed (and its index) on the devices: replicated under a distribution
        (the steps shard each batch); on the host with several processes, where each epoch's
        batches are put per process (``local_batches``)."""
        return tree if self.per_process else self.put_global(tree)

    def put_global(self, tree: Any) -> Any:
        if self.dist is not None:
            return jax.device_put(tree, self.dist.replicated())
        return jax.device_put(tree)

    def fits_on_device(self, nbytes: int) -> bool:
        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        limit = stats["bytes_limit"] // 8 if stats else 2 << 30  # two copies during fit
        return nbytes <= limit

    def to_host(self, tree: Any) -> Any:
        if jax.process_count() > 1:  # arrays split across processes are gathered first
            from jax.experimental import multihost_utils

            tree = jax.tree.map(lambda a: a if getattr(a, "is_fully_addressable", True)
                                or a.is_fully_replicated else
                                multihost_utils.process_allgather(a, tiled=True), tree)
        return jax.device_get(tree)  # host sync

    @property
    def process_index(self) -> int:
        return jax.process_index()

    def agree(self, value: Any) -> Any:
        """The same host value on every process (process 0's), e.g. the epoch's data order."""
        if jax.process_count() == 1:
            return value
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(value))

    @property
    def spec(self) -> structures.OutputSpec:
        return self._spec

    def set_spec(self, spec: structures.OutputSpec) -> None:
        self._spec = spec

    def set_paced(self, phase: str, paced: bool) -> None:
        self.paced[phase] = paced

    def summary_table(self, x: Any) -> tuple[str | None, str | None]:
        return jax_state.tabulate(self.module, data_mod.to_numpy(x, "x"))

    def describe_module(self) -> list[str]:
        return []

    def variables(self) -> list[tuple[str, Any, bool]]:
        wrt = self.wrt  # the trained variables (kp.Model(trainable=...))
        params = nnx.state(self.module, wrt)
        others = nnx.state(self.module, nnx.Not(nnx.Any(wrt, nnx.RngState)))
        return [(n, a, True) for n, a in jax_state.named(params)] + \
            [(n, a, False) for n, a in jax_state.named(others)]

    def global_rng(self) -> dict[str, np.ndarray]:
        return {}  # the kompile-owned key and the module's streams are in state_dict

    def restore_global_rng(self, arrays: dict[str, Any]) -> None:
        """Nothing global: JAX's keys are state."""

    # ------------------------------------------------------------------ optimizer
    @property
    def has_optimizer_state(self) -> bool:
        return self.state is not None and "opt" in self.state

    @property
    def learning_rate(self) -> float:
        return float(self.opt_spec.optax_learning_rate(self.state["opt"]))

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.state["opt"] = self.opt_spec.optax_set_learning_rate(self.state["opt"], value)

    @property
    def iterations(self) -> int:
        return int(self.opt_spec.optax_iterations(self.state["opt"]))
