"""Shared fixtures: a ``backend`` fixture and small models for each backend.

Every end-to-end test that is not JAX-specific takes ``backend`` and builds its models
through ``make_model``, so it runs on JAX (Flax NNX) and on torch.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from . import models  # noqa: E402

BACKENDS = ["jax", "torch"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param == "torch":
        pytest.importorskip("torch")
        if not models.torch_ready():
            pytest.skip("the torch backend is not available yet")
    return request.param


@pytest.fixture
def make_model(backend):
    def make(kind, **kwargs):
        return models.build(backend, kind, **kwargs)

    return make


@pytest.fixture
def rng():
    return np.random.default_rng(0)
