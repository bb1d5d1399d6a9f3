"""Small user-facing utilities: ``set_random_seed`` and ``to_categorical``.

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

import numbers
import random
import sys
from typing import Any

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


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """Class indices to one-hot rows, as ``keras.utils.to_categorical``.

    Args:
        x: class indices, any array-like (a list, a NumPy array, a torch tensor or a JAX
            array) of whole numbers from 0 to ``num_classes - 1``. A trailing axis of size 1
            (shape ``(N, 1)``) is dropped first, as Keras does.
        num_classes: the number of classes (the size of the new last axis); ``None`` infers
            ``max(x) + 1``.

    Returns:
        A float64 NumPy array of shape ``x.shape + (num_classes,)`` (Keras's dtype; kompile
        feeds it as float32) with a 1 at each label's position and 0 elsewhere.

    Raises:
        ValueError: a label is negative, has a fractional part, or is >= ``num_classes``
            (Keras wraps negative labels around and truncates fractions silently).
        TypeError: ``num_classes`` is not an int.
    """
    if num_classes is not None and (isinstance(num_classes, bool)
                                    or not isinstance(num_classes, numbers.Integral)):
        raise TypeError(f"`num_classes` must be an int or None; received {num_classes!r} (of "
                        f"type {type(num_classes).__name__}).")
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    labels = np.asarray(x)
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"`x` must hold class indices (numbers); received dtype {labels.dtype}.")
    if labels.dtype.kind == "f" and labels.size and not np.all(labels == np.floor(labels)):
        bad = labels[labels != np.floor(labels)].flat[0].item()
        raise ValueError(f"`x` must hold whole class indices; received {bad!r}.")
    labels = labels.astype(np.int64)
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:  # (N, 1) -> (N,), as Keras does
        shape = shape[:-1]
    labels = labels.reshape(-1)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    num_classes = int(num_classes)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(f"`x` holds the label {int(bad)}, outside [0, {num_classes}) for "
                         f"num_classes={num_classes}.")
    out = np.zeros((labels.size, num_classes))
    out[np.arange(labels.size), labels] = 1.0
    return out.reshape(shape + (num_classes,))


__all__ = ["set_random_seed", "to_categorical"]
