"""Run by tests/test_sharded_jax.py in a subprocess with 4 host CPU devices.

Trains an MLP and a small transformer block on one device and with ModelParallel on a
2x2 ("batch", "model") mesh on the same global batches, and prints, as JSON, the
results of both, the layouts the compiled step takes and returns, and per-device bytes.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

import kompile as kp  # noqa: E402
from kompile.backends import jax_sharding, jax_state  # noqa: E402

D = kp.distribution


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.dense1 = nnx.Linear(8, 32, rngs=rngs)
        self.dense2 = nnx.Linear(32, 32, rngs=rngs)
        self.head = nnx.Linear(32, 3, rngs=rngs)

    def __call__(self, x):
        return self.head(nnx.relu(self.dense2(nnx.relu(self.dense1(x)))))


class Block(nnx.Module):
    """Pre-norm transformer block; the MLP carries its own annotations."""

    def __init__(self, rngs, d=16, heads=4):
        init = nnx.initializers.lecun_normal()
        self.ln1, self.ln2 = nnx.LayerNorm(d, rngs=rngs), nnx.LayerNorm(d, rngs=rngs)
        # no biases: the key bias has no gradient (softmax ignores it), and Adam would turn
        # rounding noise in it into steps of the learning rate
        self.attn = nnx.MultiHeadAttention(heads, d, decode=False, use_bias=False, rngs=rngs)
        self.up = nnx.Linear(d, 4 * d, rngs=rngs,
                             kernel_init=nnx.with_partitioning(init, (None, "model")))
        self.down = nnx.Linear(4 * d, d, rngs=rngs,
                               kernel_init=nnx.with_partitioning(init, ("model", None)))
        self.head = nnx.Linear(d, 2, rngs=rngs)

    def __call__(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.down(nnx.gelu(self.up(self.ln2(x))))
        return self.head(x.mean(axis=1))


def mesh_layouts(kind):
    mesh = D.DeviceMesh((2, 2), ["batch", "model"])
    layout_map = D.LayoutMap(mesh)
    if kind == "mlp":
        layout_map["dense1/kernel"] = (None, "model")
        layout_map["dense1/bias"] = ("model",)
        layout_map["dense2/kernel"] = ("model", None)
    elif kind == "block":
        layout_map["attn/(query|key|value)/kernel"] = (None, "model", None)
        layout_map["attn/out/kernel"] = ("model", None, None)
    else:  # "fsdp": every kernel split over the whole mesh on its first axis
        layout_map["kernel"] = (("batch", "model"), None)
    return layout_map


def data(kind):
    r = np.random.default_rng(0)
    if kind == "block":
        return r.normal(size=(32, 6, 16)).astype(np.float32), r.integers(0, 2, 32)
    return r.normal(size=(64, 8)).astype(np.float32), r.integers(0, 3, 64)


def build(kind):
    with nnx.use_eager_sharding(False):  # the annotations are kept as metadata
        return Block(nnx.Rngs(0)) if kind == "block" else MLP(nnx.Rngs(0))


def run(kind, distribution, spe=2, policy=None):
    x, y = data(kind)
    model = kp.Model(build(kind), dtype_policy=policy, distribution=distribution)
    model.compile(kp.optimizers.Adam(0.01), kp.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"], steps_per_execution=spe)
    hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    out = {"history": hist.history,
           "evaluate": model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True),
           "predict": np.asarray(model.predict(x, batch_size=8, verbose=0)).tolist(),
           "weights": [w.tolist() for w in model.get_weights()]}
    backend = model._backend
    if isinstance(distribution, D.ModelParallel):
        out["layouts"] = step_layouts(backend, x, y, spe)
    mine = jax_sharding.device_bytes((backend.state["params"], backend.state["opt"]))
    out["bytes"] = max(mine.values())
    return out


def step_layouts(backend, x, y, spe):
    """The parameter layouts of the state, and those the compiled step takes and returns."""
    fn = backend._fns.get(("train", spe, 8))
    if fn is None:
        return None
    feed = backend.put((x[:8 * spe], [y[:8 * spe]], [np.ones(8 * spe, np.float32)]))
    compiled = fn.lower(backend.state, feed).compile()
    ndims = [a.ndim for a in backend.state["params"]]
    spec = lambda s, n: str(s._to_xla_hlo_sharding(n))  # noqa: E731
    names = [name for name, _ in jax_state.named(backend.params_tree())]
    return {"names": names,
            "state": [spec(a.sharding, n) for a, n in zip(backend.state["params"], ndims)],
            "in": [spec(s, n) for s, n in zip(compiled.input_shardings[0][0]["params"], ndims)],
            "out": [spec(s, n) for s, n in zip(compiled.output_shardings["params"], ndims)],
            "opt_out": sorted({str(s.spec) for s in jax.tree.leaves(
                compiled.output_shardings["opt"])}),
            "hlo_sharded": "devices=[" in compiled.as_text()}


def checkpoints(folder):
    """Trained on 4 shards, saved (save, save_weights, ModelCheckpoint, BackupAndRestore);
    loaded on 1 device and on 2 shards; every copy continues training with the losses the
    4-shard model has."""
    x, y = data("mlp")
    loss = kp.losses.SparseCategoricalCrossentropy(from_logits=True)
    fit = dict(batch_size=8, verbose=0, shuffle=False)

    def sharded(devices):
        mesh = D.DeviceMesh((1, len(devices)), ["batch", "model"], devices=devices)
        layout_map = D.LayoutMap(mesh)
        layout_map["dense.*kernel"] = (None, "model")  # 32 outputs: 4 or 2 shards
        return D.ModelParallel(layout_map=layout_map)

    four = kp.Model(build("mlp"), distribution=sharded(jax.devices()))
    four.compile(kp.optimizers.Adam(0.01), loss, steps_per_execution=2)
    path = os.path.join(folder, "m.kompile")
    backup = os.path.join(folder, "backup")
    ckpt = kp.callbacks.ModelCheckpoint(os.path.join(folder, "ck.kompile"))
    four.fit(x, y, epochs=1, callbacks=[ckpt, kp.callbacks.BackupAndRestore(
        backup, delete_checkpoint=False)], **fit)
    four.save(path)
    four.save_weights(os.path.join(folder, "w.safetensors"))
    out = {"four": four.fit(x, y, epochs=3, initial_epoch=1, **fit).history["loss"]}
    for name, dist in (("one", None), ("two", sharded(jax.devices()[:2]))):
        model = kp.load_model(path, build("mlp"), distribution=dist)
        out[name] = model.fit(x, y, epochs=3, initial_epoch=1, **fit).history["loss"]
        out[name + "_shards"] = len(model._backend.state["params"][1].addressable_shards) \
            if dist else 1
        for source in ("w.safetensors", "ck.kompile"):  # save_weights, ModelCheckpoint
            weights = kp.Model(build("mlp"), distribution=dist)
            weights.load_weights(os.path.join(folder, source))
            out[f"{name}_weights_{source}"] = [w.tolist() for w in weights.get_weights()]
    # BackupAndRestore on one device: resumes after the epoch the 4 shards ran
    model = kp.Model(build("mlp")).compile(kp.optimizers.Adam(0.01), loss,
                                           steps_per_execution=2)
    hist = model.fit(x, y, epochs=3, callbacks=[kp.callbacks.BackupAndRestore(backup)], **fit)
    out["backup"] = hist.history["loss"]
    out["weights_saved"] = [w.tolist() for w in kp.load_model(path, build("mlp")).get_weights()]
    return out


def errors():
    mesh = D.DeviceMesh((2, 2), ["batch", "model"])
    out = {}
    bad = D.LayoutMap(mesh)
    bad["dense1/kernel"] = ("model", None)  # 8 rows: divides; head bias of 3 does not
    bad["head/bias"] = ("model",)
    for name, dist in (("indivisible", D.ModelParallel(layout_map=bad)),):
        try:
            run("mlp", dist)
        except ValueError as err:
            out[name] = str(err)
    try:
        D.LayoutMap(mesh)["x"] = ("data",)
    except ValueError as err:
        out["axis"] = str(err)
    return out


def main():
    assert len(jax.devices()) == 4, jax.devices()
    out = {}
    for kind in ("mlp", "block"):
        out[kind] = {"one": run(kind, None),
                     "mp": run(kind, D.ModelParallel(layout_map=mesh_layouts(kind)))}
    # fused calls (steps_per_execution unset: paced loops) and mixed precision
    out["fused"] = {"one": run("mlp", None, spe=None),
                    "mp": run("mlp", D.ModelParallel(layout_map=mesh_layouts("mlp")), spe=None)}
    out["mixed"] = {"one": run("block", None, policy="mixed_bfloat16"),
                    "mp": run("block", D.ModelParallel(layout_map=mesh_layouts("block")),
                              policy="mixed_bfloat16")}
    out["fsdp"] = {"one": out["mlp"]["one"],  # replicated: each device holds it all
                   "mp": run("mlp", D.ModelParallel(layout_map=mesh_layouts("fsdp")))}
    out["fsdp_class"] = {"one": out["mlp"]["one"], "mp": run("mlp", D.FSDP())}
    out["errors"] = errors()
    with tempfile.TemporaryDirectory() as folder:
        out["checkpoints"] = checkpoints(folder)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
