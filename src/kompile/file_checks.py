"""What a kompile file must hold, checked before anything in it is used.

kompile's files are safetensors files whose header carries one JSON string of metadata
(saving.py). A damaged or hostile file must fail with one clear error,
``'<path>' is not a valid kompile file: <field>: <reason>``, never a ``KeyError``, an
``AttributeError`` or a ``RecursionError`` from deep inside a load, and never an
allocation the file's size does not justify. This module owns those rules:

- the header's declared size is read from its first 8 bytes and bounded (``MAX_HEADER``)
  and must fit in the file, before safetensors parses it;
- the metadata's JSON nesting is bounded (``MAX_DEPTH``);
- every field of each format is checked for type and range (``check_meta``): ``format``,
  ``backend``, ``views``; a training state's ``info``; a whole-model file's
  ``compile_config``, ``dtype_policy``, ``output_names`` and ``info`` (epoch, history).
  BackupAndRestore checks the backup's own fields (callbacks/backup.py).

It also owns path handling shared by every writer: ``fspath`` (``str``, ``bytes`` and
``os.PathLike`` paths), the temporary name of an atomic write (never longer than the file
system's name limit) and the removal of temporary files a killed save left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Any

WEIGHTS_FORMAT = "kompile.weights"
STATE_FORMAT = "kompile.state"
MODEL_FORMAT = "kompile.model"
FORMATS = (WEIGHTS_FORMAT, STATE_FORMAT, MODEL_FORMAT)
BACKENDS = ("jax", "torch")
MAX_HEADER = 64 * 2**20  # bytes of safetensors header (array table and metadata)
MAX_DEPTH = 32  # JSON nesting of the metadata (kompile writes under 10)
RANDOM = 8  # characters tempfile.mkstemp adds to a prefix
COMPILE_KEYS = ("optimizer", "loss", "metrics", "weighted_metrics", "loss_weights",
                "run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss",
                "sample_weight_mode", "target_tensors")


class InvalidFileError(ValueError):
    """A file that kompile cannot read as one of its own (a ``ValueError``).

    Args:
        path: The file.
        reason: Why it cannot be read (``"<field>: <reason>"`` for a bad field),
            appended to the message.
    """

    def __init__(self, path: str | bytes | os.PathLike, reason: str):
        super().__init__(f"{fspath(path)!r} is not a valid kompile file: {reason}")


def fspath(path: Any, argument: str = "filepath") -> str:
    """``path`` as a ``str``: a ``str``, ``bytes`` (decoded as the OS does) or
    ``os.PathLike``; a TypeError naming ``argument`` for anything else.

    Args:
        path: The path given.
        argument: The argument it came from, named in the error.
    """
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"`{argument}` must be a file path (str, bytes or os.PathLike); "
                        f"received {type(path).__name__} {path!r}.") from None


# ---------------------------------------------------------------------------- reading
def check_header(path: str) -> None:
    """InvalidFileError when the header size the file declares is over ``MAX_HEADER`` or
    beyond the end of the file (safetensors would otherwise try to read it)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return  # safetensors reports it
    if len(head) < 9 or head[8:] != b"{":
        return  # empty, truncated or not safetensors: saving._unreadable says which
    (size,) = struct.unpack("<Q", head[:8])
    if size > MAX_HEADER:
        raise InvalidFileError(path, f"header: it declares {size} bytes, more than the "
                                     f"{MAX_HEADER} kompile reads.")
    if size + 8 > os.path.getsize(path):
        raise InvalidFileError(path, f"header: it declares {size} bytes but the file holds "
                                     f"{os.path.getsize(path) - 8}; it is truncated.")


def parse_meta(path: str, raw: str) -> dict[str, Any]:
    """The kompile metadata JSON, as a dict whose nesting is at most ``MAX_DEPTH``."""
    try:
        meta = json.loads(raw)
    except RecursionError:
        raise InvalidFileError(path, f"metadata: nested deeper than {MAX_DEPTH} levels.") \
            from None
    except ValueError as err:
        raise InvalidFileError(path, f"metadata: its kompile metadata is not valid JSON "
                                     f"({err}).") from None
    if not isinstance(meta, dict):
        raise InvalidFileError(path, "metadata: its kompile metadata is not a JSON object.")
    stack: list[tuple[Any, int]] = [(meta, 1)]
    while stack:  # iterative: a deep value must not exhaust the Python stack here
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidFileError(path, f"metadata: nested deeper than {MAX_DEPTH} levels.")
        children = value.values() if isinstance(value, dict) else value
        stack.extend((v, depth + 1) for v in children if isinstance(v, dict | list))
    return meta


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_number(v) for v in value)
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def history_problem(records: Any, field: str) -> str | None:
    """Why a stored History record (``{"epoch": [...], "history": {name: [...]}}``) is
    damaged, as ``"<field>: <reason>"``; None when it is sound."""
    if not isinstance(records, dict):
        return f"{field}: not a JSON object."
    epochs, logs = records.get("epoch"), records.get("history")
    if not isinstance(epochs, list) or not all(_is_int(e) for e in epochs):
        return f"{field}.epoch: not a list of epoch numbers (integers >= 0)."
    if epochs != sorted(set(epochs)):
        return f"{field}.epoch: the epochs {epochs[:8]} are not increasing."
    if not isinstance(logs, dict):
        return f"{field}.history: not a JSON object of log name -> values."
    for name, values in logs.items():
        if not isinstance(values, list) or not _is_number(values):
            return f"{field}.history[{name!r}]: not a list of numbers."
        if len(values) > len(epochs):
            return (f"{field}.history[{name!r}]: {len(values)} values for "
                    f"{len(epochs)} epochs.")
    return None


def check_meta(path: str, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
    """InvalidFileError naming the first field of ``meta`` that is missing, of the wrong
    type or out of range for its format."""
    kind = meta.get("format", WEIGHTS_FORMAT)
    if kind not in FORMATS:
        raise InvalidFileError(path, f"format: unknown format {kind!r} (expected one of "
                                     f"{', '.join(FORMATS)}).")
    backend = meta.get("backend")
    if (kind != WEIGHTS_FORMAT or backend is not None) and backend not in BACKENDS:
        raise InvalidFileError(path, f"backend: {backend!r} is not one of {BACKENDS}.")
    views = meta.get("views", {})
    if not isinstance(views, dict) or not all(isinstance(v, str) for v in views.values()):
        raise InvalidFileError(path, "views: not a JSON object of array name -> dtype name.")
    if any(k not in arrays for k in views):
        raise InvalidFileError(path, "views: its metadata names arrays the file does not hold.")
    if kind != WEIGHTS_FORMAT and not isinstance(meta.get("info", {}), dict):
        raise InvalidFileError(path, "info: its training information is not a JSON object.")
    if kind == STATE_FORMAT:
        info = meta.get("info", {})
        for key in ("epoch", "batch"):
            if info.get(key) is not None and not _is_int(info[key]):
                raise InvalidFileError(path, f"info.{key}: {info[key]!r} is not an integer "
                                             ">= 0.")
    if kind == MODEL_FORMAT:
        _check_model_meta(path, meta)


def _check_model_meta(path: str, meta: dict[str, Any]) -> None:
    config = meta.get("compile_config")
    if not isinstance(config, dict) or not config:
        raise InvalidFileError(path, "compile_config: missing or not a JSON object of compile "
                                     "arguments.")
    unknown = [k for k in config if k not in COMPILE_KEYS]
    if unknown:
        raise InvalidFileError(path, f"compile_config: unknown compile argument "
                                     f"{unknown[0]!r}.")
    if meta.get("dtype_policy") is not None and not isinstance(meta["dtype_policy"], str):
        raise InvalidFileError(path, "dtype_policy: not a policy name (str).")
    names = meta.get("output_names")
    if names is not None and not (isinstance(names, list)
                                  and all(isinstance(n, str) for n in names)):
        raise InvalidFileError(path, "output_names: not a list of output names (str).")
    info = meta.get("info", {})
    if not _is_int(info.get("epoch", 0)):
        raise InvalidFileError(path, f"info.epoch: {info.get('epoch')!r} is not an integer "
                                     ">= 0.")
    if info.get("history") is not None:
        problem = history_problem(info["history"], "info.history")
        if problem:
            raise InvalidFileError(path, problem)


# ---------------------------------------------------------------------------- writing
def _name_max(folder: str) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def temp_prefix(folder: str, base: str) -> str:
    """The prefix of the temporary file an atomic write of ``base`` in ``folder`` uses:
    ``.tmp-<base>-``, or, when that would make a name longer than the file system allows,
    a shortened ``base`` and a hash of the whole name (still one prefix per target)."""
    prefix = f".tmp-{base}-"
    limit = _name_max(folder)
    if len(os.fsencode(prefix)) + RANDOM <= limit:
        return prefix
    digest = hashlib.sha256(os.fsencode(base)).hexdigest()[:16]
    short = base
    while short and len(os.fsencode(f".tmp-{short}-{digest}-")) + RANDOM > limit:
        short = short[:-1]
    return f".tmp-{short}-{digest}-"


def remove_stale(folder: str, prefix: str, keep: str = "") -> None:
    """Remove temporary files of the same target left by a save that was killed (names
    ``prefix`` plus mkstemp's 8 characters; a longer name belongs to another target)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and len(name) == len(prefix) + RANDOM and name != keep:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass
