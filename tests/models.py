"""Test models, each written once per backend with the same initial weights.

``build(backend, kind, **kw)`` returns a module: ``identity`` (no parameters),
``linear`` (Dense with given initial weights), ``mlp`` (softmax output), ``multi`` (dict outputs of
different shapes), ``tuple`` (tuple outputs), ``dropout_bn`` (train/eval behaviour),
``heads`` (fixed sigmoid heads of any per-sample shape, returned as a dict, tuple, list or
single array; ``heads_numpy`` is their NumPy reference), ``multi_input`` (a dict or tuple of
inputs to a tuple of outputs), ``passthrough`` (returns named entries of a dict input, so
predictions are exactly the inputs).
"""

from __future__ import annotations

import importlib.util

import numpy as np


def torch_ready() -> bool:
    return (importlib.util.find_spec("torch") is not None
            and importlib.util.find_spec("kompile.backends.torch") is not None)


def head_seed(name: str, shape: tuple[int, ...]) -> int:
    """Each head's weights depend on its name and shape, never on its position."""
    return sum(ord(c) * (i + 1) for i, c in enumerate(name)) + 7 * sum(shape) + len(shape)


def heads_numpy(x: np.ndarray, heads) -> dict[str, np.ndarray]:
    """The NumPy reference of the ``heads`` model, keyed by head name."""
    out = {}
    for name, shape in heads:
        w, b = init_weights(x.shape[1], int(np.prod(shape, dtype=int)), head_seed(name, shape))
        z = x.astype(np.float64) @ w + b
        out[name] = (1.0 / (1.0 + np.exp(-z))).reshape((x.shape[0], *shape))
    return out


def _fill(template, out: dict):
    """``template`` (a nesting of dicts, lists, tuples and namedtuples whose leaves are head
    names) with each head name replaced by that head's output."""
    if isinstance(template, dict):
        return {k: _fill(v, out) for k, v in template.items()}
    if isinstance(template, tuple) and hasattr(template, "_fields"):
        return type(template)(*[_fill(v, out) for v in template])
    if isinstance(template, list | tuple):
        return type(template)(_fill(v, out) for v in template)
    return out[template]


def _pack(out: dict, structure):
    if not isinstance(structure, str):  # a template of head names, nested to any depth
        return _fill(structure, out)
    if structure == "dict":
        return out
    if structure == "nested":  # heads named g_1, g_2, ... become one inner tuple under "g"
        packed: dict = {}
        for name, value in out.items():
            if name.startswith("g_"):
                packed.setdefault("g", []).append(value)
            else:
                packed[name] = value
        return {k: tuple(v) if k == "g" else v for k, v in packed.items()}
    if structure == "single":
        return next(iter(out.values()))
    return tuple(out.values()) if structure == "tuple" else list(out.values())


def init_weights(n_in: int, n_out: int, seed: int = 0):
    r = np.random.default_rng(seed)
    return (r.normal(0, 0.3, (n_in, n_out)).astype(np.float32),
            r.normal(0, 0.1, (n_out,)).astype(np.float32))


# ----------------------------------------------------------------------------- flax
def _flax(kind, **kw):
    import jax.numpy as jnp
    from flax import nnx

    class Identity(nnx.Module):
        def __call__(self, x):
            return x

    class Dense(nnx.Module):
        def __init__(self, n_in, n_out, seed=0):
            w, b = init_weights(n_in, n_out, seed)
            self.kernel, self.bias = nnx.Param(jnp.asarray(w)), nnx.Param(jnp.asarray(b))

        def __call__(self, x):
            return x @ self.kernel + self.bias

    class MLP(nnx.Module):
        def __init__(self, n_in, hidden, n_out):
            self.l1, self.l2 = Dense(n_in, hidden, 1), Dense(hidden, n_out, 2)

        def __call__(self, x):
            return nnx.softmax(self.l2(nnx.relu(self.l1(x))))

    class Multi(nnx.Module):
        """Dict outputs of different shapes, in a non-sorted key order."""

        def __init__(self, n_in, dict_out=True):
            self.z, self.a, self.m = Dense(n_in, 3, 3), Dense(n_in, 1, 4), Dense(n_in, 5, 5)
            self.dict_out = dict_out

        def __call__(self, x):
            out = {"z": self.z(x), "a": self.a(x), "m": nnx.softmax(self.m(x))}
            return out if self.dict_out else (out["z"], out["a"], out["m"])

    class DropoutBN(nnx.Module):
        def __init__(self, n_in, n_out):
            self.dense = Dense(n_in, n_out)
            self.bn = nnx.BatchNorm(n_out, rngs=nnx.Rngs(0))
            self.drop = nnx.Dropout(0.5, rngs=nnx.Rngs(1))

        def __call__(self, x):
            return self.drop(self.bn(self.dense(x)))


    class Heads(nnx.Module):
        """Sigmoid heads; ``heads`` is a sequence of (name, per-sample shape)."""

        def __init__(self, n_in, heads, structure):
            self.heads = [(n, tuple(s)) for n, s in heads]
            self.layers = nnx.List([Dense(n_in, int(np.prod(s, dtype=int)), head_seed(n, s))
                                    for n, s in self.heads])
            self.structure = structure

        def __call__(self, x):
            out = {name: nnx.sigmoid(layer(x)).reshape((x.shape[0], *shape))
                   for (name, shape), layer in zip(self.heads, self.layers)}
            return _pack(out, self.structure)

    class Passthrough(nnx.Module):
        """Returns the entries ``names`` of a dict input, packed as ``structure``."""

        def __init__(self, names, structure):
            self.names, self.structure = list(names), structure

        def __call__(self, x):
            return _pack({n: x[n] for n in self.names}, self.structure)

    class MultiInput(nnx.Module):
        """Inputs {"b": (N, 3), "a": (N, 2)} (or a tuple (a, b)) to outputs (N, 2), (N,)."""

        def __init__(self):
            self.da, self.db = Dense(2, 2, 11), Dense(3, 1, 12)

        def __call__(self, x):
            a, b = (x["a"], x["b"]) if isinstance(x, dict) else x
            return self.da(a) + b[:, :2], self.db(b)[:, 0] + a[:, 0]

    return {
        "identity": lambda: Identity(),
        "linear": lambda: Dense(kw.get("n_in", 4), kw.get("n_out", 1), kw.get("seed", 0)),
        "mlp": lambda: MLP(kw.get("n_in", 8), kw.get("hidden", 16), kw.get("n_out", 3)),
        "multi": lambda: Multi(kw.get("n_in", 4)),
        "tuple": lambda: Multi(kw.get("n_in", 4), dict_out=False),
        "dropout_bn": lambda: DropoutBN(kw.get("n_in", 4), kw.get("n_out", 2)),
        "heads": lambda: Heads(kw.get("n_in", 4), kw["heads"], kw.get("structure", "dict")),
        "multi_input": lambda: MultiInput(),
        "passthrough": lambda: Passthrough(kw["names"], kw.get("structure", "dict")),
    }[kind]()


# ----------------------------------------------------------------------------- torch
def _torch(kind, **kw):
    import torch
    from torch import nn

    class Identity(nn.Module):
        def forward(self, x):
            return x

    class Dense(nn.Module):
        def __init__(self, n_in, n_out, seed=0):
            super().__init__()
            w, b = init_weights(n_in, n_out, seed)
            self.kernel = nn.Parameter(torch.from_numpy(w))
            self.bias = nn.Parameter(torch.from_numpy(b))

        def forward(self, x):
            return x @ self.kernel + self.bias

    class MLP(nn.Module):
        def __init__(self, n_in, hidden, n_out):
            super().__init__()
            self.l1, self.l2 = Dense(n_in, hidden, 1), Dense(hidden, n_out, 2)

        def forward(self, x):
            return torch.softmax(self.l2(torch.relu(self.l1(x))), -1)

    class Multi(nn.Module):
        def __init__(self, n_in, dict_out=True):
            super().__init__()
            self.z, self.a, self.m = Dense(n_in, 3, 3), Dense(n_in, 1, 4), Dense(n_in, 5, 5)
            self.dict_out = dict_out

        def forward(self, x):
            out = {"z": self.z(x), "a": self.a(x), "m": torch.softmax(self.m(x), -1)}
            return out if self.dict_out else (out["z"], out["a"], out["m"])

    class DropoutBN(nn.Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.dense = Dense(n_in, n_out)
            self.bn = nn.BatchNorm1d(n_out)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return self.drop(self.bn(self.dense(x)))


    class Heads(nn.Module):
        def __init__(self, n_in, heads, structure):
            super().__init__()
            self.heads = [(n, tuple(s)) for n, s in heads]
            self.layers = nn.ModuleList([Dense(n_in, int(np.prod(s, dtype=int)), head_seed(n, s))
                                         for n, s in self.heads])
            self.structure = structure

        def forward(self, x):
            out = {name: torch.sigmoid(layer(x)).reshape((x.shape[0], *shape))
                   for (name, shape), layer in zip(self.heads, self.layers)}
            return _pack(out, self.structure)

    class Passthrough(nn.Module):
        def __init__(self, names, structure):
            super().__init__()
            self.names, self.structure = list(names), structure

        def forward(self, x):
            return _pack({n: x[n] for n in self.names}, self.structure)

    class MultiInput(nn.Module):
        def __init__(self):
            super().__init__()
            self.da, self.db = Dense(2, 2, 11), Dense(3, 1, 12)

        def forward(self, x):
            a, b = (x["a"], x["b"]) if isinstance(x, dict) else x
            return self.da(a) + b[:, :2], self.db(b)[:, 0] + a[:, 0]

    return {
        "identity": lambda: Identity(),
        "linear": lambda: Dense(kw.get("n_in", 4), kw.get("n_out", 1), kw.get("seed", 0)),
        "mlp": lambda: MLP(kw.get("n_in", 8), kw.get("hidden", 16), kw.get("n_out", 3)),
        "multi": lambda: Multi(kw.get("n_in", 4)),
        "tuple": lambda: Multi(kw.get("n_in", 4), dict_out=False),
        "dropout_bn": lambda: DropoutBN(kw.get("n_in", 4), kw.get("n_out", 2)),
        "heads": lambda: Heads(kw.get("n_in", 4), kw["heads"], kw.get("structure", "dict")),
        "multi_input": lambda: MultiInput(),
        "passthrough": lambda: Passthrough(kw["names"], kw.get("structure", "dict")),
    }[kind]()


def build(backend: str, kind: str, **kw):
    return _flax(kind, **kw) if backend == "jax" else _torch(kind, **kw)
