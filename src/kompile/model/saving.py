"""Whole-model files: ``Model.save(path)`` and ``kp.load_model(path, module)``.

One safetensors file (format ``kompile.model``), written atomically by ``saving.save_arrays``:

- ``weights/<name>``: the module's variables, as ``save_weights`` writes them, so
  ``load_weights`` reads a model file too and the weights load before any batch is seen;
- ``state/<name>``: the backend's training state (weights, optimizer state with the loss
  scale, train-metric state, the module's RNG state), the same arrays BackupAndRestore
  writes; absent when the model was compiled but never trained;
- metadata (JSON): the compile configuration (``get_compile_config``), the dtype policy,
  the output names and the training position (epochs run and their history).

Loading (``load_model``) is in ``loading.py``, above ``core.py``: it builds a Model, and
``core.py`` needs this module (``restore_pending``), so one module for both would be a cycle.

Not saved: the architecture. A file holds arrays and names, never code, so loading runs
no code; the caller builds the module again and ``load_model`` checks that every variable
matches. The training state can only go into a built backend, which needs one batch to
see the output shapes, so ``load_model`` loads the weights at once and keeps the rest
until the first ``fit``/``evaluate``/``train_on_batch`` builds the backend
(``restore_pending``, called by ``Model._ensure_objective``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import saving

MODEL_FORMAT = saving.MODEL_FORMAT


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write ``model``'s weights, training state, compile config and position to ``path``."""
    model._require_compiled("save")
    saving.check_file_name(path, "filepath")
    config = model.get_compile_config()  # raises for unregistered custom objects
    backend = model._backend
    arrays = {"weights/" + k: v for k, v in backend.weights_dict().items()}
    if model._pending_state is not None:  # loaded and not trained since: keep the state
        state = model._pending_state
    elif model._objective is not None:
        state = backend.state_dict()
    else:
        state = {}
    arrays.update({"state/" + k: v for k, v in state.items()})
    history = model.history
    records: dict[str, Any] = {"epoch": [], "history": {}} if history is None else {
        "epoch": [int(e) for e in history.epoch],
        "history": {k: list(v) for k, v in history.history.items()}}
    meta = {"format": MODEL_FORMAT, "backend": model.backend, "compile_config": config,
            "dtype_policy": model.dtype_policy.name,
            "output_names": backend.output_names,
            "info": {"epoch": records["epoch"][-1] + 1 if records["epoch"] else 0,
                     "history": records}}
    if backend.process_index == 0:  # several processes: one writer
        saving.save_arrays(path, arrays, meta)


def restore_pending(model: Any) -> None:
    """Put the training state kept by ``load_model`` into the just-built backend."""
    state, model._pending_state = model._pending_state, None
    backend = model._backend
    expected = backend.state_dict()
    saving.check_names(expected, state, "saved training state")
    backend.load_state_dict(state)


def _strip(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


__all__ = ["restore_pending", "save_model"]
