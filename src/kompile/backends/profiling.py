"""Profiler traces for ``kp.callbacks.TensorBoard(profile_batch=...)``.

JAX: ``jax.profiler.start_trace`` / ``stop_trace`` write ``plugins/profile/<run>/
*.xplane.pb`` under the folder, which TensorBoard's profile plugin shows
(``pip install tensorboard-plugin-profile``; Perfetto opens it too). torch:
``torch.profiler.profile`` with ``tensorboard_trace_handler`` writes ``*.pt.trace.json``
(Chrome trace format: Perfetto or ``chrome://tracing``; TensorBoard's ``torch-tb-profiler``
plugin reads the folder).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from typing import Any


def start(backend: Any, folder: str) -> Callable[[], None]:
    """Start tracing what ``backend`` runs into ``folder``; returns the function that waits for
    the queued work and stops the trace (writing its file)."""
    os.makedirs(folder, exist_ok=True)
    wait = getattr(backend, "wait", None)
    if backend.name == "jax":
        import jax

        if wait is not None:
            wait()  # earlier batches stay out of the trace
        jax.profiler.start_trace(folder)

        def stop_jax() -> None:
            if wait is not None:
                wait()  # the traced batches' device work is in the trace
            jax.profiler.stop_trace()

        return stop_jax
    import torch

    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    prof = torch.profiler.profile(activities=activities,
                                  on_trace_ready=torch.profiler.tensorboard_trace_handler(folder))
    prof.start()

    def stop_torch() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        prof.stop()

    return stop_torch


def trace_files(folder: str) -> list[str]:
    """The trace files under ``folder`` (either backend's)."""
    found = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)
    return found + glob.glob(os.path.join(folder, "**", "*.pt.trace.json"), recursive=True)
