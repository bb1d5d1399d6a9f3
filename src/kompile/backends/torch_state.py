"""Checkpoint state of the torch backend as flat ``{name: np.ndarray}`` dicts.

Keys: ``module/<name>`` (the module's ``state_dict``), ``optimizer/state/<param index>/<slot>``
and ``optimizer/groups/<group index>/<hyperparameter>`` (the ``torch.optim`` state),
``loss_scale/scale`` and ``loss_scale/growth_tracker`` (the GradScaler), ``iterations``.
Flat NumPy dicts save with ``np.savez`` or safetensors and load on any device. This module
owns only the translation; the backend owns the objects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _np(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.dtype == torch.bfloat16:  # NumPy has no bfloat16; loading casts back
            value = value.float()
        return value.cpu().numpy().copy()  # a copy: CPU tensors share memory with .numpy()
    return np.asarray(value)


def _plain(value: Any) -> bool:
    """Hyperparameters that round-trip through an array: numbers, bools, tuples of numbers."""
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, tuple):
        return all(isinstance(v, int | float) for v in value)
    return isinstance(value, int | float)


def _like(template: Any, array: np.ndarray) -> Any:
    if isinstance(template, torch.Tensor):
        return torch.as_tensor(array, dtype=template.dtype, device=template.device)
    if isinstance(template, bool):
        return bool(array)
    if isinstance(template, int):
        return int(array)
    if isinstance(template, float):
        return float(array)
    return tuple(type(t)(a) for t, a in zip(template, array.tolist()))


def dump_module(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: _np(v) for k, v in module.state_dict().items()}


def load_module(module: torch.nn.Module, weights: dict[str, Any]) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"The weights do not match the module's state_dict: missing keys {missing}, "
            f"unexpected keys {unexpected}. Expected the keys {list(own)}.")
    for k, v in own.items():
        if tuple(np.shape(weights[k])) != tuple(v.shape):
            raise ValueError(f"Weight {k!r} has shape {tuple(np.shape(weights[k]))}; the module "
                             f"expects {tuple(v.shape)}.")
    module.load_state_dict({k: torch.as_tensor(np.asarray(weights[k])) for k in own})


def dump(backend: Any) -> dict[str, np.ndarray]:
    out = {f"module/{k}": v for k, v in dump_module(backend.module).items()}
    if backend.opt is not None:
        sd = backend.opt.state_dict()
        for index, slots in sd["state"].items():
            for slot, value in slots.items():
                out[f"optimizer/state/{index}/{slot}"] = _np(value)
        for g, group in enumerate(sd["param_groups"]):
            for key, value in group.items():
                if key != "params" and _plain(value):
                    out[f"optimizer/groups/{g}/{key}"] = _np(value)
    if backend.scaler is not None:
        sd = backend.scaler.state_dict()  # host sync
        out["loss_scale/scale"] = np.asarray(sd["scale"], np.float32)
        out["loss_scale/growth_tracker"] = np.asarray(sd["_growth_tracker"], np.int64)
    out["iterations"] = np.asarray(backend.iterations, np.int64)
    return out


def load(backend: Any, state: dict[str, Any]) -> None:
    module = {k[len("module/"):]: v for k, v in state.items() if k.startswith("module/")}
    if module:
        load_module(backend.module, module)
    rest = {k: v for k, v in state.items() if not k.startswith("module/")}
    if backend.objective is None:  # not built yet: the optimizer exists from the first batch
        backend._pending = rest or None
        return
    if backend.opt is not None:
        _load_optimizer(backend.opt, rest)
    elif "iterations" in rest:
        backend._steps = int(rest["iterations"])
    if backend.scaler is not None and "loss_scale/scale" in rest:
        sd = backend.scaler.state_dict()
        sd["scale"] = float(rest["loss_scale/scale"])
        sd["_growth_tracker"] = int(rest.get("loss_scale/growth_tracker", 0))
        backend.scaler.load_state_dict(sd)


def _load_optimizer(opt: Any, state: dict[str, Any]) -> None:
    sd = opt.state_dict()
    slots: dict[int, dict[str, Any]] = {}
    for key, value in state.items():
        parts = key.split("/")
        if parts[:2] == ["optimizer", "state"]:
            slots.setdefault(int(parts[2]), {})[parts[3]] = torch.as_tensor(np.asarray(value))
        elif parts[:2] == ["optimizer", "groups"]:
            group = sd["param_groups"][int(parts[2])]
            if parts[3] in group:
                group[parts[3]] = _like(group[parts[3]], np.asarray(value))
    sd["state"] = slots
    opt.load_state_dict(sd)
