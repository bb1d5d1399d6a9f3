"""The optimizer spec base class and the optax building blocks the table uses.

Owns ``Optimizer`` (argument checks, config, the learning rate kept in the optax state and
read/set without a retrace, the torch pre-step hook that puts Keras's numbers in the param
groups, clipping) and the small optax helpers (chains, Keras's decay-before-update, a
per-variable rule for updates written as Keras writes them). The table of named optimizers
is in optimizers/__init__.py. Importing this module imports neither JAX, optax nor torch.
"""
from __future__ import annotations

import importlib
import re
import weakref
from typing import TYPE_CHECKING, Any, NamedTuple

from ..registry import Registry, get_custom, keywords_checked, type_error
from . import averaging, rates
from .tree import find as _find
from .tree import replace as _replace

COMMON = ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay", "use_ema", "ema_momentum",
          "ema_overwrite_frequency", "gradient_accumulation_steps")
# Keras's defaults of the common options (repr shows the others)
COMMON_DEFAULTS = {"clipnorm": None, "clipvalue": None, "global_clipnorm": None,
                   "weight_decay": None, "use_ema": False, "ema_momentum": 0.99,
                   "ema_overwrite_frequency": None, "gradient_accumulation_steps": None}
# name -> class; filled by the package (optimizers/__init__.py), read by from_config
OPTIMIZERS = Registry("optimizer", case_insensitive=True)


class _Lazy:
    """A module imported on first attribute access (kompile imports no backend eagerly)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


jax, jnp, optax = _Lazy("jax"), _Lazy("jax.numpy"), _Lazy("optax")


def _hyper(local_vars: dict[str, Any]) -> dict[str, Any]:
    """A subclass's own arguments, in signature order, from its ``locals()``."""
    skip = ("self", "learning_rate", "__class__")
    return {k: v for k, v in local_vars.items() if k not in skip}


class Optimizer:
    """Backend-neutral optimizer spec; ``build_optax()`` or ``build_torch(params)`` builds it.

    Subclasses declare ``_optax`` (an optax ``scale_by_*`` name and the attributes it takes;
    the learning rate is applied after it) or override ``_optax_rule``, and ``_torch`` (a
    torch.optim class name and its keywords as attribute names).
    """

    if TYPE_CHECKING:  # a subclass's arguments are attributes, set from `hyper` in __init__
        def __getattr__(self, name: str) -> Any: ...


    name = "optimizer"
    clipnorm = clipvalue = global_clipnorm = weight_decay = None
    use_ema, ema_momentum, ema_overwrite_frequency = False, 0.99, None
    gradient_accumulation_steps: int | None = None
    _learning_rate: Any = None  # as configured (a float or a schedule)
    _trainer: Any = None  # a weak reference to the backend of the model compiled with it
    _args: tuple[str, ...] = ()
    _optax: tuple[str, ...] = ()
    _torch: Any = None
    _torch_momentum = False  # torch keeps lr outside its momentum buffer, Keras inside
    _torch_no_decay: frozenset = frozenset()  # ids of parameters excluded from weight decay

    def __init__(self, learning_rate: Any, hyper: dict[str, Any]) -> None:
        """Store ``learning_rate`` and a subclass's arguments ``hyper`` (its ``locals()``).

        Args:
            learning_rate: A float or a schedule (a callable ``step -> lr``).
            hyper: The subclass's own arguments by name, the common options (``clipnorm``,
                ``clipvalue``, ``global_clipnorm``, ``weight_decay``) included.
        """
        hyper = dict(hyper)
        common = {k: hyper.pop(k) for k in COMMON if k in hyper}
        if sum(common.get(k) is not None for k in COMMON[:3]) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be "
                             "set; received " + ", ".join(f"{k}={common.get(k)}"
                                                          for k in COMMON[:3]) + ".")
        _check_training_options(common)
        self._learning_rate, self._args = rates.check(learning_rate), tuple(hyper)
        for key, value in {**hyper, **common}.items():
            setattr(self, key, value)

    @property
    def learning_rate(self) -> Any:
        """The learning rate. Before training: as configured (a float, or the schedule).
        Once the model compiled with this optimizer has optimizer state: the live value,
        the one the next step uses (a float; a schedule's value at the current step).
        Setting it sets the value the next step uses, as Keras's
        ``model.optimizer.learning_rate = 1e-4`` does (an optimizer built on a schedule
        refuses); before training it replaces the configured value."""
        backend = self._live()
        return self._learning_rate if backend is None else backend.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        backend = self._live()
        if backend is None:
            self._learning_rate = rates.check(value)
            return
        if isinstance(value, bool) or not hasattr(value, "__float__"):
            raise type_error("learning_rate", "a float", value)
        backend.learning_rate = rates.check(float(value))

    @property
    def iterations(self) -> int:
        """Optimizer steps taken by the model compiled with this optimizer (0 before)."""
        backend = self._live()
        return 0 if backend is None else int(backend.iterations)

    def exclude_from_weight_decay(self, var_list: Any = None,
                                  var_names: list[str] | None = None) -> None:
        """Keep some variables out of ``weight_decay`` (Keras's method). Call it before the
        first training batch of the model compiled with this optimizer.

        Args:
            var_list: torch parameters to exclude (the objects themselves). Flax NNX
                variables are named instead, with ``var_names``. Default ``None``.
            var_names: Strings (regular expressions, as Keras's): a variable whose path
                name contains a match is excluded, e.g. ``["bias", "norm"]``. Paths are
                the module's: ``"layers/0/bias"`` (Flax NNX), ``"layers.0.bias"`` (torch).
                Default ``None``.

        Raises:
            ValueError: The model compiled with this optimizer already has optimizer
                state.
            TypeError: ``var_list`` holds something other than torch parameters.

        Example:
            >>> import kompile as kp
            >>> opt = kp.optimizers.AdamW(weight_decay=0.01)
            >>> opt.exclude_from_weight_decay(var_names=["bias", "scale"])
        """
        if self._live() is not None:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before "
                             "the optimizer state exists (before the first training batch).")
        ids = set()
        for v in var_list or ():
            if type(v).__name__ != "Parameter":
                raise TypeError("`var_list` takes torch parameters; name Flax NNX variables "
                                f"with `var_names`. Received {type(v).__name__}.")
            ids.add(id(v))
        self._exclude_ids = frozenset(ids)
        names = list(var_names or ())
        if any(not isinstance(n, str) for n in names):
            raise type_error("var_names", "a list of strings", var_names)
        self._exclude_pattern = re.compile("|".join(set(names))) if names else None

    _exclude_ids: frozenset = frozenset()
    _exclude_pattern: Any = None
    _decay_mask: Any = None  # per trained variable: True where weight decay applies

    def _set_variable_names(self, names: list[str], ids: list[int] | None = None) -> None:
        """The backend's trained variables (path names, and torch parameter ids), in the
        order the optimizer sees them: which ones weight decay applies to."""
        pattern = self._exclude_pattern
        ids = ids if ids is not None else [-1] * len(names)  # (-1: no object id)
        mask = [not ((pattern is not None and pattern.search(n) is not None)
                     or i in self._exclude_ids) for n, i in zip(names, ids)]
        self._decay_mask = None if all(mask) else mask

    def _bind(self, backend: Any) -> None:
        """Make ``learning_rate`` and ``iterations`` read the state of ``backend`` (the last
        model compiled with this optimizer: Keras's optimizer object is that model's)."""
        self._trainer = weakref.ref(backend)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_trainer", None)  # (a weak reference: not picklable, and not the copy's)
        return state

    def _live(self) -> Any:
        backend = self._trainer() if self._trainer is not None else None
        return backend if backend is not None and backend.has_optimizer_state else None

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "__init__" in cls.__dict__:  # unknown keywords: the valid names, the closest one
            cls.__init__ = keywords_checked(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def __repr__(self) -> str:
        names = ("learning_rate", *self._args,
                 *(k for k in COMMON if getattr(self, k) != COMMON_DEFAULTS[k]))
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in names)})"

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "learning_rate": rates.config(self._learning_rate),
                **{k: getattr(self, k) for k in (*self._args, *COMMON)}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = dict(config)
        name, lr = config.pop("name", None), config.get("learning_rate")
        if cls is Optimizer:
            cls = OPTIMIZERS.get(str(name))
        if isinstance(lr, str):
            config["learning_rate"] = get_custom(lr)
        return cls(**config)

    def _lr_at(self, step: int) -> float:
        lr = self._learning_rate
        return float(lr(step)) if callable(lr) else float(lr)

    def _update_step(self, update: Any) -> Any:
        """The step a schedule is evaluated at for the update numbered ``update`` (from
        0): Keras evaluates it at its count of batches, so with gradient accumulation
        over N batches update k uses the schedule at ``k * N + N - 1``."""
        n = self.gradient_accumulation_steps
        return update * n + n - 1 if n else update

    def _check_settable(self) -> None:
        if callable(self._learning_rate):
            raise TypeError(
                f"This optimizer was created with the schedule {self._learning_rate!r} as its "
                "`learning_rate`, so its learning rate cannot be set. Create it with a float "
                "`learning_rate` to change the learning rate during training.")

    # ------------------------------------------------------------------ optax
    def build_optax(self) -> Any:
        """The whole chain (clipping, weight decay, update rule), lr kept in the state;
        in ``optax.MultiSteps`` for gradient accumulation, then the weights' moving
        average (``use_ema``)."""
        inject = optax.inject_hyperparams(self._optax_chain, hyperparam_dtype=jnp.float32)
        lr = self._learning_rate
        if callable(lr) and self.gradient_accumulation_steps:
            schedule = lr
            lr = lambda k: schedule(self._update_step(k))  # noqa: E731
        tx = inject(learning_rate=lr)
        return averaging.wrap_optax(tx, self)

    def _optax_chain(self, learning_rate: Any) -> Any:
        clip = None
        if (self.clipnorm or 0) > 0:  # per variable: g * c / max(|g|, c)
            c = self.clipnorm
            each = lambda g: g * c / jnp.maximum(jnp.sqrt(jnp.sum(g * g)), c)
            clip = optax.stateless(lambda updates, params: jax.tree.map(each, updates))
        elif (self.global_clipnorm or 0) > 0:
            clip = optax.clip_by_global_norm(self.global_clipnorm)
        elif (self.clipvalue or 0) > 0:
            clip = optax.clip(self.clipvalue)
        tx = _chain(clip, self._optax_rule(learning_rate))
        if not self.weight_decay:
            return tx
        return _decay_first(tx, self.weight_decay, learning_rate, self._decay_mask)

    def _optax_rule(self, lr: Any) -> Any:
        scale_by, *args = self._optax
        return _chain(getattr(optax, scale_by)(*[getattr(self, a) for a in args]), _scale(lr))

    def optax_learning_rate(self, opt_state: Any) -> Any:
        """The learning rate of the next step (Keras's ``optimizer.learning_rate``)."""
        if callable(self._learning_rate):
            return self._learning_rate(self._update_step(self.optax_iterations(opt_state)))
        return _lr_node(opt_state).hyperparams["learning_rate"]

    def optax_set_learning_rate(self, opt_state: Any, value: Any) -> Any:
        """A new state with the learning rate set; same dtype and shape, so no retrace."""
        self._check_settable()
        node = _lr_node(opt_state)
        if "learning_rate" in (getattr(node, "hyperparams_states", None) or {}):
            raise TypeError("This optax optimizer takes its learning rate from a schedule; it "
                            "cannot be set.")
        new = jnp.asarray(value, node.hyperparams["learning_rate"].dtype)
        return _replace(opt_state, node, node._replace(
            hyperparams={**node.hyperparams, "learning_rate": new}))

    def optax_iterations(self, opt_state: Any) -> Any:
        count = _find(opt_state, lambda s: "count" in getattr(s, "_fields", ()))
        if count is None:
            raise ValueError("This optax optimizer state holds no step count.")
        return count.count

    # ------------------------------------------------------------------ torch
    def build_torch(self, params: Any) -> Any:
        """A torch.optim optimizer with the Keras numbers, kept by a pre-step hook."""
        if self._torch is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no torch.optim counterpart. Use the JAX backend, "
                "or pass a torch optimizer as `optimizer` (an instance, or "
                "kp.optimizers.NativeTorch(torch_optimizer_class, options)).")
        cls, keywords = self._torch
        torch = importlib.import_module("torch")
        cls = getattr(torch.optim, cls) if isinstance(cls, str) else cls()
        opt = cls(params, lr=self._lr_at(0), **{k: self._attrs(v) for k, v in keywords.items()})
        mask = self._decay_mask
        self._torch_no_decay = frozenset(
            id(p) for p, on in zip(params, mask) if not on) if mask is not None else frozenset()
        opt.register_step_pre_hook(self._torch_pre_step)
        return opt

    def _attrs(self, value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(self._attrs(v) for v in value)
        return getattr(self, value) if isinstance(value, str) else value

    def _torch_adjust(self, group: dict[str, Any], step: int) -> None:
        """Per-step param-group changes giving torch Keras's numbers (step counts from 1)."""

    def _torch_pre_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        # runs before every torch step: torch (no_grad) only where a tensor changes
        scheduled = callable(self._learning_rate)
        for group in opt.param_groups:
            step = group.get("iterations", 0)  # steps taken, as Keras counts
            if scheduled:
                group["lr"] = self._lr_at(self._update_step(step))
            lr = group["lr"]
            previous = group.get("keras_lr", lr)
            if self._torch_momentum and lr and previous != lr:  # keep lr inside momentum
                with importlib.import_module("torch").no_grad():
                    for p in group["params"]:
                        buffer = opt.state.get(p, {}).get("momentum_buffer")
                        if buffer is not None:
                            buffer.mul_(previous / lr)
            group["keras_lr"] = lr
            if self.weight_decay:
                skip = self._torch_no_decay
                with importlib.import_module("torch").no_grad():
                    for p in group["params"]:
                        if p.grad is not None and id(p) not in skip:
                            p.mul_(1 - lr * self.weight_decay)
            self._torch_adjust(group, step + 1)
            group["iterations"] = step + 1

    def torch_clip(self, params: Any) -> None:
        """Clip ``.grad`` in place as Keras does; call before ``step()``. (Written out rather
        than ``clip_grad_norm_``, which divides by ``norm + 1e-6``.)"""
        torch = importlib.import_module("torch")
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm
        if (self.clipnorm or 0) > 0:
            for g in grads:
                g.mul_(self.clipnorm / norm(g).clamp(min=self.clipnorm))
        elif (self.global_clipnorm or 0) > 0 and grads:
            total = norm(torch.stack([norm(g) for g in grads]))
            for g in grads:
                g.mul_((self.global_clipnorm / total.clamp(min=self.global_clipnorm)).to(g.dtype))
        elif (self.clipvalue or 0) > 0:
            for g in grads:
                g.clamp_(-self.clipvalue, self.clipvalue)  # type: ignore[operator]

    def torch_learning_rate(self, torch_opt: Any) -> float:
        group = torch_opt.param_groups[0]
        if callable(self._learning_rate):
            return self._lr_at(self._update_step(group.get("iterations", 0)))
        return float(group["lr"])

    def torch_set_learning_rate(self, torch_opt: Any, value: float) -> None:
        self._check_settable()
        for group in torch_opt.param_groups:
            group["lr"] = float(value)


# ---------------------------------------------------------------------- optax helpers
def _chain(*parts: Any) -> Any:
    given = [p for p in parts if p is not None]
    return given[0] if len(given) == 1 else optax.chain(*given)


def _scale(lr: Any) -> Any:
    """``-lr * g`` computed in float32 (the lr's dtype), returned in g's dtype."""
    step = lambda g: (g * -lr).astype(g.dtype)
    return optax.stateless(lambda updates, params: jax.tree.map(step, updates))


def _decay_first(tx: Any, weight_decay: float, lr: Any, mask: Any = None) -> Any:
    """Keras's decoupled weight decay: ``w -= w * wd * lr``, then the update sees that w.
    ``mask``: per leaf of a flat list of params, whether the decay applies (None: all)."""

    def decay(p: Any, on: bool = True) -> Any:
        return (p - p * weight_decay * lr).astype(p.dtype) if on else p

    def update(grads: Any, state: Any, params: Any = None) -> Any:
        if mask is None:
            decayed = jax.tree.map(decay, params)
        else:
            decayed = [decay(p, on) for p, on in zip(params, mask)]
        updates, state = tx.update(grads, state, decayed)
        return jax.tree.map(lambda u, d, p: u + (d - p), updates, decayed, params), state

    return optax.GradientTransformation(tx.init, update)


class _RuleState(NamedTuple):
    count: Any  # int32 steps taken
    scalar: Any  # one float shared by all variables (Nadam's momentum product), else None
    slots: Any  # per variable: a tuple of arrays


def _rule(init_leaf: Any, step_leaf: Any, advance: Any = None) -> Any:
    """An optax transformation from a per-variable rule written as Keras writes it:
    ``step_leaf(t, scalar, g, w, slots) -> (update, slots)``, ``t`` counted from 1."""

    def init(params: Any) -> _RuleState:
        # no scalar unless the rule advances one: a leaf less to pass at every step
        return _RuleState(jnp.zeros([], jnp.int32),
                          jnp.ones([], jnp.float32) if advance else None,
                          jax.tree.map(init_leaf, params))

    def update(grads: Any, state: _RuleState, params: Any = None) -> Any:
        t = (state.count + 1).astype(jnp.float32)
        scalar = advance(t, state.scalar) if advance else state.scalar
        flat = (treedef := jax.tree.structure(grads)).flatten_up_to
        ups, slots = [], []
        for g, w, old in zip(flat(grads), flat(grads if params is None else params),
                             flat(state.slots)):
            u, new = step_leaf(t, scalar, g, w, old)
            ups.append(u.astype(g.dtype))
            slots.append(tuple(n.astype(o.dtype) for n, o in zip(new, old)))
        return treedef.unflatten(ups), _RuleState(state.count + 1, scalar,
                                                  treedef.unflatten(slots))

    return optax.GradientTransformation(init, update)


def _zeros(n: int) -> Any:
    return lambda w: (jnp.zeros_like(w),) * n


def _lr_node(state: Any) -> Any:
    node = _find(state, lambda s: "learning_rate" in (getattr(s, "hyperparams", None) or {}))
    if node is None:
        raise ValueError("This optax optimizer keeps no learning rate in its state: build it "
                         "with optax.inject_hyperparams, e.g. optax.inject_hyperparams("
                         "optax.adam)(learning_rate=1e-3), to read or change it.")
    return node


def _check_training_options(common: dict[str, Any]) -> None:
    """Keras's checks of ``use_ema``, ``ema_momentum``, ``ema_overwrite_frequency`` and
    ``gradient_accumulation_steps``."""
    steps = common.get("gradient_accumulation_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                              or steps < 2):
        raise ValueError("`gradient_accumulation_steps` must be None or an integer >= 2; "
                         f"received gradient_accumulation_steps={steps!r}.")
    use_ema = common.get("use_ema", False)
    if not isinstance(use_ema, bool):
        raise type_error("use_ema", "True or False", use_ema)
    momentum = common.get("ema_momentum", 0.99)
    if isinstance(momentum, bool) or not isinstance(momentum, int | float) \
            or not 0 <= momentum <= 1:
        raise ValueError("`ema_momentum` must be a float in [0, 1]; received "
                         f"ema_momentum={momentum!r}.")
    freq = common.get("ema_overwrite_frequency")
    if freq is not None and (isinstance(freq, bool) or not isinstance(freq, int) or freq < 1):
        raise ValueError("`ema_overwrite_frequency` must be None or an integer >= 1; "
                         f"received ema_overwrite_frequency={freq!r}.")
