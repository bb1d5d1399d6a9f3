"""The backend protocol: what the one loop needs from JAX or torch.

The loop owns batching, epochs, callbacks and logs; a backend owns where state lives and
the three steps. Data reaches a step as a *feed* (a structure ``(x, ys, sws)`` of arrays
with the sample axis first, already on the device) and an *index* matrix of shape
``(calls_rows, batch_size)``; a call runs ``n`` consecutive rows starting at ``start``.
"""

from __future__ import annotations

from typing import Any, Protocol


class Backend(Protocol):
    name: str
    jit_compile: Any  # the resolved value, reported by Model.jit_compile

    def output_spec(self, x: Any) -> Any:
        """Outputs of one forward pass on the host batch ``x`` (shapes only where possible)."""

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

    def release(self) -> None:
        """Drop per-call copies of the data (end of a fit/evaluate/predict call)."""

    def sync_to_module(self) -> None:
        """Write the trained state back into the user's module."""

    def write_back_rng(self) -> None:
        """Write RNG state that evaluate/predict advanced back into the module (no-op when
        none did)."""
