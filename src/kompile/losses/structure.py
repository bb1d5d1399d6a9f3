"""A loss over a whole output structure (``StructureLoss``).

A loss function placed at the top of a multi-output model applies to every output on its
own, as in Keras. ``StructureLoss(fn)`` instead calls ``fn`` once with the structures:
all the outputs below the node it is placed at (the whole output when given as ``loss=``)
and their targets, ``None`` where an output has no target. A VAE's reconstruction and KL
terms fit in one function over ``(reconstruction, (mu, logvar))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import LossFunctionWrapper


class StructureLoss(LossFunctionWrapper):
    """``fn(y_true, y_pred)`` over the whole structure of the outputs at its node.

    ``y_pred`` is the model's output structure (dicts, tuples, lists as the module returns
    them) and ``y_true`` the targets in the same structure, ``None`` for outputs given no
    target. ``fn`` returns per-sample values (shape ``(batch,)``), reduced by
    ``reduction``. Placed at the top (``compile(loss=StructureLoss(fn))``) it receives
    everything; placed at a named node (``loss={"stats": StructureLoss(fn)}``) that node's
    subtree.

    Args:
        fn: ``fn(y_true, y_pred) -> per-sample values``, on the structures.
        reduction: As for ``Loss``. Default ``"sum_over_batch_size"``.
        name: The log name. Default ``None``: ``fn.__name__``.
        options: Keyword arguments passed to ``fn`` after ``y_true, y_pred``. Default
            ``None``.

    Example:
        >>> import kompile as kp
        >>> def vae_loss(y_true, y_pred):
        ...     recon, (mu, logvar) = y_pred
        ...     return ((recon - y_true[0]) ** 2).sum(-1) + (mu ** 2).sum(-1)
        >>> loss = kp.losses.StructureLoss(vae_loss)
        >>> loss.name
        'vae_loss'
    """

    whole_structure = True

    def __init__(self, fn: Callable[..., Any], reduction: str | None = "sum_over_batch_size",
                 name: str | None = None, options: dict[str, Any] | None = None) -> None:
        super().__init__(fn, reduction, name, options)
