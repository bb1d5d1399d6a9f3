"""TensorBoard(profile_batch=...) writes a profiler trace: JAX's xplane.pb, torch's Chrome-trace
JSON, under log_dir/train; bad values are refused naming the argument."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kompile as kp
from kompile.backends import profiling

pytest.importorskip("tensorboardX")

X = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
Y = X.sum(1, keepdims=True)


def _module(backend):
    if backend == "jax":
        from flax import nnx

        return nnx.Linear(4, 1, rngs=nnx.Rngs(0))
    import torch

    return torch.nn.Linear(4, 1)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_profile_batch_range_writes_a_trace(backend, tmp_path):
    pytest.importorskip("flax" if backend == "jax" else "torch")
    model = kp.Model(_module(backend)).compile("sgd", "mse")
    tb = kp.callbacks.TensorBoard(tmp_path / "logs", profile_batch=(2, 3))
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0, callbacks=[tb])
    files = profiling.trace_files(str(tmp_path / "logs" / "train"))
    assert len(files) == 1, files
    if backend == "torch":
        with open(files[0]) as f:
            events = json.load(f)["traceEvents"]
        assert any("aten::" in str(e.get("name")) for e in events)
    else:
        with open(files[0], "rb") as f:
            assert len(f.read()) > 100


def test_profile_batch_past_the_data_still_closes_and_bad_values_are_refused(tmp_path):
    pytest.importorskip("torch")
    model = kp.Model(_module("torch")).compile("sgd", "mse")
    tb = kp.callbacks.TensorBoard(tmp_path / "logs", profile_batch=(3, 100))  # 4 batches
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0, callbacks=[tb])
    assert len(profiling.trace_files(str(tmp_path / "logs"))) == 1
    for bad in (-1, (3, 2), (0, 2), "2", (1, 2, 3), True):
        with pytest.raises(ValueError, match="profile_batch"):
            kp.callbacks.TensorBoard(tmp_path, profile_batch=bad)
