"""model.save / kp.load_model: one file that restores a compiled model exactly (SPEC 7).

The reference is the saved model itself: after loading, the copy must predict the same and
its next training epochs must give the same losses and weights as the original's.
"""

import numpy as np
import pytest

import kompile as kp

from . import models


def _data(n_in=4, n=48, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, n_in)).astype(np.float32)
    y = {"z": r.normal(size=(n, 3)).astype(np.float32),
         "a": r.normal(size=(n, 1)).astype(np.float32),
         "m": r.integers(0, 5, size=(n,))}
    return x, y


def _compiled(backend, kind="multi", policy=None, **kw):
    model = kp.Model(models.build(backend, kind, **kw), dtype_policy=policy)
    return model


def _compile_multi(model):
    return model.compile(kp.optimizers.Adam(learning_rate=0.01, clipnorm=1.0),
                         loss={"z": "mse", "a": "mae", "m": "sparse_categorical_crossentropy"},
                         metrics={"m": ["accuracy"], "z": ["mae"]},
                         loss_weights={"z": 2.0, "a": 1.0, "m": 0.5})


def _assert_same(a, b):
    for got, want in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_round_trip_predicts_and_continues_the_same(backend, tmp_path):
    x, y = _data()
    model = _compile_multi(_compiled(backend))
    model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    path = tmp_path / "model.safetensors"
    model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # one file, no temp

    fresh = models.build(backend, "multi")
    loaded = kp.load_model(path, fresh)
    assert loaded.compiled and loaded.backend == backend
    assert loaded.get_compile_config() == model.get_compile_config()
    assert loaded.history.epoch == [0, 1]
    assert loaded.history.history == model.history.history
    want, got = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for name in ("z", "a", "m"):
        np.testing.assert_array_equal(got[name], want[name])

    # continued training: the same next losses and weights (optimizer state restored)
    h_ref = model.fit(x, y, epochs=4, initial_epoch=2, batch_size=8, shuffle=False, verbose=0)
    h_new = loaded.fit(x, y, epochs=4, initial_epoch=2, batch_size=8, shuffle=False,
                       verbose=0)
    assert h_new.epoch == h_ref.epoch == [2, 3]
    for key, values in h_ref.history.items():
        np.testing.assert_allclose(h_new.history[key], values, rtol=1e-6, err_msg=key)
    _assert_same(loaded, model)


def test_optimizer_state_matters(backend, tmp_path):
    """A model rebuilt from the weights alone (fresh Adam moments) continues differently,
    so the equality above really depends on the saved optimizer state."""
    x, y = _data()
    model = _compile_multi(_compiled(backend))
    model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    model.save(tmp_path / "m.safetensors")
    weights_only = _compile_multi(kp.Model(models.build(backend, "multi")))
    weights_only.load_weights(tmp_path / "m.safetensors")  # a model file has its weights
    _assert_same(weights_only, model)
    h_ref = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    h_new = weights_only.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert abs(h_new.history["loss"][0] - h_ref.history["loss"][0]) > 1e-4


def test_rng_and_loss_scale_restored_jax(tmp_path):
    """Dropout draws from the module's nnx.Rngs and mixed_float16 scales the loss: both
    states travel in the file, so continued training matches exactly."""
    r = np.random.default_rng(1)
    x, y = r.normal(size=(32, 4)).astype(np.float32), r.normal(size=(32, 2)).astype(np.float32)
    model = kp.Model(models.build("jax", "dropout_bn"), dtype_policy="mixed_float16")
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    path = tmp_path / "m.safetensors"
    model.save(path)
    loaded = kp.load_model(path, models.build("jax", "dropout_bn"))
    assert loaded.dtype_policy.name == "mixed_float16"
    assert isinstance(loaded.optimizer, kp.optimizers.LossScaleOptimizer)
    h_ref = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    h_new = loaded.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(h_new.history["loss"], h_ref.history["loss"], rtol=1e-6)
    assert loaded.optimizer.dynamic_scale == model.optimizer.dynamic_scale
    _assert_same(loaded, model)


def test_saved_before_training_and_saved_again_after_loading(backend, tmp_path):
    x, y = _data()
    model = _compile_multi(_compiled(backend))
    model.save(tmp_path / "untrained.safetensors")  # compiled, never trained: no state yet
    loaded = kp.load_model(tmp_path / "untrained.safetensors", models.build(backend, "multi"))
    h_ref = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    h_new = loaded.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(h_new.history["loss"], h_ref.history["loss"], rtol=1e-6)

    # load -> save -> load without training in between keeps the optimizer state
    model.save(tmp_path / "a.safetensors")
    once = kp.load_model(tmp_path / "a.safetensors", models.build(backend, "multi"))
    once.save(tmp_path / "b.safetensors")
    twice = kp.load_model(tmp_path / "b.safetensors", models.build(backend, "multi"))
    h_ref = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    h_new = twice.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(h_new.history["loss"], h_ref.history["loss"], rtol=1e-6)


def test_mismatched_architecture_names_the_variable(backend, tmp_path):
    model = kp.Model(models.build(backend, "linear", n_in=4)).compile("sgd", "mse")
    model.save(tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=r"architecture: variable '\w+' has shape "
                                         r"\(\d+, \d+\) in this module but \(\d+, \d+\)"):
        kp.load_model(tmp_path / "m.safetensors", models.build(backend, "linear", n_in=5))
    with pytest.raises(ValueError, match=r"variable '[\w./]+' of this module is not in the file"):
        kp.load_model(tmp_path / "m.safetensors", models.build(backend, "mlp", n_in=4))


def test_wrong_files_and_uncompiled(backend, tmp_path):
    model = kp.Model(models.build(backend, "linear"))
    with pytest.raises(ValueError, match=r"compile\(\) before save\(\)"):
        model.save(tmp_path / "m.safetensors")
    model.save_weights(tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="holds weights only, not a whole model"):
        kp.load_model(tmp_path / "w.safetensors", models.build(backend, "linear"))
    model.compile("sgd", "mse").save(tmp_path / "m.safetensors")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.safetensors", overwrite=False)
    other = "torch" if backend == "jax" else "jax"
    if other == "torch":
        pytest.importorskip("torch")
    with pytest.raises(ValueError, match=f"saved from a {backend} model"):
        kp.load_model(tmp_path / "m.safetensors", models.build(other, "linear"))
