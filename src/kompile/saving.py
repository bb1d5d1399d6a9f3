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
(or none), never a torn one. The file gets the permissions any new file gets (``0o666``
less the umask), or keeps those of the file it replaces.

Checks: a file that is not a kompile safetensors file (corrupt, truncated, HDF5, a zip or
pickle from ``torch.save``, broken metadata) raises ``ValueError("'<path>' is not a valid
kompile file: <reason>")``; names ending in ``.h5``/``.keras``/``.pt``/``.pth`` are refused
when writing (``check_file_name``: the file would not be what its name says); callbacks
check their paths when training starts (``check_folder``).
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np

from .file_checks import (
    MODEL_FORMAT,
    STATE_FORMAT,
    WEIGHTS_FORMAT,
    InvalidFileError,
    check_header,
    check_meta,
    fspath,
    parse_meta,
    remove_stale,
    temp_prefix,
)

# names that promise another format: (suffixes, what a reader would expect, how to read ours)
_FOREIGN = (
    ((".h5", ".hdf5", ".keras"), "an HDF5 file or a Keras archive",
     "model.load_weights(path) reads it back"),
    ((".pt", ".pth"), "a torch.save file",
     "torch.load cannot read it: load it into a plain torch module with "
     "module.load_state_dict(safetensors.torch.load_file(path))"),
)
# the first bytes of formats people pass by mistake
_MAGIC = ((b"\x89HDF\r\n\x1a\n", "it is an HDF5 file (a Keras .h5 file?)"),
          (b"PK\x03\x04", "it is a zip archive (a .keras file or a torch.save checkpoint?)"),
          (b"\x80", "it is a Python pickle (torch.save?)"))


class NonFiniteError(ValueError):
    """Weights (or optimizer state) holding NaN or infinity, refused by a save made with
    ``finite_only=True`` before anything is written (the checkpoint callbacks catch it).

    Args:
        name: The first variable found holding a non-finite value.
    """

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"variable {name!r} holds NaN or infinite values")


def first_nonfinite(arrays: dict[str, Any], skip: tuple[str, ...] = ()) -> str | None:
    """The name of the first floating-point array holding NaN or infinity, else None.

    One pass over host arrays that are about to be written anyway: the check of a save,
    never of a training step. Integer and boolean arrays (counters, RNG keys) are skipped.

    Args:
        arrays: Flat ``name -> array``.
        skip: Name prefixes not checked (the metric state may hold a NaN loss while the
            weights are fine).
    """
    for name, value in arrays.items():
        if skip and name.startswith(skip):
            continue
        a = np.asarray(value)
        if a.dtype.kind in "biuOSU":
            continue
        try:
            finite = bool(np.isfinite(a).all())
        except TypeError:  # a dtype without isfinite: nothing to check
            continue
        if not finite:
            return name
    return None


def check_file_name(path: str | os.PathLike, argument: str) -> None:
    """ValueError for a name whose extension promises another format (``.h5``, ``.keras``,
    ``.pt``, ``.pth``) or that has no suffix at all: kompile writes safetensors only, and a
    misnamed file misleads whoever loads it. The same rule holds for ``Model.save``,
    ``Model.save_weights`` and ``ModelCheckpoint``.

    Args:
        path: The file name to check.
        argument: The argument it came from, named in the error.
    """
    name = fspath(path, argument)
    lower = name.lower()
    for suffixes, expected, how in _FOREIGN:
        suffix = next((s for s in suffixes if lower.endswith(s)), None)
        if suffix is None:
            continue
        stem = name[:-len(suffix)]
        stem = stem[:-len(".weights")] if stem.lower().endswith(".weights") else stem
        raise ValueError(
            f"`{argument}` is {name!r}, a name for {expected}, but kompile writes safetensors "
            f"files. Name it {stem + '.safetensors'!r}; {how}.")
    base = os.path.basename(name)
    if base and "." not in base.lstrip(".") and "{" not in base and not os.path.isdir(name):
        raise ValueError(
            f"`{argument}` is {name!r}, a name without a suffix, which says nothing of what "
            f"the file holds. kompile writes safetensors files: name it "
            f"{name + '.safetensors'!r}.")


def check_folder(folder: str | os.PathLike, owner: str, argument: str) -> None:
    """Create ``folder`` (and its parents) now, or raise a ValueError naming ``owner``'s
    ``argument`` when a file stands where a directory belongs or it cannot be created:
    callbacks call this in ``on_train_begin`` so that a bad path fails before an epoch
    is spent.

    Args:
        folder: The directory to create.
        owner: The callback it belongs to, named in the error.
        argument: The argument it came from, named in the error.
    """
    folder = fspath(folder, argument) or "."
    probe = os.path.abspath(folder)
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if os.path.exists(probe) and not os.path.isdir(probe):
        raise ValueError(f"{owner}: `{argument}` needs the directory {folder!r}, but "
                         f"{probe!r} is a file. Choose another path or move the file.")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{owner}: cannot create the directory {folder!r} for `{argument}`: "
                         f"{err.strerror or err}.") from err


def _new_file_mode(path: str) -> int:
    """The mode ``open(path, "w")`` would give: the existing file's, else 0o666 less the
    umask (read from /proc where possible: setting the umask to read it is not thread-safe)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        pass
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask
# dtypes safetensors' NumPy reader lacks (ml_dtypes): stored as same-width unsigned views
_VIEW = {2: np.uint16, 1: np.uint8}


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, whole.

    Args:
        path: The file to write (its folder is created when needed).
        data: The bytes to write.
    """
    path = fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    check_folder(folder, "save", "filepath")  # a file where the folder belongs: ValueError
    prefix = temp_prefix(folder, os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=folder)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600 files; follow the umask instead
            os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    remove_stale(folder, prefix)  # what a killed save of the same target left
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

    path = fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory; weights and checkpoints are single "
                                "files.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No weights or checkpoint file at {path!r}.")
    check_header(path)
    try:
        with safe_open(path, framework="np") as f:
            raw = (f.metadata() or {}).get("kompile")
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise InvalidFileError(path, _unreadable(path, err)) from err
    if not raw:  # a safetensors file from elsewhere: read as weights, names checked later
        return arrays, {"format": WEIGHTS_FORMAT}
    meta = parse_meta(path, raw)
    check_meta(path, meta, arrays)
    for name, dtype in meta.get("views", {}).items():
        import ml_dtypes  # noqa: F401  (registers bfloat16 and friends with NumPy)

        try:
            arrays[name] = arrays[name].view(np.dtype(dtype))
        except (TypeError, ValueError) as err:
            raise InvalidFileError(path, f"array {name!r} cannot be read as {dtype!r} "
                                         f"({err}).") from None
    return arrays, meta


def _unreadable(path: str, err: Exception) -> str:
    """Why safetensors could not read ``path``: the format it looks like, else its error."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        head = b""
    if not head:
        return "the file is empty."
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what + "; kompile reads and writes safetensors files."
    return f"it is not a safetensors file, or it is truncated or corrupt ({err})."


def check_names(expected: dict[str, Any], received: dict[str, Any], what: str) -> None:
    """ValueError unless ``received`` holds exactly ``expected``'s names with its shapes;
    the message names the first variable of each kind of difference (in the module's
    order) and lists the others. ``what``: what was read (``"weights in 'w.safetensors'"``).
    """
    shapes = [k for k, v in expected.items()
              if k in received and np.shape(v) != np.shape(received[k])]
    missing = [k for k in expected if k not in received]
    extra = [k for k in received if k not in expected]
    problems = []
    if shapes:
        k = shapes[0]
        problems.append(f"variable {k!r} has shape {tuple(np.shape(expected[k]))} in this "
                        f"module but {tuple(np.shape(received[k]))} in the file"
                        + (f" (shapes differ for {_few(shapes)})" if len(shapes) > 1 else ""))
    if missing:
        problems.append(f"variable {missing[0]!r} of this module is not in the file"
                        + (f" (missing: {_few(missing)})" if len(missing) > 1 else ""))
    if extra:
        problems.append(f"the file holds variable {extra[0]!r}, which this module does not "
                        "have" + (f" (unexpected: {_few(extra)})" if len(extra) > 1 else ""))
    if problems:
        raise ValueError(f"The {what} do not match this model's architecture: "
                         + "; ".join(problems) + ". Build the module exactly as the saved "
                         "one was built.")


def _few(names: list[str], n: int = 6) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


# ---------------------------------------------------------------------------- weights
def check_finite_state(model: Any) -> None:
    """``NonFiniteError`` when ``model``'s weights or optimizer state hold NaN or infinity
    (the metric state is not checked): a whole-model checkpoint is not written then."""
    bad = first_nonfinite(model._backend.state_dict(), skip=("metrics/",))
    if bad is not None:
        raise NonFiniteError(bad)


def save_weights(model: Any, path: str | os.PathLike, finite_only: bool = False) -> None:
    """The module's variables (no optimizer state) as a ``kompile.weights`` file.

    Args:
        model: A ``kp.Model``.
        path: The file to write.
        finite_only: Raise ``NonFiniteError`` (writing nothing) when a variable holds NaN
            or infinity. Default ``False``.
    """
    check_file_name(path, "filepath")
    weights = model._backend.weights_dict()  # (every process: shards may be gathered)
    if finite_only and (bad := first_nonfinite(weights)) is not None:
        raise NonFiniteError(bad)
    if getattr(model._backend, "process_index", 0) == 0:  # several processes: one writer
        save_arrays(path, weights, {"format": WEIGHTS_FORMAT, "backend": model.backend})


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """Weights from a weights file, or from a checkpoint written with its weights.

    Args:
        model: A ``kp.Model``.
        path: A weights, checkpoint or whole-model file.
    """
    arrays, meta = load_arrays(path)
    if meta.get("format") in (STATE_FORMAT, MODEL_FORMAT):  # model files: model/saving.py
        weights = _strip(arrays, "weights/")
        if not weights and "numpy_rng" in meta.get("info", {}):
            folder = os.path.dirname(os.path.abspath(fspath(path)))
            raise ValueError(
                f"{fspath(path)!r} is a BackupAndRestore backup, which holds no copy of the "
                "weights for load_weights. Resume the interrupted run from it: call "
                f"model.fit(..., callbacks=[kp.callbacks.BackupAndRestore({folder!r})]) with "
                "the same data and settings, or restore it into a model that has trained "
                "with kp.saving.load_training_state(model, path).")
        if not weights:
            raise ValueError(
                f"{fspath(path)!r} is a training-state backup without a copy of the "
                "weights; restore it with kp.saving.load_training_state(model, path) on a "
                "model that has trained (so its optimizer state exists).")
        arrays = weights
    backend = model._backend
    check_names(backend.weights_dict(), arrays, f"weights in {fspath(path)!r}")
    backend.load_weights_dict(arrays)


# ---------------------------------------------------------------------------- training state
def save_training_state(model: Any, path: str | os.PathLike, info: dict[str, Any] | None = None,
                        extra: dict[str, Any] | None = None,
                        include_weights: bool = False, finite_only: bool = False) -> None:
    """Weights, optimizer and metric state, RNG state and ``info`` (JSON) in one file.

    Args:
        model: A ``kp.Model`` that has trained (its optimizer state exists).
        path: The file to write.
        info: JSON-serialisable information stored with the arrays. Default ``None``.
        extra: More arrays to store (under ``extra/``). Default ``None``.
        include_weights: Also store the weights under ``weights/``, so that
            ``load_weights`` reads the file. Default ``False``.
        finite_only: Raise ``NonFiniteError`` (writing nothing) when the weights or the
            optimizer state hold NaN or infinity (the metric state is not checked).
            Default ``False``.
    """
    backend = model._backend
    state = backend.state_dict()
    if finite_only and (bad := first_nonfinite(state, skip=("metrics/",))) is not None:
        raise NonFiniteError(bad)
    arrays = {"state/" + k: v for k, v in state.items()}
    if include_weights:
        arrays.update({"weights/" + k: v for k, v in backend.weights_dict().items()})
    arrays.update({"extra/" + k: v for k, v in (extra or {}).items()})
    if backend.process_index == 0:  # several processes: one writer
        save_arrays(path, arrays, {"format": STATE_FORMAT, "backend": model.backend,
                                   "info": info or {}})


def load_training_state(model: Any, path: str | os.PathLike,
                        check: Any = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Restore what ``save_training_state`` wrote; returns ``(info, extra arrays)``.

    The model must have been built (compiled and run on one batch) so that the optimizer
    state it restores into exists.

    Args:
        model: A built ``kp.Model`` of the same architecture and configuration.
        path: A file written by ``save_training_state`` or ``Model.save`` (whole-model
            files from ``ModelCheckpoint`` included).
        check: Optional ``fn(info, extra)`` run before anything is restored; it returns
            None, or a reason (str) why the file cannot serve, raised as "not a valid
            kompile file", and may raise its own error.

    Returns:
        ``(info, extra)``: the stored JSON dict and the extra arrays.
    """
    arrays, meta = load_arrays(path)
    if meta.get("format") not in (STATE_FORMAT, MODEL_FORMAT):  # a model file holds it too
        raise ValueError(f"{fspath(path)!r} holds weights only, not a training state; "
                         "use model.load_weights(path).")
    info = meta.get("info", {})
    extra = _strip(arrays, "extra/")
    if not isinstance(info, dict):
        raise InvalidFileError(path, "its training information is not a JSON object.")
    if check is not None:
        reason = check(info, extra)
        if reason:
            raise InvalidFileError(path, reason)
    if meta.get("backend") != model.backend:
        raise ValueError(f"{fspath(path)!r} was written by the {meta.get('backend')} "
                         f"backend; this model runs on {model.backend}.")
    state = _strip(arrays, "state/")
    backend = model._backend
    check_names(backend.state_dict(), state, f"training state in {fspath(path)!r}")
    backend.load_state_dict(state)
    return info, extra


def _strip(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


__all__ = ["InvalidFileError", "NonFiniteError", "atomic_write", "check_file_name",
           "check_folder", "first_nonfinite", "load_arrays", "load_training_state",
           "load_weights", "save_arrays", "save_training_state", "save_weights"]
