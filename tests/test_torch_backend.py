"""The torch backend: kompile against hand-written torch loops, torch.compile, steps per
execution, GradScaler loss scaling, checkpoint state and import separation (SPEC 5)."""

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import kompile as kp  # noqa: E402

from .models import build  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _data(n=70, n_in=8, n_out=3, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, n_in)).astype(np.float32)
    return x, np.argmax(x @ r.normal(size=(n_in, n_out)), axis=1).astype(np.int32)


def _weights(module):
    return [p.detach().numpy().copy() for p in module.parameters()]


def _assert_close(got, want, tol=1e-5):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def _hand_loop(module, opt, x, loss_fn, batch_size, epochs):
    """The reference: a plain torch loop over unshuffled batches."""
    for _ in range(epochs):
        for i in range(0, len(x), batch_size):
            opt.zero_grad()
            loss_fn(module, slice(i, i + batch_size)).backward()
            opt.step()


def _scce(p, labels):
    # Keras's crossentropy on probabilities: clip to [1e-7, 1 - 1e-7], then -log p[label]
    return -torch.log(p.clamp(1e-7, 1 - 1e-7)).gather(1, labels[:, None].long())[:, 0]


# ------------------------------------------------------------------ parity with torch loops
@pytest.mark.parametrize("optimizer", ["sgd_momentum", "native_adam"])
def test_matches_hand_written_loop(optimizer):
    x, y = _data()
    ours, ref = build("torch", "mlp"), build("torch", "mlp")
    if optimizer == "sgd_momentum":  # Keras's and torch's momentum agree at a constant lr
        spec = kp.optimizers.SGD(0.1, momentum=0.9)
        ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    else:  # a torch optimizer instance is used as is
        spec = torch.optim.Adam(ours.parameters(), lr=0.01)
        ref_opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    model = kp.Model(ours).compile(spec, "sparse_categorical_crossentropy")
    hist = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    _hand_loop(ref, ref_opt, x, lambda m, s: _scce(m(xt[s]), yt[s]).mean(), 16, 3)
    _assert_close(_weights(ours), _weights(ref))
    assert model._backend.iterations == 15  # 5 batches (the last one partial) x 3 epochs
    with torch.no_grad():  # the epoch loss is the batch-size-weighted mean of batch losses
        first = _scce(build("torch", "mlp")(xt), yt)
    assert hist.history["loss"][-1] < first.mean().item()


def test_multi_output_weighted_matches_hand_written_loop():
    """Dict outputs of different shapes, one loss each, loss weights and sample weights."""
    r = np.random.default_rng(1)
    x = r.normal(size=(24, 4)).astype(np.float32)
    y = {"z": r.normal(size=(24, 3)).astype(np.float32),
         "a": r.normal(size=(24, 1)).astype(np.float32),
         "m": r.integers(0, 5, size=24).astype(np.int32)}
    sw = r.uniform(0.1, 2.0, size=24).astype(np.float32)
    ours, ref = build("torch", "multi"), build("torch", "multi")
    model = kp.Model(ours).compile(
        kp.optimizers.SGD(0.05), {"z": "mse", "a": "mae", "m": "scce"},
        loss_weights={"z": 0.5, "a": 2.0, "m": 1.0})
    model.fit(x, y, sample_weight=sw, batch_size=8, epochs=2, shuffle=False, verbose=0)
    t = {k: torch.from_numpy(v) for k, v in y.items()}
    xt, wt = torch.from_numpy(x), torch.from_numpy(sw)

    def loss(m, s):
        out, w, n = m(xt[s]), wt[s], len(wt[s])
        z = (((out["z"] - t["z"][s]) ** 2).mean(1) * w).sum() / n
        a = ((out["a"] - t["a"][s]).abs().mean(1) * w).sum() / n
        c = (_scce(out["m"], t["m"][s]) * w).sum() / n
        return 0.5 * z + 2.0 * a + c

    _hand_loop(ref, torch.optim.SGD(ref.parameters(), lr=0.05), x, loss, 8, 2)
    _assert_close(_weights(ours), _weights(ref))


# ------------------------------------------------------------------ execution modes
def _fit_mlp(jit_compile="auto", spe=1, run_eagerly=False, epochs=2, callbacks=()):
    x, y = _data(76)
    kp.utils.set_random_seed(0)
    model = kp.Model(build("torch", "mlp")).compile(
        kp.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"],
        jit_compile=jit_compile, steps_per_execution=spe, run_eagerly=run_eagerly)
    hist = model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=list(callbacks))
    return model, hist


@pytest.mark.parametrize("spe", [3, 50])
def test_steps_per_execution_matches_single_steps(spe):
    """10 batches an epoch (the last partial), shuffled; the same weights and logs."""
    one, hist_one = _fit_mlp(spe=1)
    many, hist_many = _fit_mlp(spe=spe)
    _assert_close(many.get_weights(), one.get_weights(), tol=1e-6)
    for key in hist_one.history:
        np.testing.assert_allclose(hist_many.history[key], hist_one.history[key], rtol=1e-6)
    assert many._backend.iterations == one._backend.iterations == 20


def test_callback_indices_with_steps_per_execution():
    seen = []
    cb = kp.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs: seen.append(("begin", b)),
        on_train_batch_end=lambda b, logs: seen.append(("end", b)))
    _fit_mlp(spe=3, epochs=1, callbacks=[cb])
    assert [b for k, b in seen if k == "begin"] == [0, 3, 6, 9]
    assert [b for k, b in seen if k == "end"] == [2, 5, 8, 9]


@pytest.mark.filterwarnings("ignore:The module has no trainable variables")  # on purpose
def test_jit_compile_resolution():
    x = np.arange(4, dtype=np.float32)
    make = lambda **kw: kp.Model(build("torch", "identity")).compile(  # noqa: E731
        kp.optimizers.SGD(0.0), "mse", **kw)
    assert make().jit_compile is False  # "auto" is eager on torch
    assert make(jit_compile=True).jit_compile is True
    model = make(jit_compile=True, run_eagerly=True)
    with pytest.warns(UserWarning, match="run_eagerly=True overrides jit_compile=True"):
        model.fit(x, x, verbose=0)
    assert model.jit_compile is False and model.run_eagerly is True


def test_jit_compile_matches_eager_without_graph_breaks():
    """torch.compile of the step (reused for 3 steps per call) equals eager training, and
    our own code causes no graph break on a plain MLP."""
    x, y = _data(64)
    val = _data(16, seed=1)
    runs = []
    for jit, spe in ((False, 1), (True, 3)):
        kp.utils.set_random_seed(0)
        model = kp.Model(build("torch", "mlp")).compile(
            kp.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"],
            jit_compile=jit, steps_per_execution=spe)
        hist = model.fit(x, y, batch_size=8, epochs=2, validation_data=val, verbose=0)
        runs.append((model, hist, model.predict(x[:16], batch_size=8, verbose=0)))
    (eager, h_eager, p_eager), (jit, h_jit, p_jit) = runs
    assert jit.jit_compile is True and eager.jit_compile is False
    _assert_close(jit.get_weights(), eager.get_weights())
    for key in h_eager.history:
        np.testing.assert_allclose(h_jit.history[key], h_eager.history[key], rtol=1e-5)
    np.testing.assert_allclose(p_jit, p_eager, rtol=1e-5, atol=1e-6)

    backend = jit._backend
    feed = backend.put((x, [y], [None]))
    row = backend.put(np.arange(8, dtype=np.int32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = torch._dynamo.explain(backend._train_forward)(feed, row,
                                                              backend.metrics["train"])
        with torch.inference_mode():
            evaluate = torch._dynamo.explain(backend._eval_step)(feed, row,
                                                                 backend.metrics["eval"])
    assert train.graph_break_count == 0 and train.graph_count == 1, train.break_reasons
    assert evaluate.graph_break_count == 0, evaluate.break_reasons


# ------------------------------------------------------------------ loss scaling
class _Scale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.w


def test_grad_scaler_follows_the_spec_trace():
    """SPEC 5: SGD(0.1), initial scale 4, growth every 2 finite steps; the true gradient is
    1 except at step 3 (inf): that step is skipped and halves the scale."""
    x = np.array([[1], [1], [np.inf], [1], [1], [1]], np.float32)
    y = np.full((6, 1), -100.0, np.float32)  # mae: d|x w - y| / dw = x
    module = _Scale()
    opt = kp.optimizers.LossScaleOptimizer(kp.optimizers.SGD(0.1), initial_scale=4,
                                           dynamic_growth_steps=2)
    model = kp.Model(module).compile(opt, "mae")
    trace = []
    cb = kp.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: trace.append(
        (model.optimizer.dynamic_scale, module.w.item())))
    model.fit(x, y, batch_size=1, shuffle=False, callbacks=[cb], verbose=0)
    np.testing.assert_allclose(trace, [(4, 0.9), (8, 0.8), (4, 0.8), (4, 0.7), (8, 0.6),
                                       (8, 0.5)], rtol=1e-6)
    assert model._backend.iterations == 5  # the skipped step does not count


def test_mixed_precision_autocast():
    x, y = _data(32)
    module = build("torch", "mlp")
    model = kp.Model(module, dtype_policy="mixed_float16").compile(
        "sgd", "sparse_categorical_crossentropy")
    assert model.optimizer.is_loss_scale  # auto_scale_loss wraps the optimizer
    hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    assert 0 < model.optimizer.dynamic_scale <= 2**15  # readable; the first steps overflow
    assert all(p.dtype == torch.float32 for p in module.parameters())
    # the forward pass runs under autocast: the same numbers as torch.autocast gives
    bf16 = kp.Model(build("torch", "linear", n_in=8, n_out=3), dtype_policy="mixed_bfloat16")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = bf16.module(torch.from_numpy(x)).float().numpy()
    got = bf16.predict(x, verbose=0)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    fp16 = kp.Model(build("torch", "linear"), dtype_policy="float16").compile("sgd", "mse")
    with pytest.raises(ValueError, match="float16, whose gradients torch.amp.GradScaler cannot"):
        fp16.fit(np.ones((4, 4), np.float32), np.ones((4, 1), np.float32), verbose=0)


# ------------------------------------------------------------------ state and host
def test_state_dict_resumes_exactly():
    x, y = _data(48)
    compile_args = (kp.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    first = kp.Model(build("torch", "mlp")).compile(*compile_args, metrics=["accuracy"])
    first.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    saved = first._backend.state_dict()
    assert all(isinstance(v, np.ndarray) for v in saved.values())
    assert {"module/l1.kernel", "optimizer/state/0/exp_avg", "optimizer/groups/0/lr",
            "metrics/accuracy/total", "iterations"} <= set(saved)
    first.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)

    second = kp.Model(build("torch", "mlp")).compile(*compile_args, metrics=["accuracy"])
    second.fit(x, y, epochs=0, verbose=0)  # built, no step yet: torch has no optimizer state
    fresh = second._backend.state_dict()
    assert set(fresh) == set(saved)  # the same names before the first step
    second._backend.load_state_dict(saved)
    assert second._backend.iterations == 6
    second.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    _assert_close(second.get_weights(), first.get_weights(), tol=0)

    weights = first._backend.weights_dict()
    assert set(weights) == {"l1.kernel", "l1.bias", "l2.kernel", "l2.bias"}
    third = kp.Model(build("torch", "mlp"))
    third._backend.load_weights_dict(weights)
    _assert_close(third.get_weights(), first.get_weights(), tol=0)
    with pytest.raises(ValueError, match=r"missing keys \['l2.bias'\]"):
        third._backend.load_weights_dict({k: v for k, v in weights.items() if k != "l2.bias"})


def test_put_to_host_and_weights():
    backend = kp.Model(build("torch", "linear"))._backend
    tree = {"a": np.ones((2, 3), np.float32), "b": [np.arange(2), None], "c": (np.zeros(1),)}
    on_device = backend.put(tree)
    assert isinstance(on_device["a"], torch.Tensor) and on_device["b"][1] is None
    assert isinstance(on_device["c"], tuple)
    back = backend.to_host({"x": [on_device["a"], torch.ones(2, dtype=torch.bfloat16)]})
    np.testing.assert_array_equal(back["x"][0], tree["a"])
    assert back["x"][1].dtype == np.float32  # NumPy has no bfloat16
    model = kp.Model(build("torch", "linear"))
    with pytest.raises(ValueError, match="expected 2 arrays; received 1"):
        model.set_weights([np.zeros((4, 1))])
    with pytest.raises(ValueError, match=r"array 0 has shape \(1, 4\)"):
        model.set_weights([np.zeros((1, 4)), np.zeros(1)])


@pytest.mark.filterwarnings("ignore:The module has no trainable variables")  # on purpose
def test_learning_rate_is_live_and_identity_counts_steps():
    x, y = _data(32)
    model = kp.Model(build("torch", "mlp")).compile(kp.optimizers.SGD(0.1),
                                                    "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, verbose=0)
    assert model.learning_rate == pytest.approx(0.1)
    model.learning_rate = 0.0
    before = model.get_weights()
    model.fit(x, y, batch_size=8, verbose=0)
    _assert_close(model.get_weights(), before, tol=0)
    identity = kp.Model(build("torch", "identity")).compile(kp.optimizers.SGD(0.0), "mse")
    identity.fit(np.arange(5, dtype=np.float32), np.zeros(5, np.float32), batch_size=2,
                 verbose=0)
    assert identity._backend.iterations == 3


# ------------------------------------------------------------------ import separation
_BLOCK = """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, Block())
"""

_TORCH_ONLY = """
    import numpy as np, torch, kompile as kp
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    model = kp.Model(module).compile("adam", "sparse_categorical_crossentropy",
                                     metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    model.fit(x, (x[:, 0] > 0).astype(np.int32), epochs=2, verbose=0)
    assert model.predict(x, verbose=0).shape == (32, 2)
    assert not any(m.split(".")[0] in BLOCKED for m in sys.modules)
    print("ok")
"""

_JAX_ONLY = """
    import numpy as np, kompile as kp
    from flax import nnx
    module = nnx.Linear(4, 2, rngs=nnx.Rngs(0))
    model = kp.Model(module).compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    model.fit(x, (x[:, 0] > 0).astype(np.int32), epochs=2, verbose=0)
    assert model.predict(x, verbose=0).shape == (32, 2)
    assert not any(m.split(".")[0] in BLOCKED for m in sys.modules)
    print("ok")
"""


@pytest.mark.parametrize("blocked,script", [(("jax", "jaxlib", "flax", "optax"), _TORCH_ONLY),
                                            (("torch",), _JAX_ONLY)],
                         ids=["torch_only", "jax_only"])
def test_backends_import_separately(blocked, script):
    """Importing kompile and training a model of one library never imports the other."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("KERAS_BACKEND", None)
    code = f"BLOCKED = {blocked!r}\n" + textwrap.dedent(_BLOCK) + textwrap.dedent(script)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
