"""Extra losses: kompile's form of Keras's ``add_loss`` (and layer regularisers).

Inside the module's call, ``kp.add_loss(self, value)`` records a scalar (a KL term, an
activity or weight penalty) to be added to the training objective of that step:

- **Flax NNX**: the value is sown as an ``AddedLoss`` variable (an ``nnx.Intermediate``:
  ``self.sow(kp.AddedLoss, name, value)`` is the same thing). kompile pops every sown
  intermediate after each call (``jax_state.after_call``), sums the ``AddedLoss`` values
  and adds them to the loss; nothing is carried between steps.
- **torch**: the value is appended to the module's ``_kompile_added_losses`` list; kompile
  collects the lists of all submodules after each forward pass, adds their sum to the
  loss, and empties them.

The sum joins the total loss of training and evaluation steps (the logged ``loss``), as
Keras's ``add_loss`` values do; it is not logged separately. Values must be scalars
(0-d, or of one element); outside kompile's steps they accumulate on the module (read
them yourself, or ignore them).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

TORCH_ATTRIBUTE = "_kompile_added_losses"


@functools.cache
def added_loss_type() -> type:
    """The Flax variable type of added losses (a subclass of ``nnx.Intermediate``)."""
    from flax import nnx

    class AddedLoss(nnx.Intermediate):
        """A loss term sown during the call: added to the step's loss by kompile."""

    AddedLoss.__module__ = "kompile"
    return AddedLoss


def add_loss(module: Any, value: Any, name: str = "added_loss") -> None:
    """Add ``value`` to the loss of the current training or evaluation step (Keras's
    ``self.add_loss``), from inside a Flax NNX or torch module's call.

    Args:
        module: The module recording the loss (``self`` in ``__call__`` / ``forward``): an
            ``flax.nnx.Module`` or a ``torch.nn.Module``.
        value: A scalar array (0-d, or one element) in the module's framework: a KL term,
            an activity regulariser (``1e-2 * jnp.sum(x)``), a weight penalty.
        name: The name it is recorded under (Flax: the sown attribute). Several values of
            one name are summed. Default ``"added_loss"``.

    Raises:
        TypeError: ``module`` is neither a Flax NNX nor a torch module.

    Example:
        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> import kompile as kp
        >>> class Regularised(nnx.Module):
        ...     def __init__(self):
        ...         self.dense = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
        ...     def __call__(self, x):
        ...         h = self.dense(x)
        ...         kp.add_loss(self, 1e-2 * jnp.sum(h ** 2))  # activity regularisation
        ...         return h
        >>> model = kp.Model(Regularised()).compile("sgd", "mse")
    """
    if hasattr(module, "sow"):  # a flax.nnx.Module
        with warnings.catch_warnings():  # Flax 0.12 deprecates sow outside nnx.capture;
            warnings.simplefilter("ignore", DeprecationWarning)  # kompile pops the value
            module.sow(added_loss_type(), name, value)
        return
    if hasattr(module, "register_buffer"):  # a torch.nn.Module
        module.__dict__.setdefault(TORCH_ATTRIBUTE, []).append(value)
        return
    raise TypeError(f"kp.add_loss: `module` must be the Flax NNX or torch module being called "
                    f"(self); received {type(module).__name__}.")


def _scalar(value: Any, where: str) -> Any:
    size = 1
    for d in getattr(value, "shape", ()):
        size *= d
    if size != 1:
        raise ValueError(f"kp.add_loss: the value added {where} has shape "
                         f"{tuple(value.shape)}; an added loss is a scalar (reduce it, "
                         "e.g. with .sum() or .mean()).")
    return value.reshape(()) if getattr(value, "shape", ()) != () else value


def jax_total(sown: Any) -> Any:
    """The sum of the ``AddedLoss`` values in ``sown`` (an nnx State of popped
    intermediates), or None when there are none."""
    import jax
    from flax import nnx

    kind = added_loss_type()
    total = None
    flat = nnx.to_flat_state(sown) if len(sown) else []
    for path, var in flat:
        if not isinstance(var, kind):
            continue
        for value in jax.tree.leaves(var.get_value()):  # type: ignore[attr-defined]
            value = _scalar(value, f"as {'/'.join(map(str, path))}").astype("float32")
            total = value if total is None else total + value
    return total


def torch_total(module: Any) -> Any:
    """The sum of the values the module and its submodules recorded in this forward pass
    (emptied), or None when there are none."""
    total = None
    for m in module.modules():
        values = m.__dict__.get(TORCH_ATTRIBUTE)
        if not values:
            continue
        m.__dict__[TORCH_ATTRIBUTE] = []
        for value in values:
            value = _scalar(value, f"by {type(m).__name__}").float()
            total = value if total is None else total + value
    return total
