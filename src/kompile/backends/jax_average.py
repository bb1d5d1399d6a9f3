"""The weights' moving average (``use_ema``) on the JAX backend: swap it with the weights
(``kp.callbacks.SwapEMAWeights``) or set the weights to it (the end of ``fit``, Keras's
``finalize_variable_values``). The average lives in the optax state
(optimizers/averaging.py), so it is saved and restored with the optimizer state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from ..optimizers import averaging


class Averaging:
    """Mixed into JaxBackend (uses its ``state``, ``refresh_from_module``, ``sync_to_module``)."""

    state: Any

    if TYPE_CHECKING:  # the backend's other parts (jax_state.py)
        def refresh_from_module(self) -> None: ...
        def sync_to_module(self) -> None: ...

    def has_average(self) -> bool:
        return (self.state is not None and "opt" in self.state
                and averaging._find(self.state["opt"]) is not None)

    def swap_average(self) -> None:
        """Exchange the trained weights and their average (copies: no buffer is held twice,
        the next step donates the state)."""
        self.refresh_from_module()
        params = jax.tree.map(jnp.copy, self.state["params"])
        opt, average = averaging.optax_swap(self.state["opt"], params)
        self.state["opt"], self.state["params"] = opt, jax.tree.map(jnp.copy, average)
        self.sync_to_module()

    def finalize_average(self) -> None:
        """The weights set to their average (no-op without ``use_ema``)."""
        if not self.has_average():
            return
        self.refresh_from_module()
        average = averaging.optax_average_of(self.state["opt"])
        self.state["params"] = jax.tree.map(jnp.copy, average)
        self.sync_to_module()
