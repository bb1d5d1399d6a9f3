"""Building a Model's backend: which backend serves a module, its trained-variable filter,
and the seed of the kompile-owned ``nnx.Rngs``. Imports a framework only when the module
is one of its modules.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from .. import precision
from ..backends.base import Backend
from ..registry import type_error
from ..warn import KompileWarning


def backend_for(module: Any, policy: precision.Policy, output_names: Any,
                distribution: Any) -> Backend:
    """The backend that serves ``module``, from its type (no global switch)."""
    module_type = type(module)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(module, torch.nn.Module):
        from ..backends.torch_ddp import torch_backend  # DDP when a process group is initialised

        return torch_backend(module, policy, output_names, distribution)
    if any(c.__module__.startswith("flax.nnx") for c in module_type.__mro__):
        try:
            from ..backends.jax import JaxBackend
        except ImportError as err:  # flax without jax's other parts (optax)
            raise ImportError(f"The JAX backend needs jax, flax and optax ({err}). Install "
                              "them with: pip install 'kompile[jax]'") from err

        return JaxBackend(module, policy, output_names, distribution)
    raise TypeError(
        f"kp.Model(module) needs a flax.nnx.Module or a torch.nn.Module; received "
        f"{module_type.__name__} (from {module_type.__module__})."
    )


def set_trainable(backend: Any, trainable: Any) -> None:
    """``kp.Model(trainable=...)``: a Flax filter of the trained variables; refused on torch."""
    if backend.name == "torch":
        raise TypeError(
            "kp.Model(trainable=...) selects the trained variables of a Flax NNX module; a "
            "torch module says it itself: set requires_grad=False on the parameters to freeze "
            "(e.g. module.embeddings.requires_grad_(False)) and kompile trains only the others. "
            f"Received trainable={trainable!r}.")
    backend.set_trainable(trainable)


def resolve_seed(seed: Any, signature: Any) -> int | None:
    """The seed of the kompile-owned ``nnx.Rngs`` (None when the module takes no ``rngs``)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)
                             or not 0 <= seed < 2**32):
        raise type_error("seed", "None or an int in [0, 2**32)", seed)
    if not signature.takes_rngs:
        if seed is not None:
            warnings.warn(
                f"kp.Model(seed={seed}) seeds the nnx.Rngs kompile passes to an `rngs` "
                f"parameter, but {signature.describe()} takes none, so the seed is unused. Seed "
                "the module's own randomness (nnx.Rngs(seed) when you build it; torch: "
                "kp.utils.set_random_seed).", KompileWarning, stacklevel=3)
        return None
    from ..utils import draw_seed

    return int(seed) if seed is not None else draw_seed()
