"""The array-API namespace and the few functions the standard lacks.

Losses and metrics are written once against ``xp = namespace(...)``: jax.numpy, torch
(through array-api-compat) and NumPy all work, inside ``jax.jit`` and under autograd.
Everything here is pure and written with standard functions only.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace, device

EPSILON = 1e-7  # Keras's backend epsilon, used by every clipped log


def namespace(*arrays: Any) -> Any:
    return array_namespace(*[a for a in arrays if a is not None])


def as_float(xp: Any, x: Any, like: Any = None) -> Any:
    """Cast ``x`` to ``like``'s float dtype (float32 when ``like`` is not floating)."""
    dtype = like.dtype if like is not None and xp.isdtype(like.dtype, "real floating") else None
    dtype = dtype or xp.float32
    if not hasattr(x, "dtype"):
        return xp.asarray(x, dtype=dtype)
    return x if x.dtype == dtype else xp.astype(x, dtype)


def _native(xp: Any) -> str:
    """'jax', 'torch' or '' (generic): the few functions below use a fused native kernel
    where the library has one (fewer kernels per step), and standard functions otherwise."""
    name = getattr(xp, "__name__", "")
    return "jax" if name.startswith("jax") else "torch" if name.endswith("torch") else ""


def logsumexp(xp: Any, x: Any, axis: int = -1, keepdims: bool = False) -> Any:
    native = _native(xp)
    if native == "jax":
        import jax

        return jax.nn.logsumexp(x, axis=axis, keepdims=keepdims)
    if native == "torch":
        import torch

        return torch.logsumexp(x, dim=axis, keepdim=keepdims)
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else xp.squeeze(out, axis=axis)


def log_softmax(xp: Any, x: Any, axis: int = -1) -> Any:
    native = _native(xp)
    if native == "jax":
        import jax

        return jax.nn.log_softmax(x, axis=axis)
    if native == "torch":
        import torch

        return torch.log_softmax(x, dim=axis)
    return x - logsumexp(xp, x, axis=axis, keepdims=True)


def softmax(xp: Any, x: Any, axis: int = -1) -> Any:
    return xp.exp(log_softmax(xp, x, axis=axis))


def sigmoid(xp: Any, x: Any) -> Any:
    return 1.0 / (1.0 + xp.exp(-x))


def softplus(xp: Any, x: Any) -> Any:
    # log(1 + exp(x)) without overflow
    return xp.maximum(x, xp.zeros_like(x)) + xp.log1p(xp.exp(-xp.abs(x)))


def one_hot(xp: Any, labels: Any, depth: int, dtype: Any = None) -> Any:
    classes = xp.arange(depth, dtype=labels.dtype, device=device(labels))
    return xp.astype(labels[..., None] == classes, dtype or xp.float32)


def take_along_last(xp: Any, x: Any, index: Any) -> Any:
    """``x[..., index]`` per row: gathers one entry of the last axis for every position."""
    native = _native(xp)
    if native == "jax":
        import jax.numpy as jnp

        return jnp.take_along_axis(x, index[..., None], axis=-1)[..., 0]
    if native == "torch":
        import torch

        return torch.gather(x, -1, index[..., None].long())[..., 0]
    return xp.sum(x * one_hot(xp, index, x.shape[-1], dtype=x.dtype), axis=-1)


def in_top_k(xp: Any, predictions: Any, targets: Any, k: int) -> Any:
    """Whether the target class is among the k largest predictions (ties count as in)."""
    target_score = take_along_last(xp, predictions, targets)
    larger = xp.sum(xp.astype(predictions > target_score[..., None], xp.int32), axis=-1)
    return larger < k


def l2_normalize(xp: Any, x: Any, axis: int = -1) -> Any:
    square_sum = xp.sum(x * x, axis=axis, keepdims=True)
    return x / xp.sqrt(xp.maximum(square_sum, xp.full_like(square_sum, 1e-12)))


def size(x: Any) -> int:
    n = 1
    for d in x.shape:
        n *= int(d)
    return n
