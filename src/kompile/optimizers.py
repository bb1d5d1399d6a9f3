"""Optimizers are a table: Keras names and defaults -> an optax chain or a torch.optim class.

Owns the backend-neutral specs (``Adam(learning_rate=1e-3)``) with Keras's argument names,
defaults and checks; their translation to optax and torch.optim; clipping; Keras's
decoupled weight decay (``w -= w * weight_decay * lr`` before each update); the learning
rate kept in the optimizer state (settable without a retrace); native optax/torch
optimizers used as given; the ``LossScaleOptimizer`` spec (the scaling is precision.py's
on JAX, ``torch.amp.GradScaler``'s on torch). The update math is optax's and torch's;
where Keras's differs from optax's, a short per-variable rule written as Keras writes it
(Adam's epsilon and AMSGrad, Nadam, Ftrl, Adafactor); where it differs from torch's, a
pre-step hook puts Keras's numbers in the param groups. Class docstrings say what remains
different. Importing this module imports neither JAX, optax nor torch.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Any, NamedTuple

from . import schedules
from .registry import Registry, check_kwargs, custom_name, get_custom, type_error

COMMON = ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay")


class _Lazy:
    """A module imported on first attribute access (kompile imports no backend eagerly)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


jax, jnp, optax = _Lazy("jax"), _Lazy("jax.numpy"), _Lazy("optax")


def _hyper(local_vars: dict[str, Any]) -> dict[str, Any]:
    """A subclass's own arguments, in signature order, from its ``locals()``."""
    skip = ("self", "learning_rate", "kwargs", "__class__")
    return {k: v for k, v in local_vars.items() if k not in skip}


class Optimizer:
    """Backend-neutral optimizer spec; ``build_optax()`` or ``build_torch(params)`` builds it.

    Subclasses declare ``_optax`` (an optax ``scale_by_*`` name and the attributes it takes;
    the learning rate is applied after it) or override ``_optax_rule``, and ``_torch`` (a
    torch.optim class name and its keywords as attribute names).
    """

    name = "optimizer"
    clipnorm = clipvalue = global_clipnorm = weight_decay = None
    learning_rate: Any = None
    _args: tuple[str, ...] = ()
    _optax: tuple[str, ...] = ()
    _torch: Any = None
    _torch_momentum = False  # torch keeps lr outside its momentum buffer, Keras inside

    def __init__(self, learning_rate: Any, kwargs: dict[str, Any], **hyper: Any):
        check_kwargs(type(self).__name__, kwargs, ("learning_rate", *hyper, *COMMON))
        if sum(kwargs.get(k) is not None for k in COMMON[:3]) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be "
                             "set; received " + ", ".join(f"{k}={kwargs.get(k)}"
                                                          for k in COMMON[:3]) + ".")
        self.learning_rate, self._args = _check_lr(learning_rate), tuple(hyper)
        for key, value in {**hyper, **kwargs}.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        config = {k: v for k, v in self.get_config().items() if k != "name"}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in config.items())})"

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "learning_rate": _lr_config(self.learning_rate),
                **{k: getattr(self, k) for k in (*self._args, *COMMON)}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = dict(config)
        name, lr = config.pop("name", None), config.get("learning_rate")
        cls = OPTIMIZERS.get(name) if cls is Optimizer else cls
        if isinstance(lr, str):
            config["learning_rate"] = get_custom(lr)
        return cls(**config)

    def _lr_at(self, step: int) -> float:
        lr = self.learning_rate
        return float(lr(step)) if callable(lr) else float(lr)

    def _check_settable(self) -> None:
        if callable(self.learning_rate):
            raise TypeError(
                f"This optimizer was created with the schedule {self.learning_rate!r} as its "
                "`learning_rate`, so its learning rate cannot be set. Create it with a float "
                "`learning_rate` to change the learning rate during training.")

    # ------------------------------------------------------------------ optax
    def build_optax(self) -> Any:
        """The whole chain (clipping, weight decay, update rule), lr kept in the state."""
        inject = optax.inject_hyperparams(self._optax_chain, hyperparam_dtype=jnp.float32)
        return inject(learning_rate=self.learning_rate)

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
        return _decay_first(tx, self.weight_decay, learning_rate) if self.weight_decay else tx

    def _optax_rule(self, lr: Any) -> Any:
        scale_by, *args = self._optax
        return _chain(getattr(optax, scale_by)(*[getattr(self, a) for a in args]), _scale(lr))

    def optax_learning_rate(self, opt_state: Any) -> Any:
        """The learning rate of the next step (Keras's ``optimizer.learning_rate``)."""
        if callable(self.learning_rate):
            return self.learning_rate(self.optax_iterations(opt_state))
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
                "kp.optimizers.NativeTorch(torch_optimizer_class, **kwargs)).")
        cls, keywords = self._torch
        torch = importlib.import_module("torch")
        cls = getattr(torch.optim, cls) if isinstance(cls, str) else cls()
        opt = cls(params, lr=self._lr_at(0), **{k: self._attrs(v) for k, v in keywords.items()})
        opt.register_step_pre_hook(self._torch_pre_step)
        return opt

    def _attrs(self, value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(self._attrs(v) for v in value)
        return getattr(self, value) if isinstance(value, str) else value

    def _torch_adjust(self, group: dict[str, Any], step: int) -> None:
        """Per-step param-group changes giving torch Keras's numbers (step counts from 1)."""

    def _torch_pre_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        torch = importlib.import_module("torch")
        with torch.no_grad():
            for group in opt.param_groups:
                step = group.setdefault("iterations", 0)  # steps taken, as Keras counts
                if callable(self.learning_rate):
                    group["lr"] = self._lr_at(step)
                lr, previous = group["lr"], group.get("keras_lr", group["lr"])
                if self._torch_momentum and lr and previous != lr:  # keep lr inside momentum
                    for p in group["params"]:
                        buffer = opt.state.get(p, {}).get("momentum_buffer")
                        if buffer is not None:
                            buffer.mul_(previous / lr)
                group["keras_lr"] = lr
                for p in group["params"] if self.weight_decay else ():
                    if p.grad is not None:
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
                g.clamp_(-self.clipvalue, self.clipvalue)

    def torch_learning_rate(self, torch_opt: Any) -> float:
        group = torch_opt.param_groups[0]
        if callable(self.learning_rate):
            return self._lr_at(group.get("iterations", 0))
        return float(group["lr"])

    def torch_set_learning_rate(self, torch_opt: Any, value: float) -> None:
        self._check_settable()
        for group in torch_opt.param_groups:
            group["lr"] = float(value)

    def torch_schedule_step(self, torch_opt: Any, step: int) -> None:
        """Set the groups' lr from the schedule for ``step`` (no-op for a constant lr). The
        pre-step hook does the same from its own count of steps taken."""
        if callable(self.learning_rate):
            for group in torch_opt.param_groups:
                group["lr"] = self._lr_at(step)


# ---------------------------------------------------------------------- optax helpers
def _chain(*parts: Any) -> Any:
    parts = [p for p in parts if p is not None]
    return parts[0] if len(parts) == 1 else optax.chain(*parts)


def _scale(lr: Any) -> Any:
    """``-lr * g`` computed in float32 (the lr's dtype), returned in g's dtype."""
    step = lambda g: (g * -lr).astype(g.dtype)
    return optax.stateless(lambda updates, params: jax.tree.map(step, updates))


def _decay_first(tx: Any, weight_decay: float, lr: Any) -> Any:
    """Keras's decoupled weight decay: ``w -= w * wd * lr``, then the update sees that w."""

    def update(grads: Any, state: Any, params: Any = None) -> Any:
        decayed = jax.tree.map(lambda p: (p - p * weight_decay * lr).astype(p.dtype), params)
        updates, state = tx.update(grads, state, decayed)
        return jax.tree.map(lambda u, d, p: u + (d - p), updates, decayed, params), state

    return optax.GradientTransformation(tx.init, update)


class _RuleState(NamedTuple):
    count: Any  # int32 steps taken
    scalar: Any  # one float shared by all variables (Nadam's momentum product)
    slots: Any  # per variable: a tuple of arrays


def _rule(init_leaf: Any, step_leaf: Any, advance: Any = None) -> Any:
    """An optax transformation from a per-variable rule written as Keras writes it:
    ``step_leaf(t, scalar, g, w, slots) -> (update, slots)``, ``t`` counted from 1."""

    def init(params: Any) -> _RuleState:
        return _RuleState(jnp.zeros([], jnp.int32), jnp.ones([], jnp.float32),
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


def _find(state: Any, test: Any) -> Any:
    """The first node of a (nested tuple) optax state that passes ``test``, or None."""
    if test(state):
        return state
    for child in state if isinstance(state, tuple) else ():
        if (found := _find(child, test)) is not None:
            return found
    return None


def _lr_node(state: Any) -> Any:
    node = _find(state, lambda s: "learning_rate" in (getattr(s, "hyperparams", None) or {}))
    if node is None:
        raise ValueError("This optax optimizer keeps no learning rate in its state: build it "
                         "with optax.inject_hyperparams, e.g. optax.inject_hyperparams("
                         "optax.adam)(learning_rate=1e-3), to read or change it.")
    return node


def _replace(state: Any, node: Any, new: Any) -> Any:
    if state is node:
        return new
    if not isinstance(state, tuple):
        return state
    items = [_replace(child, node, new) for child in state]
    return type(state)(*items) if hasattr(state, "_fields") else tuple(items)


def _check_lr(lr: Any) -> Any:
    if isinstance(lr, dict) and set(lr) == {"class_name", "config"}:
        return schedules.deserialize(lr)
    if callable(lr) and not isinstance(lr, type):
        return lr
    if isinstance(lr, bool) or not hasattr(lr, "__float__"):
        raise type_error("learning_rate", "a float, a kp.optimizers.schedules schedule or a "
                         "callable step -> learning rate", lr)
    return float(lr)


def _lr_config(lr: Any) -> Any:
    if isinstance(lr, schedules.LearningRateSchedule):
        return schedules.serialize(lr)
    if callable(lr) and custom_name(lr) is None:
        raise ValueError(f"Cannot serialise the learning-rate function {lr!r}: register it "
                         "with kp.register(fn), or use a kp.optimizers.schedules class.")
    return custom_name(lr) if callable(lr) else lr


# ---------------------------------------------------------------------- the table
class SGD(Optimizer):
    """SGD with Keras's momentum ``m = momentum * m - lr * g`` (lr inside m). torch: exact;
    when the lr changes the hook rescales torch's buffer so that lr stays inside."""

    name, _torch_momentum = "sgd", True
    _torch = ("SGD", {"momentum": "momentum", "nesterov": "nesterov"})

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, **kwargs: Any):
        if not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float in [0, 1]; received {momentum!r}.")
        super().__init__(learning_rate, kwargs, **_hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        trace = optax.trace(self.momentum, self.nesterov) if self.momentum else None
        return _chain(_scale(lr), trace)


class RMSprop(Optimizer):
    """RMSprop, epsilon inside the square root. torch.optim.RMSprop adds eps outside it
    (``g / (sqrt(v) + eps)``, Keras ``g / sqrt(v + eps)``): the same when v >> epsilon, but
    with epsilon=1e-7 a first step on |g| = 1e-3 is 3.2x larger on torch (-lr * 3.16
    against -lr * 0.95), on |g| = 1e-2 it is 1.05x, on |g| = 1 equal to 1e-6."""

    name, _torch_momentum = "rmsprop", True
    _torch = ("RMSprop", {"alpha": "rho", "eps": "epsilon", "momentum": "momentum",
                          "centered": "centered"})

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kwargs: Any):
        super().__init__(learning_rate, kwargs, **_hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        scale = optax.scale_by_stddev if self.centered else optax.scale_by_rms
        return _chain(scale(self.rho, self.epsilon), _scale(lr),
                      optax.trace(self.momentum) if self.momentum > 0 else None)


class Adam(Optimizer):
    """Adam with Keras's epsilon, ``lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``,
    and AMSGrad on the uncorrected v. torch: exact (the hook sets torch's eps to
    ``epsilon / sqrt(1 - beta_2^t)`` before each step)."""

    name = "adam"
    _torch = ("Adam", {"betas": ("beta_1", "beta_2"), "eps": "epsilon", "amsgrad": "amsgrad"})

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kwargs: Any):
        super().__init__(learning_rate, kwargs, **_hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        b1, b2, eps, ams = self.beta_1, self.beta_2, self.epsilon, self.amsgrad

        def step(t: Any, _: Any, g: Any, w: Any, slots: Any) -> Any:
            m, v = slots[0] + (g - slots[0]) * (1 - b1), slots[1] + (g * g - slots[1]) * (1 - b2)
            top = jnp.maximum(slots[2], v) if ams else v
            alpha = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
            return -(m * alpha) / (jnp.sqrt(top) + eps), (m, v, top)[: len(slots)]

        return _rule(_zeros(3 if ams else 2), step)

    def _torch_adjust(self, group: dict[str, Any], step: int) -> None:
        group["eps"] = self.epsilon / (1 - self.beta_2**step) ** 0.5


class AdamW(Adam):
    """Adam with Keras's decoupled weight decay (default 0.004). torch: exact."""

    name = "adamw"

    def __init__(self, learning_rate: Any = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, **kwargs: Any):
        if weight_decay is None:
            raise ValueError("AdamW: `weight_decay` must be a float; received None.")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, **kwargs)


class Adagrad(Optimizer):
    """Adagrad, ``g / sqrt(acc + eps)``. torch.optim.Adagrad divides by ``sqrt(acc) + eps``:
    with the accumulator starting at 0.1 the two differ by less than 1e-6 relative."""

    name = "adagrad"
    _optax = ("scale_by_rss", "initial_accumulator_value", "epsilon")
    _torch = ("Adagrad", {"initial_accumulator_value": "initial_accumulator_value",
                          "eps": "epsilon"})

    def __init__(self, learning_rate: Any = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **kwargs: Any):
        super().__init__(learning_rate, kwargs, **_hyper(locals()))


class Adadelta(Optimizer):
    """Adadelta (Keras's learning rate 0.001, not the paper's 1.0). torch: exact."""

    name = "adadelta"
    _optax = ("scale_by_adadelta", "rho", "epsilon")
    _torch = ("Adadelta", {"rho": "rho", "eps": "epsilon"})

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-7,
                 **kwargs: Any):
        super().__init__(learning_rate, kwargs, **_hyper(locals()))


class Adamax(Optimizer):
    """Adamax. optax and torch keep ``u = max(b2 * u, |g| + eps)`` where Keras keeps
    ``max(b2 * u, |g|)`` and divides by ``u + eps``: equal at the first step, later apart
    by at most epsilon in the denominator (1e-7 relative when |g| ~ 1)."""

    name = "adamax"
    _optax = ("scale_by_adamax", "beta_1", "beta_2", "epsilon")
    _torch = ("Adamax", {"betas": ("beta_1", "beta_2"), "eps": "epsilon"})

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs: Any):
        super().__init__(learning_rate, kwargs, **_hyper(locals()))


class Nadam(Optimizer):
    """Nadam with Keras's momentum schedule ``u_t = beta_1 * (1 - 0.5 * 0.96^t)`` (optax's
    nadam has none). torch: exact (``torch.optim.NAdam(momentum_decay=1)``)."""

    name = "nadam"
    _torch = ("NAdam", {"betas": ("beta_1", "beta_2"), "eps": "epsilon", "momentum_decay": 1.0})

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs: Any):
        super().__init__(learning_rate, kwargs, **_hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        u = lambda t: b1 * (1 - 0.5 * 0.96**t)

        def step(t: Any, product: Any, g: Any, w: Any, slots: Any) -> Any:
            m, v = slots[0] + (g - slots[0]) * (1 - b1), slots[1] + (g * g - slots[1]) * (1 - b2)
            m_hat = u(t + 1) * m / (1 - product * u(t + 1)) + (1 - u(t)) * g / (1 - product)
            return -(m_hat * lr) / (jnp.sqrt(v / (1 - b2**t)) + eps), (m, v)

        return _rule(_zeros(2), step, advance=lambda t, product: product * u(t))


class Lion(Optimizer):
    """Lion. torch.optim has none: a small torch optimizer with Keras's rule (exact)."""

    name = "lion"
    _optax = ("scale_by_lion", "beta_1", "beta_2")
    _torch = (lambda: _torch_lion(), {"betas": ("beta_1", "beta_2")})

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.99,
                 **kwargs: Any):
        if not 0 < beta_1 <= 1:
            raise ValueError("Lion: `beta_1` must be in (0, 1], else Lion degenerates to "
                             f"SignSGD; received beta_1={beta_1!r}.")
        super().__init__(learning_rate, kwargs, **_hyper(locals()))


class Ftrl(Optimizer):
    """FTRL-proximal as Keras writes it. No torch counterpart (NotImplementedError)."""

    name = "ftrl"

    def __init__(self, learning_rate: Any = 0.001, learning_rate_power: float = -0.5,
                 initial_accumulator_value: float = 0.1, l1_regularization_strength: float = 0.0,
                 l2_regularization_strength: float = 0.0,
                 l2_shrinkage_regularization_strength: float = 0.0, beta: float = 0.0,
                 **kwargs: Any):
        hyper = _hyper(locals())
        for key, value in hyper.items():
            if key != "beta" and (value > 0 if key == "learning_rate_power" else value < 0):
                raise ValueError(f"Ftrl: `{key}` must be {'<=' if value > 0 else '>='} 0; "
                                 f"received {key}={value!r}.")
        super().__init__(learning_rate, kwargs, **hyper)

    def _optax_rule(self, lr: Any) -> Any:
        power, l1 = -self.learning_rate_power, self.l1_regularization_strength
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        shrink, init = self.l2_shrinkage_regularization_strength, self.initial_accumulator_value

        def step(t: Any, _: Any, g: Any, w: Any, slots: Any) -> Any:
            acc, linear = slots
            new_acc = acc + g * g
            linear = linear + (g + 2 * shrink * w) - (new_acc**power - acc**power) / lr * w
            quadratic = new_acc**power / lr + 2 * l2
            return (jnp.clip(linear, -l1, l1) - linear) / quadratic - w, (new_acc, linear)

        return _rule(lambda w: (jnp.full_like(w, init), jnp.zeros_like(w)), step)


class Adafactor(Optimizer):
    """Adafactor as Keras writes it (the last two axes factored for rank >= 2; step size
    ``min(lr, 1/sqrt(t))`` whatever ``relative_step``). torch.optim.Adafactor has the same
    rule but floors the second moment at float32 eps^2 = 1.4e-14 instead of adding
    epsilon_1 = 1e-30 to g^2: different only where |g| < 1.2e-7."""

    name = "adafactor"
    _torch = ("Adafactor", {"beta2_decay": "beta_2_decay", "eps": (None, "epsilon_2"),
                            "d": "clip_threshold"})

    def __init__(self, learning_rate: Any = 0.001, beta_2_decay: float = -0.8,
                 epsilon_1: float = 1e-30, epsilon_2: float = 1e-3, clip_threshold: float = 1.0,
                 relative_step: bool = True, **kwargs: Any):
        super().__init__(learning_rate, kwargs, **_hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        decay, eps1, eps2 = self.beta_2_decay, self.epsilon_1, self.epsilon_2
        rms, clip = (lambda x: jnp.sqrt(jnp.mean(x * x))), self.clip_threshold

        def init(w: Any) -> Any:
            if w.ndim < 2:
                return (jnp.zeros_like(w),)
            return jnp.zeros(w.shape[:-1], w.dtype), jnp.zeros(w.shape[:-2] + w.shape[-1:],
                                                               w.dtype)

        def step(t: Any, _: Any, g: Any, w: Any, slots: Any) -> Any:
            alpha = jnp.maximum(eps2, rms(w)) * jnp.minimum(lr, 1 / jnp.sqrt(t))
            g2, b = g * g + eps1, 1 - t**decay
            if w.ndim < 2:
                slots = v = (b * slots[0] + (1 - b) * g2,)
                v = v[0]
            else:
                r = b * slots[0] + (1 - b) * jnp.mean(g2, axis=-1)
                slots = (r, b * slots[1] + (1 - b) * jnp.mean(g2, axis=-2))
                v = (r / jnp.mean(r, axis=-1, keepdims=True))[..., None] * slots[1][..., None, :]
            u = g / jnp.sqrt(v)
            return -alpha * (u / jnp.maximum(1.0, rms(u) / clip)), slots

        return _rule(init, step)


@functools.cache
def _torch_lion() -> Any:
    torch = importlib.import_module("torch")

    class Lion(torch.optim.Optimizer):
        """Keras's Lion: ``w -= lr * sign(b1 * m + (1 - b1) * g)``, then m's moving average."""

        def __init__(self, params: Any, lr: float = 1e-3, betas: tuple = (0.9, 0.99)):
            super().__init__(params, {"lr": lr, "betas": betas})

        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            with torch.enable_grad():
                loss = closure() if closure is not None else None
            for group in self.param_groups:
                (b1, b2), lr = group["betas"], group["lr"]
                for p in (p for p in group["params"] if p.grad is not None):
                    m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                    p.add_(torch.sign(m * b1 + p.grad * (1 - b1)), alpha=-lr)
                    m.mul_(b2).add_(p.grad, alpha=1 - b2)
            return loss

    return Lion


# ---------------------------------------------------------------------- native and wrapped
_NATIVE = ("Cannot serialise a native {}: a compile config holds only kompile optimizers. "
           "Pass a name ('adam') or a kp.optimizers object (kp.optimizers.Adam(1e-3)) instead.")


class NativeOptax(Optimizer):
    """A user's ``optax.GradientTransformation``, used as is. Its learning rate can be read
    and set only when it sits in the state (``optax.inject_hyperparams``)."""

    name = "optax"

    def __init__(self, tx: Any):
        self.tx = tx

    def build_optax(self) -> Any:
        return self.tx

    def build_torch(self, params: Any) -> Any:
        raise TypeError("An optax optimizer cannot train a torch module: pass a torch.optim "
                        "optimizer, a kp.optimizers object or a name such as 'adam'.")

    def get_config(self) -> dict[str, Any]:
        raise ValueError(_NATIVE.format("optax GradientTransformation"))


class NativeTorch(Optimizer):
    """A user's ``torch.optim`` optimizer: an instance, used as is (it already holds the
    module's parameters), or a class, instantiated with the parameters and ``kwargs``."""

    def __init__(self, optimizer: Any, **kwargs: Any):
        is_class = isinstance(optimizer, type)
        if kwargs and not is_class:
            raise TypeError("NativeTorch takes keyword arguments only with an optimizer class; "
                            f"received an instance of {type(optimizer).__name__}.")
        self.optimizer, self.kwargs = optimizer, kwargs
        self.name = (optimizer if is_class else type(optimizer)).__name__.lower()
        self.learning_rate = kwargs.get("lr") if is_class else optimizer.param_groups[0]["lr"]

    def build_torch(self, params: Any) -> Any:
        if isinstance(self.optimizer, type):
            return self.optimizer(params, **self.kwargs)
        held = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        if not any(id(p) in held for p in params):
            raise ValueError("The torch optimizer given holds none of this model's parameters: "
                             "create it with module.parameters(), or pass its class, e.g. "
                             "kp.optimizers.NativeTorch(torch.optim.Adam, lr=1e-3).")
        return self.optimizer

    def build_optax(self) -> Any:
        raise TypeError("A torch optimizer cannot train a Flax module: pass an optax "
                        "GradientTransformation, a kp.optimizers object or a name ('adam').")

    def get_config(self) -> dict[str, Any]:
        raise ValueError(_NATIVE.format("torch.optim optimizer"))


class LossScaleOptimizer:
    """Dynamic loss scaling around an optimizer (SPEC 5): a non-finite step is skipped and
    halves the scale; ``dynamic_growth_steps`` finite steps in a row double it. The JAX
    backend keeps the scale in its step state; torch uses ``torch_grad_scaler()``. Other
    attributes (``learning_rate``, ``build_optax``, ``torch_clip``, ...) are the inner's."""

    is_loss_scale = True
    name = "loss_scale_optimizer"

    def __init__(self, inner_optimizer: Any, initial_scale: float = 2.0**15,
                 dynamic_growth_steps: int = 2000):
        self.inner = get(inner_optimizer)
        if getattr(self.inner, "is_loss_scale", False):
            raise ValueError("LossScaleOptimizer cannot wrap another LossScaleOptimizer.")
        self.initial_scale = float(initial_scale)
        self.dynamic_growth_steps = int(dynamic_growth_steps)
        self._reader: Any = None  # set by a backend; reads the live scale (a host sync)

    inner_optimizer = property(lambda self: self.inner)

    @property
    def dynamic_scale(self) -> float:
        return self._reader() if self._reader is not None else self.initial_scale

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def torch_grad_scaler(self, device: str = "cuda") -> Any:
        torch = importlib.import_module("torch")
        return torch.amp.GradScaler(device, init_scale=self.initial_scale, growth_factor=2.0,
                                    backoff_factor=0.5, growth_interval=self.dynamic_growth_steps)

    def get_config(self) -> dict[str, Any]:
        return {"inner_optimizer": serialize(self.inner), "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LossScaleOptimizer:
        config = dict(config)
        return cls(deserialize(config.pop("inner_optimizer")), **config)


# ---------------------------------------------------------------------- lookup
OPTIMIZERS = Registry("optimizer", case_insensitive=True)
CLASSES: dict[str, Any] = {c.__name__: c for c in (RMSprop, SGD, Adam, AdamW, Adagrad, Adadelta,
                                                   Adamax, Nadam, Lion, Ftrl, Adafactor)}
for _cls in CLASSES.values():
    OPTIMIZERS.add(_cls.name, _cls)
CLASSES["LossScaleOptimizer"] = LossScaleOptimizer


def _is_torch_optimizer(obj: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch object exists only if torch was imported
    base = torch.optim.Optimizer if torch is not None else None
    return base is not None and (isinstance(obj, base) or (isinstance(obj, type)
                                                            and issubclass(obj, base)))


def get(identifier: Any) -> Any:
    """An optimizer spec from a name, a kompile optimizer class or instance, an optax
    ``GradientTransformation`` or a torch.optim optimizer (instance or class)."""
    if isinstance(identifier, Optimizer | LossScaleOptimizer):
        return identifier
    if isinstance(identifier, str):
        return OPTIMIZERS.get(identifier)()
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, dict) and set(identifier) == {"class_name", "config"}:
        return deserialize(identifier)
    optax_module = sys.modules.get("optax")
    if optax_module is not None and isinstance(identifier, optax_module.GradientTransformation):
        return NativeOptax(identifier)
    if _is_torch_optimizer(identifier):
        return NativeTorch(identifier)
    raise type_error("optimizer", "an optimizer name (" + ", ".join(OPTIMIZERS.names())
                     + "), a kp.optimizers object, an optax GradientTransformation or a "
                     "torch.optim optimizer", identifier)


def serialize(optimizer: Any) -> dict[str, Any]:
    """``{"class_name", "config"}``; native optax and torch optimizers raise ValueError."""
    optimizer = get(optimizer)
    name = type(optimizer).__name__
    if CLASSES.get(name) is not type(optimizer) and not isinstance(
            optimizer, NativeOptax | NativeTorch):
        name = custom_name(type(optimizer))
        if name is None:
            raise ValueError(f"Cannot serialise the optimizer {optimizer!r}: its class is not "
                             "registered. Register it with kp.register(cls) first.")
    return {"class_name": name, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any]) -> Any:
    name = config["class_name"]
    cls = CLASSES.get(name) or (OPTIMIZERS.get(name) if name in OPTIMIZERS
                                else get_custom(name))
    return cls.from_config(dict(config["config"]))
