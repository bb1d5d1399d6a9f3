"""Whole-model files: ``Model.save(path)`` and ``kp.load_model(path, module)``.

One safetensors file (format ``kompile.model``), written atomically by ``saving.save_arrays``:

- ``weights/<name>``: the module's variables, as ``save_weights`` writes them, so
  ``load_weights`` reads a model file too and the weights load before any batch is seen;
- ``state/<name>``: the backend's training state (weights, optimizer state with the loss
  scale, train-metric state, the module's RNG state), the same arrays BackupAndRestore
  writes; absent when the model was compiled but never trained;
- metadata (JSON): the compile configuration (``get_compile_config``), the dtype policy,
  the output names and the training position (epochs run and their history).

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
from ..callbacks.base import History
from ..distribution import DataParallel
from ..file_checks import fspath

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
    records = {"epoch": [], "history": {}} if history is None else {
        "epoch": [int(e) for e in history.epoch],
        "history": {k: list(v) for k, v in history.history.items()}}
    meta = {"format": MODEL_FORMAT, "backend": model.backend, "compile_config": config,
            "dtype_policy": model.dtype_policy.name,
            "output_names": getattr(backend, "output_names", None),
            "info": {"epoch": records["epoch"][-1] + 1 if records["epoch"] else 0,
                     "history": records}}
    saving.save_arrays(path, arrays, meta)


def load_model(filepath: str | os.PathLike[str], module: Any, *,
               distribution: DataParallel | None = None) -> Any:
    """Rebuild a compiled ``kp.Model`` from a file written by ``Model.save``.

    The file holds arrays, not code: you build the module again (same class, same
    constructor arguments; its initial weights do not matter) and ``load_model`` puts the
    saved state into it. The result is compiled with the saved configuration, predicts
    what the saved model predicted, and continues training exactly as the saved model
    would have (same weights, optimizer state, loss scale, module RNG state). Custom
    losses, metrics or optimizers must be registered with ``kp.register`` in this process.

    ``model.history`` holds the saved run's epochs and logs, so a continued run can start
    at ``initial_epoch=model.history.epoch[-1] + 1``.

    Args:
        filepath: A file written by ``Model.save``.
        module: A freshly built ``flax.nnx.Module`` or ``torch.nn.Module`` of the same
            architecture as the saved one, on the same backend.
        distribution: A ``kp.distribution.DataParallel`` for the new model (not saved in
            the file). Default ``None``: the global distribution.

    Returns:
        A compiled ``kp.Model`` around ``module``.

    Raises:
        FileNotFoundError: No file at ``filepath``.
        ValueError: The file is not a whole-model file (a weights file or a backup), was
            written by the other backend, or its variables do not match ``module``'s
            (the message names the first mismatched variable).

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from flax import nnx
        >>> import kompile as kp
        >>> model = kp.Model(nnx.Linear(2, 1, rngs=nnx.Rngs(0))).compile("adam", "mse")
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> model.save(path)
        >>> kp.load_model(path, nnx.Linear(2, 1, rngs=nnx.Rngs(5))).get_compile_config()["loss"]
        'mse'
        >>> kp.load_model(path, nnx.Linear(3, 1, rngs=nnx.Rngs(5)))
        Traceback (most recent call last):
        ...
        ValueError: ... variable 'kernel' has shape (3, 1) in this module but (2, 1) in the file...
    """
    from .core import Model

    arrays, meta = saving.load_arrays(filepath)
    where = repr(fspath(filepath))
    kind = meta.get("format")
    if kind == saving.STATE_FORMAT and "numpy_rng" in meta.get("info", {}):
        folder = os.path.dirname(os.path.abspath(fspath(filepath)))
        raise ValueError(f"{where} is a BackupAndRestore backup, not a whole model saved with "
                         "model.save(). Resume the interrupted run from it: build and compile "
                         "the model as before and call model.fit(..., callbacks=["
                         f"kp.callbacks.BackupAndRestore({folder!r})]) with the same data "
                         "and settings.")
    if kind != MODEL_FORMAT:
        what = "a training-state backup" if kind == saving.STATE_FORMAT else "weights only"
        raise ValueError(f"{where} holds {what}, not a whole model saved with model.save(); "
                         "build and compile the model yourself and call "
                         "model.load_weights(path).")
    model = Model(module, output_names=meta.get("output_names"),
                  dtype_policy=meta.get("dtype_policy"), distribution=distribution)
    if meta.get("backend") != model.backend:
        raise ValueError(f"{where} was saved from a {meta.get('backend')} model; the module "
                         f"given is a {model.backend} module ({type(module).__name__}).")
    weights = _strip(arrays, "weights/")
    check_same_variables(model._backend.weights_dict(), weights, where)
    try:
        model.compile_from_config(meta["compile_config"])
    except (TypeError, ValueError, KeyError) as err:
        raise saving.InvalidFileError(filepath, f"compile_config: {err}") from None
    model._backend.load_weights_dict(weights)
    state = _strip(arrays, "state/")
    model._pending_state = state or None
    records = meta.get("info", {}).get("history")
    if records and records.get("epoch"):
        history = History()
        history.epoch = list(records["epoch"])
        history.history = {k: list(v) for k, v in records["history"].items()}
        history.set_model(model)
        model.history = history
    return model


def restore_pending(model: Any) -> None:
    """Put the training state kept by ``load_model`` into the just-built backend."""
    state, model._pending_state = model._pending_state, None
    backend = model._backend
    expected = backend.state_dict()
    check_same_variables(expected, state, "the saved training state")
    backend.load_state_dict(state)


def check_same_variables(expected: dict[str, Any], received: dict[str, Any],
                         where: str) -> None:
    """ValueError naming the first variable (in the module's order) that differs."""
    for name, value in expected.items():
        if name not in received:
            problem = f"variable {name!r} of this module is not in the file"
        elif np.shape(value) != np.shape(received[name]):
            problem = (f"variable {name!r} has shape {tuple(np.shape(value))} in this module "
                       f"but {tuple(np.shape(received[name]))} in the file")
        else:
            continue
        break
    else:
        extra = [k for k in received if k not in expected]
        if not extra:
            return
        problem = f"the file holds variable {extra[0]!r}, which this module does not have"
    differ = sum(1 for k in expected if k not in received
                 or np.shape(expected[k]) != np.shape(received[k]))
    differ += sum(1 for k in received if k not in expected)
    raise ValueError(f"{where} does not match this module's architecture: {problem} "
                     f"({differ} variable(s) differ). Build the module exactly as the saved "
                     "one was built.")


def _strip(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


__all__ = ["load_model"]
