"""Weights and training-state files: safetensors on disk, written atomically.

Owns the file formats and the atomic write; the arrays come from the backend's
``weights_dict()`` / ``state_dict()`` (flat name -> NumPy array) and go back through
``load_weights_dict()`` / ``load_state_dict()``, so this module never looks at JAX or torch
objects. The callbacks (ModelCheckpoint, BackupAndRestore) and ``Model.save_weights`` /
``Model.load_weights`` use it.

Why safetensors: one flat ``name -> array`` format that NumPy, torch and Flax all read, so
a file does not depend on the backend that wrote it; loading runs no code (unlike pickle
and ``torch.load``); the header carries string metadata, which holds the training
information (epoch, step, RNG state, history) so that a whole checkpoint is one file and
one atomic rename. Orbax would serve JAX only and writes a directory per checkpoint, which
cannot be replaced in one rename.

Two kinds of file, told apart by the metadata's ``format``:

- ``kompile.weights``: the module's variables (parameters and batch statistics, no RNG
  state), named by their path in the module (``"l1/kernel"``).
- ``kompile.state``: the backend's whole training state under ``state/`` (weights,
  optimizer state, metric state, RNG state, loss scale), optionally the weights again
  under ``weights/`` (so ``load_weights`` reads it on a model that has not trained yet),
  extra arrays under ``extra/`` and a JSON ``info`` dict.

Atomic writes: the file is written to a temporary file in the same directory, flushed to
disk, then moved over the target with ``os.replace``; a crash mid-save leaves the old file
(or none), never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np

WEIGHTS_FORMAT = "kompile.weights"
STATE_FORMAT = "kompile.state"
MODEL_FORMAT = "kompile.model"
# dtypes safetensors' NumPy reader lacks (ml_dtypes): stored as same-width unsigned views
_VIEW = {2: np.uint16, 1: np.uint8}


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, whole.

    Args:
        path: The file to write (its folder is created when needed).
        data: The bytes to write.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + "-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable (POSIX); not possible on every platform
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_arrays(path: str | os.PathLike, arrays: dict[str, Any],
                meta: dict[str, Any]) -> None:
    """One safetensors file holding ``arrays`` and ``meta`` (JSON), written atomically.

    Args:
        path: The file to write.
        arrays: Flat ``name -> array`` (NumPy-convertible; bfloat16 and float8 kept).
        meta: JSON-serialisable metadata, stored in the header.
    """
    from safetensors.numpy import save

    out, views = {}, {}
    for name, value in arrays.items():
        a = np.asarray(value)
        a = a if a.flags.c_contiguous else a.copy(order="C")  # keeps 0-d arrays 0-d
        if a.dtype.kind == "V" or a.dtype.name not in np.sctypeDict:  # bfloat16, float8...
            views[name] = a.dtype.name
            a = a.view(_VIEW[a.dtype.itemsize])
        out[name] = a
    meta = {**meta, "views": views}
    atomic_write(path, save(out, metadata={"kompile": json.dumps(meta)}))


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and the metadata of a file written by ``save_arrays``.

    Args:
        path: The file to read.

    Returns:
        ``(arrays, meta)``: a dict of NumPy arrays and the metadata dict.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: The file is not readable safetensors.
    """
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No weights or checkpoint file at {path!r}.")
    try:
        with safe_open(path, framework="np") as f:
            raw = (f.metadata() or {}).get("kompile")
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{path!r} is not a readable safetensors file: {err}") from err
    meta = json.loads(raw) if raw else {"format": WEIGHTS_FORMAT}
    for name, dtype in meta.get("views", {}).items():
        import ml_dtypes  # noqa: F401  (registers bfloat16 and friends with NumPy)

        arrays[name] = arrays[name].view(np.dtype(dtype))
    return arrays, meta


def check_names(expected: dict[str, Any], received: dict[str, Any], what: str) -> None:
    """ValueError naming missing and unexpected entries, or mismatched shapes."""
    missing = [k for k in expected if k not in received]
    extra = [k for k in received if k not in expected]
    problems = []
    if missing:
        problems.append(f"missing {_few(missing)}")
    if extra:
        problems.append(f"unexpected {_few(extra)}")
    shapes = [f"{k}: expected {tuple(np.shape(v))}, received {tuple(np.shape(received[k]))}"
              for k, v in expected.items()
              if k in received and np.shape(v) != np.shape(received[k])]
    if shapes:
        problems.append("shape mismatch for " + _few(shapes))
    if problems:
        raise ValueError(f"The {what} do not match this model: " + "; ".join(problems) + ".")


def _few(names: list[str], n: int = 6) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


# ---------------------------------------------------------------------------- weights
def save_weights(model: Any, path: str | os.PathLike) -> None:
    """The module's variables (no optimizer state) as a ``kompile.weights`` file.

    Args:
        model: A ``kp.Model``.
        path: The file to write.
    """
    save_arrays(path, model._backend.weights_dict(),
                {"format": WEIGHTS_FORMAT, "backend": model.backend})


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """Weights from a weights file, or from a checkpoint written with its weights.

    Args:
        model: A ``kp.Model``.
        path: A weights, checkpoint or whole-model file.
    """
    arrays, meta = load_arrays(path)
    if meta.get("format") in (STATE_FORMAT, MODEL_FORMAT):  # model files: model_saving.py
        weights = _strip(arrays, "weights/")
        if not weights:
            raise ValueError(
                f"{os.fspath(path)!r} is a training-state backup without a copy of the "
                "weights; restore it with kp.saving.load_training_state(model, path) on a "
                "model that has trained (so its optimizer state exists).")
        arrays = weights
    backend = model._backend
    check_names(backend.weights_dict(), arrays, f"weights in {os.fspath(path)!r}")
    backend.load_weights_dict(arrays)


# ---------------------------------------------------------------------------- training state
def save_training_state(model: Any, path: str | os.PathLike, info: dict[str, Any] | None = None,
                        extra: dict[str, Any] | None = None,
                        include_weights: bool = False) -> None:
    """Weights, optimizer and metric state, RNG state and ``info`` (JSON) in one file.

    Args:
        model: A ``kp.Model`` that has trained (its optimizer state exists).
        path: The file to write.
        info: JSON-serialisable information stored with the arrays. Default ``None``.
        extra: More arrays to store (under ``extra/``). Default ``None``.
        include_weights: Also store the weights under ``weights/``, so that
            ``load_weights`` reads the file. Default ``False``.
    """
    backend = model._backend
    arrays = {"state/" + k: v for k, v in backend.state_dict().items()}
    if include_weights:
        arrays.update({"weights/" + k: v for k, v in backend.weights_dict().items()})
    arrays.update({"extra/" + k: v for k, v in (extra or {}).items()})
    save_arrays(path, arrays, {"format": STATE_FORMAT, "backend": model.backend,
                               "info": info or {}})


def load_training_state(model: Any, path: str | os.PathLike
                        ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Restore what ``save_training_state`` wrote; returns ``(info, extra arrays)``.

    The model must have been built (compiled and run on one batch) so that the optimizer
    state it restores into exists.

    Args:
        model: A built ``kp.Model`` of the same architecture and configuration.
        path: A file written by ``save_training_state``.

    Returns:
        ``(info, extra)``: the stored JSON dict and the extra arrays.
    """
    arrays, meta = load_arrays(path)
    if meta.get("format") != STATE_FORMAT:
        raise ValueError(f"{os.fspath(path)!r} holds weights only, not a training state; "
                         "use model.load_weights(path).")
    if meta.get("backend") != model.backend:
        raise ValueError(f"{os.fspath(path)!r} was written by the {meta.get('backend')} "
                         f"backend; this model runs on {model.backend}.")
    state = _strip(arrays, "state/")
    backend = model._backend
    check_names(backend.state_dict(), state, f"training state in {os.fspath(path)!r}")
    backend.load_state_dict(state)
    return meta.get("info", {}), _strip(arrays, "extra/")


def _strip(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


__all__ = ["atomic_write", "load_arrays", "load_training_state", "load_weights", "save_arrays",
           "save_training_state", "save_weights"]
