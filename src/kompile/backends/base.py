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

from ..structures import OutputSpec


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
    """Every member the loop, the Model, callbacks and saving use; nothing outside
    ``backends/`` reaches past it (no ``getattr`` probing, no writes into fields other than
    those declared writable here: ``seed`` at construction, ``learning_rate``)."""

    name: str
    jit_compile: Any  # the resolved value, reported by Model.jit_compile (None: not yet)
    output_names: Any  # Model(output_names=...), saved with whole models
    signature: Any  # calling.ModuleSignature of the module's call method
    seed: int | None  # the seed of the kompile-owned nnx.Rngs (set once by Model)

    # ------------------------------------------------------------------ shapes and build
    @property
    def spec(self) -> OutputSpec:
        """The output spec the backend flattens predictions with (``set_spec``)."""

    def set_spec(self, spec: OutputSpec) -> None:
        """Use ``spec`` (named by the Model from the first batch) for outputs."""

    def output_spec(self, x: Any) -> OutputSpec:
        """Outputs of one forward pass on the host batch ``x`` (shapes only where possible)."""

    def sample_outputs(self, x: Any) -> list[Any]:
        """Flat host predictions for the first few samples of ``x`` (eval mode)."""

    def resolve_jit(self, config: Any) -> bool:
        """Whether steps of the compile ``config`` run compiled (before ``build``)."""

    def build(self, objective: Any, config: Any) -> None:
        """Create parameters, optimizer and metric state for a compiled configuration."""

    def unbuild(self) -> None:
        """Drop the state of a previous ``build`` (a recompile)."""

    def prepare_predict(self, config: Any = None) -> None:
        """Make ``predict`` possible before ``build`` (the module's state only), in the
        execution mode of the compile ``config`` when there is one."""

    # ------------------------------------------------------------------ data and processes
    def put(self, tree: Any) -> Any:
        """Move a structure of host arrays to the device."""

    def fits_on_device(self, nbytes: int) -> bool:
        """Whether ``nbytes`` of training data may live on the device for a whole fit."""

    def to_host(self, tree: Any) -> Any:
        """Backend arrays to NumPy (a host sync)."""

    @property
    def process_index(self) -> int:
        """This process's index (0 with one process); only process 0 prints and writes."""

    def agree(self, value: Any) -> Any:
        """Process 0's host ``value`` on every process (``value`` itself with one)."""

    def check_batch_size(self, batch_size: int) -> None:
        """ValueError when ``batch_size`` cannot be split over the devices or processes."""

    def check_agreement(self, describe: Any) -> None:
        """With several processes, gather every process's ``describe()`` (agreement.facts)
        and raise the same error on all of them when one differs; nothing with one."""

    @property
    def split_across_processes(self) -> bool:
        """Whether the parameters are shards that only every process together can read."""

    # ------------------------------------------------------------------ steps
    @property
    def fuses_calls(self) -> bool:
        """Whether several batches per call pay off (the steps are compiled loops)."""

    def set_paced(self, phase: str, paced: bool) -> None:
        """Whether the calls of ``phase`` ('train' or 'eval') run a varying batch count
        (pacing.py): a compiled loop over ``n`` instead of one compile per ``n``."""

    def wait(self) -> None:
        """Block until the queued calls have run (pacing.py times calls with it)."""

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

    def release(self) -> None:
        """End of a fit/evaluate/predict call (always called, also on an exception): drop
        per-call copies of the data and restore the SIGINT handler."""

    def keep_last_good(self, where: str, often: bool = False) -> None:
        """Keep what ``settle`` restores after a run-time failure (``where`` names the point
        for its warning); called where the loop already waits for the device (``often``:
        once per step, so the backend may skip some to bound the cost)."""

    def settle(self) -> bool:
        """After an exception: make the state valid again (JAX: arrays a failed step took or
        was to produce are put back from the last good copy). True when it restored."""

    # ------------------------------------------------------------------ the user's module
    def sync_to_module(self) -> None:
        """Write the latest state into the user's module, keeping what the user changed on
        it since the last write."""

    def refresh_from_module(self) -> None:
        """Take into the state what the user changed on the module since the last write."""

    def write_back_rng(self) -> None:
        """Write RNG state that evaluate/predict advanced back into the module (no-op when
        none did)."""

    def get_weights(self) -> list[Any]:
        """The trainable parameters as NumPy copies, in the module's order."""

    def set_weights(self, weights: list[Any]) -> None:
        """Replace the trainable parameters (the next step trains with them)."""

    # ------------------------------------------------------------------ files
    def weights_dict(self) -> dict[str, np.ndarray]:
        """The module's variables by name, as NumPy copies (a host sync)."""

    def load_weights_dict(self, weights: dict[str, Any]) -> None:
        """Replace the module's variables by name (names checked by the caller)."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """Training state (optimizer, metrics, loss scale, RNG) by name, as NumPy copies."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict`` (names checked by the caller)."""

    # ------------------------------------------------------------------ summaries
    def summary_table(self, x: Any) -> tuple[str | None, str | None]:
        """``(table, note)``: the framework's own summary of the module called on the host
        batch ``x`` (nnx.tabulate), or None; ``note`` says why it failed (then None)."""

    def describe_module(self) -> list[str]:
        """Lines describing the module for ``summary()`` (torch: its repr; JAX: none)."""

    def variables(self) -> list[tuple[str, Any, bool]]:
        """``(name, array, trainable)`` of each variable of the module as last synced
        (parameters, then batch statistics and buffers; no RNG state)."""

    def global_rng(self) -> dict[str, np.ndarray]:
        """The framework's global RNG state that steps draw from, as named arrays (torch:
        the CPU generator and every initialised CUDA device's; JAX: none, its keys are in
        ``state_dict``)."""

    def restore_global_rng(self, arrays: dict[str, Any]) -> None:
        """Restore what ``global_rng`` returned (names it does not know are ignored)."""

    # ------------------------------------------------------------------ weights' average
    def has_average(self) -> bool:
        """Whether the optimizer keeps a moving average of the weights (``use_ema``)."""

    def swap_average(self) -> None:
        """Exchange the trained weights and their average (SwapEMAWeights)."""

    def finalize_average(self) -> None:
        """Set the weights to their average (the end of ``fit``; no-op without one)."""

    # ------------------------------------------------------------------ optimizer
    @property
    def has_optimizer_state(self) -> bool:
        """Whether the optimizer state exists (the model has trained or been built)."""

    @property
    def learning_rate(self) -> float:
        """The learning rate the next step uses."""

    @learning_rate.setter
    def learning_rate(self, value: float) -> None: ...

    @property
    def iterations(self) -> int:
        """Optimizer steps taken."""
