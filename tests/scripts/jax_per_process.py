"""One of two JAX processes (CPU, gloo), started by tests/test_sharded_jax_processes.py.

Usage: jax_per_process.py PROCESS_ID PORT. Each process has 2 local CPU devices (4 in
all). Trains with DataParallel and with ModelParallel on shuffled data whose first
feature is the sample id, records which samples this process put on its devices in each
epoch, checks that a process with other data stops both, and prints the results as JSON.
Usage without arguments: the one-device reference. ``PROCESS_ID PORT kill``: process 1
dies in the middle of fit (heartbeat timeout 10 s); process 0 must not hang.
"""

import json
import os
import sys
import time

MULTI = len(sys.argv) > 1
KILL = False
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2" if MULTI else ""
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import jax  # noqa: E402

if MULTI:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    KILL = sys.argv[3:] == ["kill"]
    jax.distributed.initialize(f"127.0.0.1:{sys.argv[2]}", num_processes=2,
                               process_id=int(sys.argv[1]), initialization_timeout=120,
                               heartbeat_timeout_seconds=10 if KILL else 100)

import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

import kompile as kp  # noqa: E402
from kompile.backends.jax_sharding import StepMajor  # noqa: E402

N = 44  # 5 batches of 8 and a last one of 4 (still one sample per device)


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.dense1, self.dense2 = nnx.Linear(4, 16, rngs=rngs), nnx.Linear(16, 3, rngs=rngs)

    def __call__(self, x):
        return self.dense2(nnx.relu(self.dense1(x)))


class LocalSamples(kp.callbacks.Callback):
    """The ids of the samples whose rows this process holds, per epoch."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(set())

    def on_train_batch_end(self, batch, logs=None):  # the batches of the call just run
        order = self.model._backend._order.get("train")
        x = jax.tree.leaves(order, is_leaf=lambda a: isinstance(a, StepMajor))[0]
        ids = [np.asarray(s.data)[..., 0].reshape(-1) for s in x.array.addressable_shards]
        self.epochs[-1] |= {int(round(i * 100)) for i in np.concatenate(ids)}


def run(distribution, record):
    r = np.random.default_rng(0)
    x = r.normal(size=(N, 4)).astype(np.float32)
    x[:, 0] = np.arange(N) / 100
    y = r.integers(0, 3, N).astype(np.int32)
    model = kp.Model(MLP(nnx.Rngs(0)), distribution=distribution).compile(
        kp.optimizers.Adam(0.01), kp.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=2)
    seen = LocalSamples()
    np.random.seed(jax.process_index())  # different seeds: process 0's order is used
    hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0,
                     callbacks=[seen] if record else None)
    out = {"history": hist.history, "weights": [w.tolist() for w in model.get_weights()],
           "evaluate": model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True),
           "predict": np.asarray(model.predict(x, batch_size=8, verbose=0)).tolist()}
    out["model"] = model
    return out, [sorted(ids) for ids in seen.epochs]


def disagree():
    """Process 1 passes 8 samples fewer: both processes stop with the same clear error."""
    x = np.zeros((N - 8 * jax.process_index(), 4), np.float32)
    model = kp.Model(MLP(nnx.Rngs(0)), distribution=kp.distribution.DataParallel())
    model.compile("sgd", kp.losses.SparseCategoricalCrossentropy(from_logits=True))
    try:
        model.fit(x, np.zeros(len(x), np.int32), batch_size=8, verbose=0)
    except RuntimeError as err:
        return str(err)
    return None


class Die(kp.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 3 and jax.process_index() == 1:
            print(json.dumps({"died": time.time()}), flush=True)
            os._exit(3)


def kill():
    """Process 1 exits at its 4th batch; process 0 is ended by JAX's coordination service."""
    model = kp.Model(MLP(nnx.Rngs(0)), distribution=kp.distribution.DataParallel())
    model.compile("sgd", kp.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.zeros((4000, 4), np.float32)
    model.fit(x, np.zeros(4000, np.int32), batch_size=8, epochs=50, verbose=0,
              callbacks=[Die()])
    print(json.dumps({"finished": time.time()}), flush=True)  # must not happen


def save_and_load(model, port):
    """Sharded across processes: ModelCheckpoint is a clear error; model.save on every
    process writes one file (process 0) that a one-device model loads and continues from
    with the losses of the sharded model."""
    from jax.experimental import multihost_utils

    r = np.random.default_rng(0)
    x = r.normal(size=(N, 4)).astype(np.float32)
    x[:, 0] = np.arange(N) / 100
    y = r.integers(0, 3, N).astype(np.int32)
    out = {}
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"kompile-sharded-{port}.kompile")
    try:
        model.fit(x, y, batch_size=8, verbose=0,
                  callbacks=[kp.callbacks.ModelCheckpoint(path + ".ckpt")])
    except ValueError as err:
        out["checkpoint_error"] = str(err)
    model.save(path)
    multihost_utils.sync_global_devices("saved")
    one = kp.load_model(path, MLP(nnx.Rngs(1)), distribution=None)
    out["one"] = one.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False).history
    out["sharded"] = model.fit(x, y, batch_size=8, epochs=1, verbose=0,
                               shuffle=False).history
    multihost_utils.sync_global_devices("loaded")
    if jax.process_index() == 0:
        os.remove(path)
    return out


def main():
    if KILL:
        kill()
        return
    if not MULTI:
        one = run(None, False)[0]
        one.pop("model")
        print(json.dumps({"one": one}))
        return
    mesh = kp.distribution.DeviceMesh((2, 2), ["batch", "model"])
    layout_map = kp.distribution.LayoutMap(mesh)
    layout_map["dense1/kernel"] = (None, "model")
    layout_map["dense2/kernel"] = ("model", None)
    dp, seen = run(kp.distribution.DataParallel(), True)
    mp, _ = run(kp.distribution.ModelParallel(layout_map=layout_map), False)
    dp.pop("model")
    mp["saved"] = save_and_load(mp.pop("model"), sys.argv[2])
    print(json.dumps({"dp": dp, "mp": mp, "seen": seen, "disagree": disagree()}), flush=True)
    # results are out: wait for the other process, the leader (coordinator) exits last
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("end")
    jax.distributed.shutdown()  # the coordination service's shutdown barrier: all leave together
    os._exit(0)  # skip collective teardown at interpreter exit


if __name__ == "__main__":
    main()
