"""ModelParallel (JAX): sharded parameters and optimizer state on 4 host CPU devices train
like one device; the compiled step keeps the layouts; per-device bytes shrink."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from .compare import assert_close

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "jax_model_parallel.py")


@pytest.fixture(scope="module")
def results():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    out = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _results(run):
    return {k: run[k] for k in ("history", "evaluate", "predict", "weights")}


@pytest.mark.distributed
@pytest.mark.parametrize("kind", ["mlp", "block", "fused", "fsdp", "fsdp_class"])
def test_sharded_training_equals_one_device(results, kind):
    """MLP (LayoutMap), transformer block (LayoutMap + nnx.with_partitioning), fused
    (paced) calls, every kernel split over the whole mesh (a LayoutMap, and FSDP())."""
    one, mp = results[kind]["one"], results[kind]["mp"]
    assert len(one["history"]["loss"]) == 2
    assert_close(_results(one), _results(mp), tol=1e-5)


@pytest.mark.distributed
def test_mixed_precision_sharded(results):
    one, mp = results["mixed"]["one"], results["mixed"]["mp"]
    # bfloat16 compute: sums in another order differ by bf16 rounding, not more
    assert_close(one["history"], mp["history"], tol=1e-2)
    assert mp["layouts"]["out"] == mp["layouts"]["state"]


@pytest.mark.distributed
@pytest.mark.parametrize("kind", ["mlp", "block", "fsdp"])
def test_compiled_step_keeps_the_layouts(results, kind):
    lay = results[kind]["mp"]["layouts"]
    assert lay["hlo_sharded"]  # the HLO carries tiled shardings
    assert lay["in"] == lay["state"] and lay["out"] == lay["state"]
    assert any("devices=" in s for s in lay["state"])  # something really is split
    # the optimizer state is laid out like the parameters (moments split the same way)
    assert any("model" in s for s in lay["opt_out"])


@pytest.mark.distributed
def test_layouts_follow_the_layout_map_and_annotations(results):
    lay = results["block"]["mp"]["layouts"]
    block = dict(zip(lay["names"], lay["state"]))
    heads = "{devices=[1,2,1,2]<=[2,2]T(1,0) last_tile_dim_replicate}"  # (d, heads, head_dim)
    # q/k/v split on heads, out on its first axis (LayoutMap)
    assert block["attn/query/kernel"] == block["attn/key/kernel"] == heads
    assert block["attn/value/kernel"] == heads
    assert block["attn/out/kernel"] == "{devices=[2,1,1,2]<=[2,2]T(1,0) last_tile_dim_replicate}"
    # down/up by their nnx.with_partitioning annotations
    assert block["down/kernel"] == "{devices=[2,1,2]<=[2,2]T(1,0) last_tile_dim_replicate}"
    assert block["up/kernel"] == "{devices=[1,2,2]<=[2,2]T(1,0) last_tile_dim_replicate}"
    assert block["ln1/scale"] == block["head/kernel"] == "{replicated}"


@pytest.mark.distributed
def test_per_device_bytes(results):
    one = results["mlp"]["one"]["bytes"]
    # half the weights split 2 ways: clearly less; every kernel split 4 ways: <= 0.3x
    assert results["mlp"]["mp"]["bytes"] < 0.6 * one
    assert results["fsdp"]["mp"]["bytes"] <= 0.3 * one
    assert results["fsdp_class"]["mp"]["bytes"] <= 0.3 * one
    np.testing.assert_equal(results["fused"]["mp"]["bytes"], results["mlp"]["mp"]["bytes"])


@pytest.mark.distributed
def test_bad_layouts_are_clear_errors(results):
    err = results["errors"]
    assert "'head/bias'" in err["indivisible"] and "size 3" in err["indivisible"]
    assert "('data',)" in err["axis"] and "('batch', 'model')" in err["axis"]


def test_layout_map_lookup():
    import kompile as kp

    mesh = kp.distribution.DeviceMesh((1, 1), ["batch", "model"])
    layout_map = kp.distribution.LayoutMap(mesh)
    layout_map["dense.*kernel"] = (None, "model")
    layout_map["dense_2/kernel"] = ("model", None)
    assert layout_map["dense_1/kernel"] == (None, "model")  # regex search
    assert layout_map["dense_2/kernel"] == ("model", None)  # exact key first
    layout_map["_1/.*"] = None
    with pytest.raises(ValueError, match="matches several LayoutMap keys"):
        layout_map["dense_1/kernel"]
    with pytest.raises(KeyError):
        layout_map["conv/kernel"]
    with pytest.raises(ValueError, match="`batch_dim_name`='data'"):
        kp.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="data")
    with pytest.raises(ValueError, match="needs a mesh"):
        kp.distribution.ModelParallel()
    with pytest.raises(ValueError, match="needs 8 devices"):
        kp.distribution.DeviceMesh((2, 4), ["batch", "model"], devices=[object()])


@pytest.mark.distributed
def test_checkpoints_across_device_counts(results):
    """Written by 4 shards (save, save_weights, ModelCheckpoint, BackupAndRestore): one file
    of full arrays, loaded on 1 device and on 2 shards, continuing with the same losses."""
    ck = results["checkpoints"]
    assert len(ck["four"]) == 2 and ck["one_shards"] == 1 and ck["two_shards"] == 2
    for name in ("one", "two"):
        assert_close(ck["four"], ck[name])
        for source in ("w.safetensors", "ck.kompile"):
            assert_close(ck["weights_saved"], ck[f"{name}_weights_{source}"], tol=0)
    assert_close(ck["four"], ck["backup"][-2:])  # resumed after the 4 shards' epoch
