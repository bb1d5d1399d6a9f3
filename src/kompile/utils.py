"""Small user-facing utilities: ``set_random_seed``.

What a seed covers in kompile:

- Python's ``random`` module;
- NumPy's global RNG, which the training loop uses to shuffle the data each epoch
  (``np.random.permutation``), so a seed fixes the data order;
- torch's global RNG (CPU and every CUDA device) when torch is already imported: torch
  modules draw their initial weights and dropout masks from it.

- the seed of the ``nnx.Rngs`` kompile passes to a Flax NNX module whose ``__call__`` takes
  ``rngs`` (for each ``kp.Model`` created afterwards without its own ``seed=``).

JAX has no global RNG: a Flax NNX module carries its own random state in the
``nnx.Rngs`` it was built with (initial weights, dropout keys), and kompile trains that
state as part of the module. Seed JAX by building the module with a fixed seed,
``MyModule(rngs=nnx.Rngs(seed))``, after calling ``set_random_seed(seed)``.

Seed after importing JAX/Flax: importing JAX draws from NumPy's global RNG, so a seed set
before the first ``import jax`` does not fix the data order of the first ``fit``.
"""

from __future__ import annotations

import random
import sys

import numpy as np


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy and (if imported) torch, so that ``fit`` is reproducible.

    Two runs that call ``set_random_seed(s)`` and then build the same module (Flax modules
    with a fixed ``nnx.Rngs`` seed) and call ``fit`` with the same arguments end with
    identical weights on the same hardware.

    Args:
        seed: An int in ``[0, 2**32)``.

    Raises:
        TypeError: ``seed`` is not an int.
        ValueError: ``seed`` is out of range.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> kp.utils.set_random_seed(0)
        >>> a = np.random.rand()
        >>> kp.utils.set_random_seed(0)
        >>> a == np.random.rand()
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"`seed` must be an int; received {seed!r} (of type "
                        f"{type(seed).__name__}).")
    if not 0 <= seed < 2**32:
        raise ValueError(f"`seed` must be in [0, 2**32); received {seed}.")
    seed = int(seed)
    global _seeds
    _seeds = np.random.default_rng(seed)  # kompile's own stream: the data order is untouched
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)  # seeds the CPU generator and every CUDA device


_seeds: np.random.Generator | None = None


def draw_seed() -> int:
    """A seed for a new kompile-owned RNG: the next one from ``set_random_seed``'s stream,
    or a fresh random one when no seed was set."""
    global _seeds
    if _seeds is None:
        _seeds = np.random.default_rng()
    return int(_seeds.integers(0, 2**31 - 1))


__all__ = ["set_random_seed"]
