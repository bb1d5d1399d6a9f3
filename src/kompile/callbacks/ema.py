"""SwapEMAWeights: evaluate (and, with ``swap_on_epoch``, checkpoint) with the weights'
moving average kept by an optimizer created with ``use_ema=True``, as Keras's callback."""

from __future__ import annotations

from typing import Any

from .base import Callback


class SwapEMAWeights(Callback):
    """Swap the weights with their moving average around evaluation (Keras's callback).

    Before evaluation (``evaluate``, and ``fit``'s validation) the model's weights are
    exchanged with the average the optimizer keeps (``use_ema=True``), and exchanged back
    after it, so the logged ``val_*`` values are those of the averaged weights. With
    ``swap_on_epoch=True`` the average is also in the model at the end of each epoch, for
    the callbacks after this one (``ModelCheckpoint`` saves the averaged weights), and
    swapped out again at the start of the next epoch. ``fit`` itself ends with the weights
    set to their average whenever the optimizer has ``use_ema=True``.

    Args:
        swap_on_epoch: Also swap at ``on_epoch_end`` / ``on_epoch_begin``. Default
            ``False``.

    Raises:
        ValueError: The model's optimizer keeps no average (``use_ema`` is False).

    Example:
        >>> import kompile as kp
        >>> cb = kp.callbacks.SwapEMAWeights(swap_on_epoch=True)
        >>> cb.swap_on_epoch
        True
    """

    def __init__(self, swap_on_epoch: bool = False) -> None:
        super().__init__()
        self.swap_on_epoch = bool(swap_on_epoch)
        self._ema_weights_in_model = False

    def _backend(self) -> Any:
        backend = self.model._backend
        if not backend.has_average():
            optimizer = getattr(self.model, "optimizer", None)
            raise ValueError("SwapEMAWeights must be used with an optimizer created with "
                             f"use_ema=True; received optimizer={optimizer!r}.")
        return backend

    def _swap(self) -> None:
        self._backend().swap_average()
        self._ema_weights_in_model = not self._ema_weights_in_model

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if self.swap_on_epoch and self._ema_weights_in_model:
            self._swap()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if not self.swap_on_epoch or self._ema_weights_in_model:
            return
        if epoch == self.params.get("epochs", 0) - 1:  # the last: both hold the average
            self._backend().finalize_average()
            self._ema_weights_in_model = True
        else:
            self._swap()

    def on_test_begin(self, logs: Any = None) -> None:
        if not self._ema_weights_in_model:
            self._swap()

    def on_test_end(self, logs: Any = None) -> None:
        if self._ema_weights_in_model:
            self._swap()


__all__ = ["SwapEMAWeights"]
