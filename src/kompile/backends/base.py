"""The backend protocol: what the one loop needs from JAX or torch.

The loop owns batching, epochs, callbacks and logs; a backend owns where state lives and
the three steps. Data reaches a step as a *feed* (a structure ``(x, ys, sws)`` of arrays
with the sample axis first, already on the device) and an *index* matrix of shape
``(calls_rows, batch_size)``; a call runs ``n`` consecutive rows starting at ``start``.

What the user holds stays valid: a step never consumes (donates) an array the user's module
or a caller holds, a Ctrl-C inside a step that has consumed its inputs is deferred until its
result is stored (``interrupts.SignalGuard``, installed by the first step of a call and
restored by ``release``), and between batches the module shows the latest weights to whoever
reads it through the model (``sync_to_module``) and what was changed on it is taken back
before the next step.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


def check_weights(weights: list[Any], current: list[Any]) -> None:
    """``set_weights``'s arguments against the parameters they replace (count and shapes)."""
    if len(weights) != len(current):
        raise ValueError(f"set_weights expected {len(current)} arrays; received "
                         f"{len(weights)}.")
    for i, (w, p) in enumerate(zip(weights, current)):
        if tuple(np.shape(w)) != tuple(p.shape):
            raise ValueError(f"set_weights: array {i} has shape {tuple(np.shape(w))} but the "
                             f"parameter it replaces has shape {tuple(p.shape)}.")


class Backend(Protocol):
    name: str
    jit_compile: Any  # the resolved value, reported by Model.jit_compile

    def output_spec(self, x: Any) -> Any:
        """Outputs of one forward pass on the host batch ``x`` (shapes only where possible)."""

    def use_inputs(self, x: Any) -> Any:
        """A later call's first host batch ``x``: its calling rule (kompile.calling)."""

    def build(self, objective: Any, config: Any) -> None:
        """Create parameters, optimizer and metric state for a compiled configuration."""

    def put(self, tree: Any) -> Any:
        """Move a structure of host arrays to the device."""

    def fits_on_device(self, nbytes: int) -> bool:
        """Whether ``nbytes`` of training data may live on the device for a whole fit."""

    def train(self, feed: Any, index: Any, start: int, n: int) -> None:
        """Run ``n`` training steps on rows ``start:start+n`` of ``index``."""

    def evaluate(self, feed: Any, index: Any, start: int, n: int) -> None:
        """Accumulate evaluation metrics over ``n`` rows of ``index``."""

    def predict(self, feed: Any, index: Any, start: int, n: int) -> list[Any]:
        """Flat per-output predictions for ``n`` rows of ``index`` (device arrays)."""

    def reset_metrics(self, phase: str) -> None:
        """Zero the metric state of ``phase`` ('train' or 'eval')."""

    def results(self, phase: str) -> dict[str, Any]:
        """Metric results of ``phase`` as backend scalars (no host sync)."""

    def to_host(self, tree: Any) -> Any:
        """Backend arrays to NumPy (a host sync)."""

    def prepare_predict(self, config: Any = None) -> None:
        """Make ``predict`` possible before ``build`` (the module's state only), in the
        execution mode of the compile ``config`` when there is one."""

    def release(self) -> None:
        """End of a fit/evaluate/predict call (always called, also on an exception): drop
        per-call copies of the data and restore the SIGINT handler."""

    def sync_to_module(self) -> None:
        """Write the latest state into the user's module, keeping what the user changed on
        it since the last write."""

    def refresh_from_module(self) -> None:
        """Take into the state what the user changed on the module since the last write."""

    def get_weights(self) -> list[Any]:
        """The trainable parameters as NumPy copies, in the module's order."""

    def set_weights(self, weights: list[Any]) -> None:
        """Replace the trainable parameters (the next step trains with them)."""

    def write_back_rng(self) -> None:
        """Write RNG state that evaluate/predict advanced back into the module (no-op when
        none did)."""
