"""Checkpoint state of the torch backend as flat ``{name: np.ndarray}`` dicts.

Keys: ``module/<name>`` (the module's ``state_dict``), ``optimizer/state/<param index>/<slot>``
and ``optimizer/groups/<group index>/<hyperparameter>`` (the ``torch.optim`` state),
``loss_scale/scale`` and ``loss_scale/growth_tracker`` (the GradScaler),
``metrics/<log>/<sum>`` (the running training metrics) and ``iterations``.
Flat NumPy dicts save with ``np.savez`` or safetensors and load on any device. This module
owns only the translation; the backend owns the objects.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from . import torch_accumulate


def _np(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = full(value.detach())
        if value.dtype == torch.bfloat16:  # NumPy has no bfloat16; loading casts back
            value = value.float()
        return value.cpu().numpy().copy()  # a copy: CPU tensors share memory with .numpy()
    return np.asarray(value)


def full(value: Any) -> Any:
    """A sharded ``DTensor`` (FSDP) gathered whole: a collective, every process takes part;
    other values as they are."""
    return value.full_tensor() if hasattr(value, "full_tensor") else value


def onto(template: Any, value: torch.Tensor) -> torch.Tensor:
    """``value`` (whole) sharded like ``template`` when that is a ``DTensor`` (FSDP)."""
    if not hasattr(template, "device_mesh"):
        return value
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(value.to(template.device, template.dtype), template.device_mesh,
                             template.placements)


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
    module.load_state_dict({k: onto(v, torch.as_tensor(np.asarray(weights[k])))
                            for k, v in own.items()})


def dump(backend: Any) -> dict[str, np.ndarray]:
    if backend.objective is None:
        raise ValueError("The model has no training state yet: compile it and run fit() or "
                         "train_on_batch() once, so that its optimizer state exists.")
    out = {f"module/{k}": v for k, v in dump_module(backend.module).items()}
    if backend.opt is not None:
        sd = backend.opt.state_dict()
        if not sd["state"] and backend._slots is None:
            backend._slots = _first_step_slots(backend.opt)
        for index, values in (sd["state"] or backend._slots).items():
            for slot, value in values.items():
                if value is not None:
                    out[f"optimizer/state/{index}/{slot}"] = _np(value)
        for g, group in enumerate(sd["param_groups"]):
            for key, value in group.items():
                if key != "params" and _plain(value):
                    out[f"optimizer/groups/{g}/{key}"] = _np(value)
    if backend.scaler is not None:
        sd = backend.scaler.state_dict()  # host sync
        out["loss_scale/scale"] = np.asarray(sd["scale"], np.float32)
        out["loss_scale/growth_tracker"] = np.asarray(sd["_growth_tracker"], np.int64)
    for log, values in backend.metrics["train"].items():
        for key, value in values.items():
            out[f"metrics/{log}/{key}"] = _np(value)
    out["iterations"] = np.asarray(backend.iterations, np.int64)
    out.update(torch_accumulate.extra_state(backend))
    return out


def _first_step_slots(opt: Any) -> dict[int, dict[str, Any]]:
    """The slots ``opt`` will hold after its first step (names and shapes; the values mean
    nothing), from one zero-gradient step of a same-class optimizer on parameter copies.
    torch creates optimizer state lazily, so before the first step (or while a loss scale
    skips steps) this gives the state the same names and shapes as later, and a checkpoint
    restores into a fresh model."""
    params = [p.detach().clone() for group in opt.param_groups for p in group["params"]]
    for p in params:
        p.grad = torch.zeros_like(p)
    twin = type(opt)(params, **opt.defaults)
    for group, mine in zip(twin.param_groups, opt.param_groups):
        group.update({k: v for k, v in mine.items() if k in ("fused", "foreach")})
    twin.step()
    return twin.state_dict()["state"]


def load(backend: Any, state: dict[str, Any]) -> None:
    expected = dump(backend)
    missing = [k for k in expected if k not in state]
    if missing:
        raise ValueError(f"load_state_dict: the arrays lack {missing[:6]} ({len(missing)} "
                         "missing).")
    load_module(backend.module, {k[len("module/"):]: v for k, v in state.items()
                                 if k.startswith("module/")})
    if backend.opt is not None:
        _load_optimizer(backend.opt, state)
    backend._steps = int(state["iterations"])
    if backend.scaler is not None:
        sd = backend.scaler.state_dict()
        sd["scale"] = float(state["loss_scale/scale"])
        sd["_growth_tracker"] = int(state["loss_scale/growth_tracker"])
        backend.scaler.load_state_dict(sd)
    torch_accumulate.load_extra_state(backend, state)
    device = backend.device
    backend.metrics["train"] = {
        log: {key: torch.as_tensor(np.asarray(state[f"metrics/{log}/{key}"]), device=device)
              for key in values}
        for log, values in backend.metrics["train"].items()}


def _load_optimizer(opt: Any, state: dict[str, Any]) -> None:
    sd = opt.state_dict()
    params = [p for group in opt.param_groups for p in group["params"]]
    slots: dict[int, dict[str, Any]] = {}
    for key, value in state.items():
        parts = key.split("/")
        if parts[:2] == ["optimizer", "state"]:
            slot, param = torch.as_tensor(np.asarray(value)), params[int(parts[2])]
            if slot.dim() and slot.shape == param.shape:  # a moment: sharded like its param
                slot = onto(param, slot)
            slots.setdefault(int(parts[2]), {})[parts[3]] = slot
        elif parts[:2] == ["optimizer", "groups"]:
            group = sd["param_groups"][int(parts[2])]
            if parts[3] in group:
                group[parts[3]] = _like(group[parts[3]], np.asarray(value))
    sd["state"] = slots
    opt.load_state_dict(sd)


def global_rng() -> dict[str, np.ndarray]:
    """torch's CPU generator and, once CUDA is initialised, every device's (a module on a
    GPU draws its dropout masks from the devices' generators)."""
    out = {"torch_rng": torch.random.get_rng_state().numpy()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["torch_cuda_rng"] = np.stack([s.numpy() for s in torch.cuda.get_rng_state_all()])
    return out


def restore_global_rng(arrays: dict[str, Any]) -> None:
    """What ``global_rng`` returned; CUDA states only on as many devices as were saved."""
    if "torch_rng" not in arrays:
        return
    torch.random.set_rng_state(torch.from_numpy(np.array(arrays["torch_rng"], copy=True)))
    cuda = arrays.get("torch_cuda_rng")
    if cuda is None:
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count != len(cuda):
        warnings.warn(f"BackupAndRestore: the backup holds the RNG states of {len(cuda)} CUDA "
                      f"devices and this process sees {count}; they are not restored, so "
                      "dropout on a GPU will draw other masks than the interrupted run.",
                      stacklevel=4)
        return
    torch.cuda.set_rng_state_all([torch.from_numpy(np.array(s, copy=True)) for s in cuda])
