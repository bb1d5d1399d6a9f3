"""The models of Keras's own trainer/model/compile_utils tests, rewritten per backend.

Used by ``tests/test_keras_*.py`` (translations of ``keras/src/trainers/compile_utils_test.py``,
``keras/src/models/model_test.py`` and ``keras/src/trainers/trainer_test.py``).

* ``ones_dense(backend, n_in, units)``: Keras's ``ExampleModel``, a ``Dense(units, use_bias=False,
  kernel_initializer="ones")``.
* ``struct_model``: Keras's ``StructModel`` (dict input ``x_one``/``x_two`` to dict output
  ``y_one``/``y_two``, each a ones-initialised Dense).
* ``list_input_model`` / ``list_output_model``: Keras's ``ListInputModel`` / ``ListOutputModel``.
* ``training_model``: Keras's ``TrainingTestingLayer`` (``x`` in training, zeros otherwise); on
  Flax it declares ``training`` in ``__call__`` as Keras does, on torch it reads ``self.training``.
* ``packed(backend, pack)``: no parameters; returns ``pack(x)`` where ``x`` is the (dict) input,
  so a test chooses any output structure and knows the predictions exactly.
* ``sigmoid_heads(backend, n_in, names, pack)``: one ``Dense(1, sigmoid)`` per name (Keras's
  functional test models), packed by ``pack(dict_of_heads)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _seed(name: str) -> int:
    return sum(ord(c) * (i + 1) for i, c in enumerate(name))


def _flax_dense(n_in: int, units: int, ones: bool = True, seed: int = 0, bias: bool = False):
    import jax.numpy as jnp
    from flax import nnx

    class Dense(nnx.Module):
        def __init__(self):
            r = np.random.default_rng(seed)
            w = np.ones((n_in, units)) if ones else r.normal(0, 0.5, (n_in, units))
            self.kernel = nnx.Param(jnp.asarray(w, jnp.float32))
            self.bias = nnx.Param(jnp.zeros((units,), jnp.float32)) if bias else None

        def __call__(self, x):
            out = x @ self.kernel
            return out if self.bias is None else out + self.bias

    return Dense()


def _torch_dense(n_in: int, units: int, ones: bool = True, seed: int = 0, bias: bool = False):
    import torch
    from torch import nn

    layer = nn.Linear(n_in, units, bias=bias)
    with torch.no_grad():
        r = np.random.default_rng(seed)
        w = np.ones((n_in, units)) if ones else r.normal(0, 0.5, (n_in, units))
        layer.weight.copy_(torch.from_numpy(w.T.astype(np.float32)))
        if bias:
            layer.bias.zero_()
    return layer


def dense(backend: str, n_in: int, units: int, ones: bool = True, seed: int = 0,
          bias: bool = False):
    make = _flax_dense if backend == "jax" else _torch_dense
    return make(n_in, units, ones, seed, bias)


def ones_dense(backend: str, n_in: int, units: int):
    """Keras's ``ExampleModel(units)``: Dense, no bias, kernel of ones."""
    return dense(backend, n_in, units)


def struct_model(backend: str, n_in: int = 4, units: int = 3):
    if backend == "jax":
        from flax import nnx

        class Struct(nnx.Module):
            def __init__(self):
                self.dense_1 = dense(backend, n_in, units)
                self.dense_2 = dense(backend, n_in, units)

            def __call__(self, x):
                return {"y_one": self.dense_1(x["x_one"]), "y_two": self.dense_2(x["x_two"])}

        return Struct()
    from torch import nn

    class TStruct(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense_1 = dense(backend, n_in, units)
            self.dense_2 = dense(backend, n_in, units)

        def forward(self, x):
            return {"y_one": self.dense_1(x["x_one"]), "y_two": self.dense_2(x["x_two"])}

    return TStruct()


def list_input_model(backend: str, units: int = 2, n_in: tuple[int, int] = (2, 3)):
    def call(self, x):
        if not isinstance(x, (list, tuple)):
            raise ValueError("x must be a list or tuple")
        return self.dense_1(x[0]) + self.dense_2(x[1])

    return _two_dense(backend, n_in, units, call)


def list_output_model(backend: str, units: int = 3, n_in: int = 4):
    def call(self, x):
        return [self.dense_1(x), self.dense_2(x)]

    return _two_dense(backend, (n_in, n_in), units, call)


def _two_dense(backend: str, n_in: tuple[int, int], units: int, call: Callable[..., Any]):
    if backend == "jax":
        from flax import nnx

        class Two(nnx.Module):
            def __init__(self):
                self.dense_1 = dense(backend, n_in[0], units)
                self.dense_2 = dense(backend, n_in[1], units)

            def __call__(self, x):
                return call(self, x)

        return Two()
    from torch import nn

    class TTwo(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense_1 = dense(backend, n_in[0], units)
            self.dense_2 = dense(backend, n_in[1], units)

        def forward(self, x):
            return call(self, x)

    return TTwo()


def training_model(backend: str):
    """Keras's ``TrainingTestingLayer``: ``x`` when training, ``x * 0`` otherwise."""
    if backend == "jax":
        from flax import nnx

        class TrainingTesting(nnx.Module):
            def __call__(self, x, training=False):
                return x if training else x * 0

        return TrainingTesting()
    from torch import nn

    class TTrainingTesting(nn.Module):
        def forward(self, x):
            return x if self.training else x * 0

    return TTrainingTesting()


def packed(backend: str, pack: Callable[[Any], Any]):
    """No parameters: returns ``pack(x)``."""
    if backend == "jax":
        from flax import nnx

        class Packed(nnx.Module):
            def __init__(self):
                self.pack = pack

            def __call__(self, x):
                return self.pack(x)

        return Packed()
    from torch import nn

    class TPacked(nn.Module):
        def __init__(self):
            super().__init__()
            self.pack = pack

        def forward(self, x):
            return self.pack(x)

    return TPacked()


def sigmoid_heads(backend: str, names: tuple[str, ...], pack: Callable[[dict], Any],
                  n_in: int = 3, activations: tuple[bool, ...] | None = None):
    """One ``Dense(1)`` per name (sigmoid unless ``activations`` says otherwise), packed."""
    acts = activations or tuple(True for _ in names)
    if backend == "jax":
        from flax import nnx

        class Heads(nnx.Module):
            def __init__(self):
                self.layers = nnx.List([dense(backend, n_in, 1, ones=False, seed=_seed(n),
                                              bias=True) for n in names])
                self.pack = pack

            def __call__(self, x):
                return self.pack({n: nnx.sigmoid(layer(x)) if a else layer(x)
                                  for n, a, layer in zip(names, acts, self.layers)})

        return Heads()
    import torch
    from torch import nn

    class THeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([dense(backend, n_in, 1, ones=False, seed=_seed(n),
                                               bias=True) for n in names])
            self.pack = pack

        def forward(self, x):
            return self.pack({n: torch.sigmoid(layer(x)) if a else layer(x)
                              for n, a, layer in zip(names, acts, self.layers)})

    return THeads()
