"""How kompile calls the user's module: one rule for both backends.

The rule, read once from the signature of the module's call method (Flax NNX:
``__call__``; torch: ``forward``):

1. **Data.** ``x`` is the first argument, in the structure the user gave. When ``x`` is a
   tuple or list of ``n >= 2`` inputs and the call method requires more than one
   positional argument, the inputs are its positional arguments, ``module(*x)``
   (``forward(self, image, mask)`` with ``x=(images, masks)``), as Keras passes a list of
   inputs to a multi-input model. When ``x`` is a
   dict and every key names a parameter of the call method (or some do and the method
   takes ``**kwargs``), the module is called with the dict as keywords, ``module(**x)``
   (Hugging Face models, ``forward(self, input_ids, attention_mask=None)``), as it is to a
   method that takes only ``**kwargs``. When no key names a parameter, the dict is passed
   whole as one argument. A dict in between (some
   keys name parameters, others do not) is an error naming both groups.
2. **Mode flags.** A parameter named ``training`` (Keras's convention) or ``train`` gets
   ``True`` in training steps and ``False`` in evaluation and prediction; ``deterministic``
   gets the opposite. Keys of a dict ``x`` with those names win.
3. **Randomness (Flax NNX).** A parameter named ``rngs`` gets an ``nnx.Rngs`` that kompile
   owns: seeded from ``kp.Model(seed=)`` or, without one, from ``kp.utils.set_random_seed``;
   split every step (part of the step state, so it advances inside jitted steps and
   ``steps_per_execution`` scans, in fit, evaluate and predict) and saved by
   ``BackupAndRestore``. On torch an ``rngs`` parameter is left to its default.
4. **Anything else** the method requires is an error before the first call, naming the
   parameter.

This module also owns the messages kompile adds around the module call: the first call's
failure re-raised with the module's name and the shapes and dtypes of ``x``, the torch
BatchNorm batch-of-one hint and the ``from_logits`` warning. It imports neither JAX nor torch.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import losses

# parameter name -> the value it gets in a training step (the opposite otherwise)
MODE_FLAGS = {"training": True, "train": True, "deterministic": False}
_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _required(p: inspect.Parameter) -> bool:
    return p.default is inspect.Parameter.empty and p.kind not in (
        inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@dataclass(frozen=True)
class CallRule:
    """How one module is called for one structure of ``x``: decided once, applied per step."""

    keywords: bool  # module(**x) rather than module(x)
    flags: tuple[tuple[str, bool], ...]  # (parameter, value in training)
    rngs: bool  # pass kompile's nnx.Rngs as rngs=
    positional: bool = False  # module(*x): a tuple/list x spread over positional parameters

    def call(self, module: Any, x: Any, training: bool, rngs: Any = None) -> Any:
        kwargs = {name: value if training else not value for name, value in self.flags}
        if self.rngs:
            kwargs["rngs"] = rngs
        if self.keywords:
            return module(**x, **kwargs)
        if self.positional:
            return module(*x, **kwargs)
        return module(x, **kwargs)


class ModuleSignature:
    """What the call method of ``module`` accepts; ``rule(x)`` decides how to call it.

    ``method`` is ``"__call__"`` (Flax NNX) or ``"forward"`` (torch); ``rngs_allowed`` says
    whether kompile can fill an ``rngs`` parameter (Flax NNX only).
    """

    def __init__(self, module: Any, method: str, rngs_allowed: bool):
        self.owner = f"{type(module).__name__}.{method}"
        fn = getattr(module, method, None)
        self.params: Any  # list[inspect.Parameter] | None
        try:
            self.params = list(inspect.signature(fn).parameters.values())  # type: ignore[arg-type]
        except (TypeError, ValueError):  # no Python signature: call module(x) only
            self.params = None
        params = self.params or []
        self.names = {p.name: p for p in params if p.kind in _KEYWORD}
        self.var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        self.var_pos = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
        self.takes_rngs = rngs_allowed and "rngs" in self.names

    def describe(self) -> str:
        if self.params is None:
            return self.owner
        return f"{self.owner}({', '.join(p.name for p in self.params)})"

    def rule(self, x: Any) -> CallRule:
        """The call for inputs shaped like ``x``, or a ``TypeError`` naming what is missing."""
        if self.params is None:
            return CallRule(False, (), False)
        keywords = self._keywords(x)
        given = set(x) if keywords else set()
        flags = tuple((n, v) for n, v in MODE_FLAGS.items() if n in self.names and n not in given)
        rngs = self.takes_rngs and "rngs" not in given
        filled = given | {n for n, _ in flags} | ({"rngs"} if rngs else set())
        params = self.params
        spread = self._spread(x, filled)
        if spread:  # x's entries take the first len(x) positional parameters
            taken = [p for p in params if p.kind in _POSITIONAL][:len(x)]
            params = [p for p in params if p not in taken]
        elif not keywords:  # x takes the first positional parameter
            first = next((p for p in params if p.kind in _POSITIONAL), None)
            if first is None and not self.var_pos:
                raise TypeError(
                    f"kompile calls the module as module(x), but {self.describe()} takes no "
                    "positional argument. Give it one parameter for the inputs, or pass `x` as "
                    "a dict keyed by its parameter names.")
            params = [p for p in params if p is not first]
        missing = [p.name for p in params if _required(p) and p.name not in filled]
        if missing:
            raise TypeError(self._missing_message(x, keywords, missing))
        return CallRule(keywords, flags, rngs, spread)

    def _spread(self, x: Any, filled: set[str]) -> bool:
        """Whether a tuple/list ``x`` is spread over positional parameters: the method needs
        more than one positional argument kompile does not fill, and ``x`` has an entry for
        each of them and no more than the method takes."""
        if not isinstance(x, tuple | list) or len(x) < 2:
            return False
        positional = [p for p in self.params if p.kind in _POSITIONAL]
        needed = [p for p in positional if _required(p) and p.name not in filled]
        if len(needed) < 2:
            return False  # one parameter takes the whole structure, as before
        if len(x) < len(needed) or (len(x) > len(positional) and not self.var_pos):
            raise TypeError(
                f"`x` holds {len(x)} inputs and {self.describe()} takes them as positional "
                f"arguments: it requires {len(needed)} ({', '.join(p.name for p in needed)})"
                f"{'' if self.var_pos else f' and takes at most {len(positional)}'}. Pass "
                "one entry per parameter, or a dict keyed by the parameter names.")
        return all(p.name not in filled for p in positional[:len(x)])

    def _keywords(self, x: Any) -> bool:
        if not isinstance(x, dict) or not x or not all(isinstance(k, str) for k in x):
            return False
        named = [k for k in x if k in self.names]
        unnamed = [k for k in x if k not in self.names]
        positional = self.var_pos or any(p.kind in _POSITIONAL for p in self.params)
        if not unnamed or (self.var_kw and (named or not positional)):
            return True  # (a method taking only **kwargs gets the dict as keywords too)
        if not named:
            return False
        hints = []
        for k in unnamed:
            close = difflib.get_close_matches(k, list(self.names), n=1)
            hints.append(f"'{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise TypeError(
            f"`x` is a dict whose keys {named} name parameters of {self.describe()} but "
            f"{', '.join(hints)} do not. kompile calls module(**x) when every key names a "
            "parameter, and module(x) with the whole dict when none does: rename the keys to "
            "the parameter names, or give the method one parameter that takes the whole dict "
            "under a name that is not a key.")

    def _missing_message(self, x: Any, keywords: bool, missing: list[str]) -> str:
        if keywords:
            how = f"module(**x) with the keys {list(x)}"
        else:
            how = "module(x) with `x` as the first argument"
        extra = ""
        if "rngs" in missing:
            extra = (" kompile fills `rngs` only for Flax NNX modules; give it a default."
                     if not self.takes_rngs else "")
        return (f"{self.describe()} requires {', '.join(repr(m) for m in missing)}, which "
                f"kompile cannot fill: it calls {how}, and fills only the parameters "
                f"'training'/'train'/'deterministic' (and 'rngs' for Flax NNX).{extra} Give "
                f"{'it' if len(missing) == 1 else 'them'} a default, or pass `x` as a dict "
                "keyed by the parameter names.")


# ---------------------------------------------------------------------- messages
def describe_inputs(x: Any) -> str:
    """``x``'s structure with the shape and dtype of every array, for error messages."""
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {describe_inputs(v)}" for k, v in x.items()) + "}"
    if isinstance(x, list | tuple):
        inner = ", ".join(describe_inputs(v) for v in x)
        return f"({inner},)" if isinstance(x, tuple) and len(x) == 1 else (
            f"({inner})" if isinstance(x, tuple) else f"[{inner}]")
    shape = getattr(x, "shape", None)
    if shape is None:
        return type(x).__name__
    dtype = str(getattr(x, "dtype", "?")).replace("torch.", "")
    return f"{tuple(shape)} {dtype}"


def first_call_error(signature: ModuleSignature, x: Any, err: BaseException) -> ValueError:
    """A failure of the call that reads the outputs (the first forward of a model), with
    the module's name and what ``x`` held."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return ValueError(
        f"Calling {signature.describe()} failed on a batch of `x` = "
        f"{describe_inputs(x)} (shapes include the batch axis). Check that the number of "
        f"features, the rank and the dtype of `x` are what the module expects. The module "
        f"raised {type(err).__name__}: {first}")


def is_batchnorm_batch_of_one(err: BaseException) -> bool:
    return "Expected more than 1 value per channel" in str(err)


def batchnorm_hint(batch_size: int) -> ValueError:
    return ValueError(
        f"A training batch of {batch_size} sample(s) reached a BatchNorm layer, which needs "
        "more than one value per channel in training mode. The last batch of an epoch holds "
        "the samples left over (number of samples % batch_size): pick a batch_size that "
        "leaves more than one, drop the extra sample, or pass drop_last=True to your "
        "DataLoader.")


def check_probabilities(objective: Any, flat_preds: list[Any]) -> None:
    """Warn when a probability-based crossentropy (``from_logits=False``) sees predictions
    outside [0, 1] in the first batch: the module most likely outputs logits."""
    for entry, pred in zip(objective.entries, flat_preds):
        for loss in _probability_losses(entry):
            p = np.asarray(pred, dtype=np.float64)
            p = p[np.isfinite(p)]
            if p.size == 0:
                continue
            lo, hi = float(p.min()), float(p.max())
            if lo < -1e-3 or hi > 1 + 1e-3:
                warnings.warn(
                    f"The loss {loss.name!r} of output '{entry.name or 'output'}' expects "
                    f"probabilities in [0, 1] (from_logits=False), but the module's first "
                    f"predictions range over [{lo:.4g}, {hi:.4g}]. If the module returns logits "
                    "(no softmax/sigmoid at the end, as Hugging Face, timm and torchvision "
                    "models do), pass a loss with from_logits=True, e.g. "
                    "kp.losses.SparseCategoricalCrossentropy(from_logits=True).", stacklevel=4)
                return


def _probability_losses(entry: Any) -> list[Any]:
    entry_losses = entry.loss if isinstance(entry.loss, list | tuple) else [entry.loss]
    return [loss for loss in entry_losses if loss is not None
            and losses.crossentropy_kind(loss) is not None
            and not getattr(loss, "options", {}).get("from_logits")]


def wants_probability_check(objective: Any) -> bool:
    """Whether some output has a crossentropy loss on probabilities (``from_logits=False``)."""
    return any(_probability_losses(e) for e in objective.entries)
