"""End-to-end fit / evaluate / predict behaviour for one output (SPEC sections 1, 6)."""

import re

import numpy as np
import pytest

import kompile as kp


def _data(n=64, n_in=8, n_out=3, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, n_in)).astype(np.float32)
    w = r.normal(size=(n_in, n_out)).astype(np.float32)
    return x, np.argmax(x @ w, axis=1).astype(np.int32)


def test_fit_learns_and_writes_back(make_model, backend):
    x, y = _data()
    module = make_model("mlp")
    model = kp.Model(module).compile(kp.optimizers.Adam(0.02), "sparse_categorical_crossentropy",
                                     metrics=["accuracy"])
    hist = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0] * 0.6
    assert hist.history["accuracy"][-1] > 0.8
    assert set(hist.history) == {"loss", "accuracy"}
    # the trained state lives in the user's module
    pred = model.predict(x, verbose=0)
    if backend == "jax":
        direct = np.asarray(module(x))
    else:
        import torch

        with torch.no_grad():
            direct = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(pred, direct, rtol=1e-5, atol=1e-5)


def test_history_epochs_and_params(make_model):
    x, y = _data(40)
    model = kp.Model(make_model("mlp")).compile("sgd", "sparse_categorical_crossentropy")
    hist = model.fit(x, y, epochs=3, initial_epoch=1, batch_size=16, verbose=0)
    assert hist.epoch == [1, 2]
    assert hist.params == {"epochs": 3, "steps": 3, "verbose": 0}
    assert len(hist.history["loss"]) == 2
    assert model.history is hist


def test_validation_split_freq_and_data(make_model):
    x, y = _data(50)
    model = kp.Model(make_model("mlp")).compile("adam", "sparse_categorical_crossentropy",
                                                metrics=["acc"])
    hist = model.fit(x, y, epochs=4, validation_split=0.2, validation_freq=2, verbose=0)
    assert len(hist.history["val_loss"]) == 2 and len(hist.history["loss"]) == 4
    assert set(hist.history) == {"loss", "acc", "val_loss", "val_acc"}
    # validation_split takes the last 20%: the same numbers as evaluating on them
    assert hist.history["val_loss"][-1] == pytest.approx(
        model.evaluate(x[40:], y[40:], verbose=0)[0], rel=1e-5)
    hist = model.fit(x[:40], y[:40], epochs=3, validation_data=(x[40:], y[40:]),
                     validation_freq=[1, 3], verbose=0)
    assert len(hist.history["val_loss"]) == 2


def test_steps_per_epoch_limits_batches(make_model):
    x, y = _data(64)
    seen = []

    class Count(kp.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    model = kp.Model(make_model("mlp")).compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, steps_per_epoch=3, epochs=2, callbacks=[Count()], verbose=0)
    assert seen == [0, 1, 2, 0, 1, 2]


@pytest.mark.filterwarnings("ignore:The module has no trainable variables")  # on purpose
def test_callback_hooks_and_running_means(make_model):
    x, y = _data(20)
    events, batch_losses = [], []

    class Recorder(kp.Callback):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(f"epoch_begin{epoch}")

        def on_train_batch_begin(self, batch, logs=None):
            events.append(f"b{batch}")

        def on_train_batch_end(self, batch, logs=None):
            batch_losses.append(logs["loss"])

        def on_epoch_end(self, epoch, logs=None):
            events.append(f"epoch_end{epoch}")
            assert list(logs) == sorted(logs)

        def on_train_end(self, logs=None):
            events.append("train_end")

    model = kp.Model(make_model("identity", n_in=1)).compile(
        kp.optimizers.SGD(learning_rate=0.0), "mse")
    xs = np.arange(5, dtype=np.float32)
    hist = model.fit(xs, np.zeros(5, np.float32), batch_size=2, shuffle=False,
                     callbacks=[Recorder()], verbose=0)
    assert events == ["train_begin", "epoch_begin0", "b0", "b1", "b2", "epoch_end0",
                      "train_end"]
    # running means since the epoch began: 0.5, (1 + 13) / 4, (1 + 13 + 16) / 5
    assert batch_losses == pytest.approx([0.5, 3.5, 6.0])
    assert hist.history["loss"] == pytest.approx([6.0])


def test_stop_training_after_current_batch(make_model):
    x, y = _data(64)

    class Stop(kp.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    model = kp.Model(make_model("mlp")).compile("adam", "sparse_categorical_crossentropy")
    hist = model.fit(x, y, batch_size=8, epochs=5, callbacks=[Stop()], verbose=0)
    assert hist.epoch == [0]
    assert model.optimizer is not None


def test_predict_without_compile_and_structures(make_model):
    x, _ = _data(10)
    model = kp.Model(make_model("multi", n_in=8))
    out = model.predict(x, batch_size=4, verbose=0)
    assert list(out) == ["z", "a", "m"]
    assert out["z"].shape == (10, 3) and out["a"].shape == (10, 1) and out["m"].shape == (10, 5)
    with pytest.raises(ValueError, match=r"compile\(\) before fit\(\)"):
        model.fit(x, np.zeros(10))
    with pytest.raises(ValueError, match=r"compile\(\) before evaluate\(\)"):
        model.evaluate(x, np.zeros(10))


def test_on_batch_calls(make_model):
    x = np.arange(4, dtype=np.float32)
    y = np.zeros(4, np.float32)
    model = kp.Model(make_model("identity")).compile(kp.optimizers.SGD(0.0), "mse",
                                                      metrics=["mae"])
    assert model.test_on_batch(x, y) == pytest.approx([3.5, 1.5])
    assert model.train_on_batch(x, y, return_dict=True) == pytest.approx(
        {"loss": 3.5, "mae": 1.5})
    assert model.train_on_batch(x[:2], y[:2]) == pytest.approx([0.5, 0.5])  # that batch alone
    np.testing.assert_allclose(model.predict_on_batch(x), x)
    only_loss = kp.Model(make_model("identity")).compile(kp.optimizers.SGD(0.0), "mse")
    assert only_loss.evaluate(x, y, verbose=0) == pytest.approx(3.5)
    assert isinstance(only_loss.evaluate(x, y, verbose=0), float)


def test_dropout_and_batchnorm_modes(make_model, backend):
    x, _ = _data(32, n_in=4)
    y = np.ones((32, 2), np.float32)
    module = make_model("dropout_bn")
    model = kp.Model(module).compile("sgd", "mse")
    p1 = model.predict(x, verbose=0)
    np.testing.assert_allclose(p1, model.predict(x, verbose=0))  # eval mode: deterministic
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    # batch statistics moved during training (train mode) and are used at predict
    p2 = model.predict(x, verbose=0)
    assert not np.allclose(p1, p2)
    np.testing.assert_allclose(p2, model.predict(x, verbose=0))


def test_tuple_and_dict_inputs(backend):
    if backend == "jax":
        from flax import nnx

        class TwoIn(nnx.Module):
            def __init__(self):
                self.w = nnx.Param(np.ones((3, 1), np.float32))

            def __call__(self, x):
                a, b = (x["a"], x["b"]) if isinstance(x, dict) else x
                return a @ self.w + b
    else:
        import torch

        class TwoIn(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = torch.nn.Parameter(torch.ones(3, 1))

            def forward(self, x):
                a, b = (x["a"], x["b"]) if isinstance(x, dict) else x
                return a @ self.w + b

    a = np.ones((6, 3), np.float32)
    b = np.arange(6, dtype=np.float32)[:, None]
    for x in ((a, b), {"a": a, "b": b}):
        model = kp.Model(TwoIn()).compile(kp.optimizers.SGD(0.0), "mae")
        np.testing.assert_allclose(model.predict(x, batch_size=4, verbose=0), 3 + b)
        assert model.evaluate(x, 3 + b, verbose=0) == pytest.approx(0.0)


def test_progress_bar_output(make_model, capsys):
    x, y = _data(32)
    model = kp.Model(make_model("mlp")).compile("adam", "sparse_categorical_crossentropy",
                                                metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    # Keras's time units: s, ms or us per step, whichever the step's duration needs
    assert re.search(r"\d+(s|ms|us)/step", out) and "loss:" in out and "accuracy:" in out
    model.fit(x, y, epochs=1, batch_size=8, verbose=1)
    out = capsys.readouterr().out
    assert "4/4" in out and "loss:" in out
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert capsys.readouterr().out == ""


def test_history_plot(make_model, tmp_path):
    pytest.importorskip("matplotlib")
    x, y = _data(32)
    model = kp.Model(make_model("mlp")).compile("adam", "sparse_categorical_crossentropy",
                                                metrics=["accuracy"])
    hist = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    path = tmp_path / "curves.png"
    hist.plot(str(path))
    assert path.stat().st_size > 1000


def test_dict_inputs_keep_the_users_key_order(backend):
    """The module sees a dict input in the order the user built it (JAX sorts pytree keys)."""
    if backend == "jax":
        import jax.numpy as jnp
        from flax import nnx

        class Concat(nnx.Module):
            def __call__(self, x):
                return jnp.concatenate(list(x.values()), axis=-1)
    else:
        import torch

        class Concat(torch.nn.Module):
            def forward(self, x):
                return torch.cat(list(x.values()), dim=-1)

    x = {"b": np.full((4, 1), 2.0, np.float32), "a": np.zeros((4, 1), np.float32)}
    model = kp.Model(Concat()).compile(kp.optimizers.SGD(0.0), "mse")
    np.testing.assert_allclose(model.predict(x, verbose=0), [[2.0, 0.0]] * 4)
    assert model.evaluate(x, np.tile([[2.0, 0.0]], (4, 1)), verbose=0) == pytest.approx(0.0)
