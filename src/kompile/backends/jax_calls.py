"""The JAX backend's compiled calls: building them, and running them on the step state.

A call runs one step, or ``n`` steps as one ``lax.scan`` (``steps_per_execution``) or a
``fori_loop`` whose trip count is an argument (paced calls, pacing.py), traced once. The
feed is put in the epoch's batch order once per index matrix (one gather on the device);
each step slices its batch at the cursor, so a training step needs nothing from the host.
Each call donates the phase's state; a Ctrl-C arriving once the call has taken it is raised
after the result is stored, and a run-time failure after that point puts back the last good
state (jax_recovery.py).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from .interrupts import SignalGuard
from .jax_sharding import StepMajor, local_batches

TRACE_ERRORS = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
                jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError,
                jax.errors.NonConcreteBooleanIndexError, jax.errors.UnexpectedTracerError)


@jax.jit
def _take(feed: Any, rows: Any) -> Any:
    return jax.tree.map(lambda a: a.at[rows].get(mode="promise_in_bounds"), feed)


@jax.jit
def _copy_scalar(a: Any) -> Any:
    return jnp.copy(a)


def _is_step_major(a: Any) -> bool:
    return isinstance(a, StepMajor)


def _rows(data: Any, start: Any, size: int) -> Any:
    def rows(a: Any) -> Any:
        if isinstance(a, StepMajor):  # (batches, size, ...): the batch at index start // size
            return jax.lax.dynamic_index_in_dim(a.array, start // size, keepdims=False)
        return jax.lax.dynamic_slice_in_dim(a, start, size)

    return jax.tree.map(rows, data, is_leaf=_is_step_major)


def _batches(data: Any, start: Any, n: int, bs: int) -> Any:
    def batches(a: Any) -> Any:
        if isinstance(a, StepMajor):
            return jax.lax.dynamic_slice_in_dim(a.array, start // bs, n)
        return jax.lax.dynamic_slice_in_dim(a, start, n * bs).reshape((n, bs) + a.shape[1:])

    return jax.tree.map(batches, data, is_leaf=_is_step_major)


def _rng_into_carry(state: dict[str, Any], extra: tuple[Any, ...]) -> tuple[dict, tuple]:
    """Evaluation calls take the RNG as their last argument and carry it in the state (the
    caller's arrays are not donated); the call returns it under ``"rngs"``."""
    *rest, rngs = extra
    return {**state, "rngs": rngs}, tuple(rest)


def _consumed(state: Any) -> bool:
    """Whether a jitted call has taken (donated) ``state``: then only its result is valid."""
    return any(getattr(a, "is_deleted", lambda: False)() for a in jax.tree.leaves(state))



class CompiledCalls:
    """The JaxBackend's compiled calls (a mixin: it uses the backend's state, steps and
    ``put``)."""

    # declared here, set by JaxBackend (jax.py: __init__ and build)
    state: Any
    eval_state: Any
    jit_compile: Any
    objective: Any
    paced: dict[str, bool]
    _config: Any
    _strict: bool
    _fns: dict[Any, Any]
    _counts: dict[int, Any]
    _results: Any
    _order: dict[str, Any]
    _order_src: dict[str, Any]
    _guard: SignalGuard
    _cursor: dict[str, int]
    _index_id: dict[str, Any]
    _exposed: bool
    _shared: bool
    _rng_advanced: bool
    dist: Any  # the distribution (jax_sharding.py), set by JaxBackend
    put_global: Any  # JaxBackend.put_global: host batches onto the mesh
    per_process: Any  # JaxBackend.per_process: several processes feed their own rows
    settle: Any  # jax_recovery.LastGood.settle: back to the last good state

    if TYPE_CHECKING:  # the backend's other parts (jax.py, jax_state.py)
        def put(self, tree: Any) -> Any: ...
        def build(self, objective: Any, config: Any) -> None: ...
        def reset_metrics(self, phase: str) -> None: ...
        def refresh_from_module(self) -> None: ...
        def sync_to_module(self) -> None: ...
        def _unshare(self) -> None: ...
        def _train_one(self, state: dict[str, Any], batch: Any) -> dict[str, Any]: ...
        def _eval_one(self, state: dict[str, Any], batch: Any, params: Any, rest: Any) -> Any:
            ...
        def _rng_of(self, rest: Any) -> list[Any]: ...
        def _with_rng(self, rest: Any, rng: list[Any]) -> list[Any]: ...

    def _compiled(self, kind: str, n: int, batch_size: int):
        key = (kind, n, batch_size)
        if key not in self._fns:
            self._fns[key] = self._make(kind, n, batch_size, jit=self.jit_compile)
        return self._fns[key]

    def _make(self, kind: str, n: int, bs: int, jit: bool):
        """One call: ``n`` consecutive batches of ``bs`` rows from data already in batch order
        (contiguous slices: a gather from the whole data set in every step costs XLA:CPU
        about 40% of a small step)."""
        one = self._train_one if kind.startswith("train") else self._eval_one
        if kind == "predict":
            def run_predict(p, r, rng, data, start):
                if n == 1 or not jit:
                    outs = []
                    for i in range(n):
                        out, rng = self._predict_one(p, r, _rows(data[0], (start + i) * bs, bs),
                                                     rng)
                        outs.append(out)
                    return [jnp.concatenate(o) if n > 1 else o[0] for o in zip(*outs)], rng
                xs = _batches(data[0], start * bs, n, bs)
                rng, outs = jax.lax.scan(lambda c, x: self._predict_one(p, r, x, c)[::-1], rng,
                                         xs)
                return [o.reshape((-1,) + o.shape[2:]) for o in outs], rng

            return jax.jit(run_predict) if jit else run_predict

        if kind.endswith("_loop"):  # n is an argument: one compile serves every count
            return self._make_loop(one, bs, jit, kind == "eval_loop")

        def run(state, data, *extra):
            cursor = state["cursor"]
            if kind == "eval":
                state, extra = _rng_into_carry(state, extra)
            if n == 1 or not jit:
                for i in range(n):
                    batch = _rows(data, (cursor + i) * bs, bs)
                    state = one(state, self._shard(batch, 0), *extra)
            else:  # the call's n batches at once, then one scan traced once
                batches = self._shard(_batches(data, cursor * bs, n, bs), 1)
                state = jax.lax.scan(lambda s, b: (one(s, b, *extra), None), state, batches)[0]
            return self._pin({**state, "cursor": cursor + n})

        return jax.jit(run, donate_argnums=(0,)) if jit else run

    def _make_loop(self, one: Any, bs: int, jit: bool, evaluates: bool):
        """A paced call (pacing.py): ``n`` steps as a loop whose trip count is an argument,
        each slicing its batch at the cursor (as a one-step call does)."""
        def run(state, data, n, *extra):
            cursor = state["cursor"]
            if evaluates:
                state, extra = _rng_into_carry(state, extra)
            if not jit:
                for i in range(int(n)):
                    state = one(state, self._shard(_rows(data, (cursor + i) * bs, bs), 0), *extra)
            else:
                state = jax.lax.fori_loop(0, n, lambda i, s: one(
                    s, self._shard(_rows(data, (cursor + i) * bs, bs), 0), *extra), state)
            return self._pin({**state, "cursor": cursor + n})

        return jax.jit(run, donate_argnums=(0,)) if jit else run

    def _count(self, n: int) -> Any:
        """``n`` as a device scalar, put once per count (an explicit transfer)."""
        if n not in self._counts:
            self._counts[n] = self.put_global(np.int32(n))
        return self._counts[n]

    @property
    def fuses_calls(self) -> bool:
        """Whether several batches per call pay off: the steps are compiled loops."""
        return self.jit_compile is True

    def wait(self) -> None:
        """Block until the queued calls have run (pacing.py times calls with it)."""
        jax.block_until_ready(self.state)
        jax.block_until_ready(self.eval_state)

    def _call(self, kind: str, n: int, bs: int, *args: Any) -> Any:
        fn = self._compiled(kind, n, bs)
        try:
            return fn(*args)
        except TRACE_ERRORS as err:
            if self._strict or not self.jit_compile:
                raise
            warnings.warn(
                f"jit_compile='auto': the step cannot be traced by jax.jit, so it runs eagerly "
                f"(slower). Cause: {type(err).__name__}: {str(err).splitlines()[0]}",
                stacklevel=4)
            self.jit_compile = False
            self._fns.clear()
            self._results = self.objective.results
            return self._compiled(kind, n, bs)(*args)

    def _ordered(self, phase: str, feed: Any, index: Any) -> Any:
        """The feed's rows in the order of ``index`` (an epoch's shuffle): one gather per
        index matrix, kept until the next one (a second copy of the data on the device)."""
        src = self._order_src.get(phase)
        if src is None or src[0] is not feed or src[1] is not index:
            self._order_src.pop(phase, None)  # (an interrupt below leaves no stale pairing)
            self._order[phase] = local_batches(self.dist, feed, index) if self.per_process \
                else _take(feed, index.reshape(-1))
            self._order_src[phase] = (feed, index)  # held, so identities cannot be reused
        return self._order[phase]

    def release(self) -> None:
        """End of a fit/evaluate/predict call: drop the ordered copies of the data and put
        back the SIGINT handler (a Ctrl-C deferred to a step boundary is raised here if it
        was not yet)."""
        try:
            self._order.clear()
            self._order_src.clear()
            self._index_id = {"train": None, "eval": None}
        finally:
            self._guard.restore()

    def _seek(self, phase: str, state: dict[str, Any], data: Any, start: int) -> None:
        if self._cursor[phase] != start or self._index_id[phase] is not data:
            # once per epoch; a fresh buffer (the steps donate it) copied on the device
            state["cursor"] = _copy_scalar(self._count(start))
        self._index_id[phase] = data

    def _donating_call(self, phase: str, start: int, n: int, kind: str, call_n: int, bs: int,
                       *args: Any) -> None:
        """``_call(kind, call_n, bs, *args)``, which donates the phase's state (``args[0]``)
        and runs ``n`` steps from ``start``, with its result stored; a Ctrl-C arriving once
        the call has taken the state is raised after the store."""
        guard = self._guard
        if not guard.installed:
            guard.install()
        guard.open(args[0])
        try:
            try:
                new = self._call(kind, call_n, bs, *args)
            except BaseException:
                if _consumed(args[0]):  # failed at run time, after taking the state
                    self.settle()  # (jax_recovery: back to the last good state)
                raise
            if phase == "train":
                self.state = new
            else:
                self.eval_state = new
            self._cursor[phase] = start + n
        finally:
            guard.close()

    def train(self, feed: Any, index: Any, start: int, n: int) -> None:
        if self._exposed:  # a callback saw the module: take what it changed
            self.refresh_from_module()
        if self._shared:  # never donate arrays the module holds
            self._unshare()
        data = self._ordered("train", feed, index)
        self._seek("train", self.state, data, start)
        if self.paced.get("train"):
            self._donating_call("train", start, n, "train_loop", 0, index.shape[1], self.state,
                                data, self._count(n))
        else:
            self._donating_call("train", start, n, "train", n, index.shape[1], self.state, data)

    def evaluate(self, feed: Any, index: Any, start: int, n: int) -> None:
        if self._exposed:
            self.refresh_from_module()
        data = self._ordered("eval", feed, index)
        self._seek("eval", self.eval_state, data, start)
        extra = (self.state["params"], self.state["rest"], self._rng_in())
        if self.paced.get("eval"):
            self._donating_call("eval", start, n, "eval_loop", 0, index.shape[1],
                                self.eval_state, data, self._count(n), *extra)
        else:
            self._donating_call("eval", start, n, "eval", n, index.shape[1], self.eval_state,
                                data, *extra)
        self._rng_out(self.eval_state.pop("rngs"))

    def predict(self, feed: Any, index: Any, start: int, n: int) -> list[Any]:
        """Flat per-output predictions covering rows ``start:start+n`` of ``index``."""
        if self._exposed:
            self.refresh_from_module()
        data = self._ordered("predict", feed, index)
        out, rng = self._call("predict", n, index.shape[1], self.state["params"],
                              self.state["rest"], self._rng_in(), data, start)
        self._rng_out(rng)
        return out

    def _rng_in(self) -> tuple[list[Any], Any]:
        """What evaluate and predict advance: the module's own RNG leaves and the key."""
        return self._rng_of(self.state["rest"]), self.state.get("rng")

    def _rng_out(self, rng: tuple[list[Any], Any]) -> None:
        leaves, key = rng
        if leaves:
            self.state["rest"] = self._with_rng(self.state["rest"], leaves)
            self._rng_advanced = True
        if key is not None:
            self.state["rng"] = key

    def write_back_rng(self) -> None:
        """The module's own RNG streams, advanced by evaluate/predict, into the module (the
        kompile-owned key lives in the step state)."""
        if self._rng_advanced:
            self._rng_advanced = False
            self.sync_to_module()
