"""``kp.load_model(path, module)``: a compiled ``kp.Model`` from a whole-model file.

Above ``core.py`` (it builds a Model) and ``saving.py`` (the file's layout and the
training state kept until the first batch builds the backend).
"""

from __future__ import annotations

import os
from typing import Any

from .. import saving
from ..callbacks.base import History
from ..distribution import Distribution
from ..file_checks import fspath
from . import hints
from .core import Model
from .saving import MODEL_FORMAT, _strip


def load_model(filepath: str | os.PathLike[str], module: Any = None, *,
               distribution: Distribution | None = None, trainable: Any = None) -> Any:
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
            architecture as the saved one, on the same backend. Required: left out, a
            ``TypeError`` says what to pass (the file holds arrays, not code).
        distribution: A ``kp.distribution.DataParallel``, ``ModelParallel`` or ``FSDP`` for
            the new model (not saved in the file; a file saved under sharding loads under any
            distribution or none). Default ``None``: the global distribution.
        trainable: The nnx filter of the trained variables, as given to the saved
            model's ``kp.Model(trainable=...)`` (a filter is code, not saved in the file).
            Default ``None``: every ``nnx.Param``.

    Returns:
        A compiled ``kp.Model`` around ``module``.

    Raises:
        TypeError: No ``module`` given.
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
    if module is None:
        raise hints.load_model_needs_module(filepath)
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
                  dtype_policy=meta.get("dtype_policy"), distribution=distribution,
                  trainable=trainable)
    if meta.get("backend") != model.backend:
        raise ValueError(f"{where} was saved from a {meta.get('backend')} model; the module "
                         f"given is a {model.backend} module ({type(module).__name__}).")
    weights = _strip(arrays, "weights/")
    saving.check_names(model._backend.weights_dict(), weights, f"variables in {where}")
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


__all__ = ["load_model"]
