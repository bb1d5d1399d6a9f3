"""Run by tests/test_distributed_jax.py in a subprocess with 4 host CPU devices.

Trains the same models single-device and with DataParallel on the same global batches
and prints the results as JSON.
"""

import json
import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import kompile as kp  # noqa: E402
from tests.models import build  # noqa: E402


def run(kind, distribution):
    r = np.random.default_rng(0)
    x = r.normal(size=(72, 4)).astype(np.float32)
    sw = r.uniform(0.1, 2.0, size=72).astype(np.float32)
    if kind == "single":
        module = build("jax", "mlp", n_in=4, hidden=16, n_out=3)
        y = r.integers(0, 3, 72).astype(np.int32)
        compile_kw = dict(loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                          weighted_metrics=["sparse_categorical_crossentropy"])
    else:
        module = build("jax", "multi", n_in=4)
        y = {"z": r.normal(size=(72, 3)).astype(np.float32),
             "a": r.normal(size=(72, 1)).astype(np.float32),
             "m": np.eye(5, dtype=np.float32)[r.integers(0, 5, 72)]}
        compile_kw = dict(loss={"z": "mse", "a": "mae", "m": "categorical_crossentropy"},
                          loss_weights={"z": 1.0, "a": 0.5, "m": 2.0},
                          metrics={"m": ["accuracy"], "z": ["mae"]}, weighted_metrics=["mse"])
    model = kp.Model(module, distribution=distribution).compile(
        kp.optimizers.Adam(0.01), steps_per_execution=2, **compile_kw)
    if jax.process_count() == 1:
        np.random.seed(0)
    hist = model.fit(x, y, batch_size=8, epochs=3, sample_weight=sw, verbose=0)
    ev = model.evaluate(x, y, batch_size=8, sample_weight=sw, verbose=0, return_dict=True)
    pred = model.predict(x, batch_size=8, verbose=0)
    pred = pred if isinstance(pred, dict) else {"out": pred}
    backend = model._backend
    ys = [y[:16]] if kind == "single" else [y[k][:16] for k in backend.spec.names]
    data = backend.put((x[:16], ys, [sw[:16]] * len(ys)))  # 2 batches of 8, in order
    hlo = backend._fns[("train", 2, 8)].lower(backend.state, data).compile().as_text()
    return {"all_reduce": "all-reduce" in hlo,"history": hist.history, "evaluate": ev,
            "weights": [w.tolist() for w in model.get_weights()],
            "predict": {k: np.asarray(v).tolist() for k, v in pred.items()}}


def main():
    assert len(jax.devices()) == 4, jax.devices()
    out = {}
    for kind in ("single", "multi"):
        out[kind] = {"one": run(kind, None), "dp": run(kind, kp.distribution.DataParallel())}
    try:
        kp.Model(build("jax", "mlp"), distribution=kp.distribution.DataParallel()).compile(
            "sgd", "sparse_categorical_crossentropy").fit(
            np.zeros((12, 8), np.float32), np.zeros(12, np.int32), batch_size=6, verbose=0)
        out["error"] = None
    except ValueError as err:
        out["error"] = str(err)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
