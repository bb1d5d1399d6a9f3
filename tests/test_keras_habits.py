"""Keras habits that do not carry over get a message saying what to do instead.

Each case is what a Keras user types first: ``history.plot()`` without matplotlib,
``model(x)``, ``compile("adam", "mse", [1.0])`` (Keras 3 takes ``loss_weights`` third),
``kp.load_model(path)`` without a module, a probability loss on logits (the warning must
point at the user's own ``fit`` line), and the progress bar's time units.
"""

from __future__ import annotations

import builtins
import warnings

import numpy as np
import pytest

import kompile as kp
from kompile.callbacks import progbar

from . import models


def _data(n=32):
    r = np.random.default_rng(0)
    x = r.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int32)


def _linear(backend):
    if backend == "jax":
        from flax import nnx

        return nnx.Linear(4, 2, rngs=nnx.Rngs(0))
    import torch

    torch.manual_seed(0)
    return torch.nn.Linear(4, 2)


def test_history_plot_without_matplotlib_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    history = kp.History()
    history.history = {"loss": [1.0, 0.5]}
    with pytest.raises(ModuleNotFoundError, match=r"pip install kompile\[plot\]"):
        history.plot()


def test_calling_the_model_says_predict_or_module(backend):
    model = kp.Model(models.build(backend, "mlp", n_in=4, n_out=2))
    x, _ = _data()
    with pytest.raises(TypeError, match=r"model\.predict\(x\).*model\.module\(x\)"):
        model(x)


@pytest.mark.parametrize("metrics", [[1.0], (0.5, 2.0), 1.0, {"output": 1.0}])
def test_positional_loss_weights_hint_keyword_only(metrics):
    from flax import nnx

    model = kp.Model(nnx.Linear(4, 1, rngs=nnx.Rngs(0)))
    with pytest.raises(TypeError, match="`loss_weights` is keyword-only"):
        model.compile("adam", "mse", metrics)
    model.compile("adam", "mse", loss_weights=[1.0])  # the keyword works
    model.compile("adam", "mse", ["mae"])              # names still do


def test_load_model_without_module_says_what_to_pass(tmp_path):
    from flax import nnx

    path = tmp_path / "m.safetensors"
    kp.Model(nnx.Linear(4, 1, rngs=nnx.Rngs(0))).compile("adam", "mse").save(path)
    with pytest.raises(TypeError, match=r"kp.load_model\(path, module\)"):
        kp.load_model(path)


@pytest.mark.parametrize("loss, cls", [
    ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"),
    ("categorical_crossentropy", "CategoricalCrossentropy"),
    ("binary_crossentropy", "BinaryCrossentropy"),
])
def test_logits_warning_names_the_loss_and_the_users_line(backend, loss, cls):
    x, labels = _data()
    y = {"sparse_categorical_crossentropy": labels,
         "categorical_crossentropy": np.eye(2, dtype=np.float32)[labels],
         "binary_crossentropy": np.eye(2, dtype=np.float32)[labels]}[loss]
    model = kp.Model(_linear(backend)).compile("adam", loss)  # a module returning logits
    x = x * 100.0  # logits well outside [0, 1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=1, verbose=0)  # <- the line the warning must name
    hits = [w for w in caught if issubclass(w.category, kp.KompileWarning)
            and "from_logits" in str(w.message)]
    assert len(hits) == 1, [str(w.message) for w in caught]
    assert f"kp.losses.{cls}(from_logits=True)" in str(hits[0].message)
    assert hits[0].filename == __file__
    with open(__file__) as f:
        assert "the line the warning must name" in f.readlines()[hits[0].lineno - 1]


@pytest.mark.parametrize("seconds, text", [
    (2.4, "2s/step"), (1.0, "1s/step"), (0.031, "31ms/step"), (0.001, "1ms/step"),
    (0.00045, "450us/step"), (0.0000912, "91us/step"), (0.0, "0s/step"),
])
def test_progress_bar_uses_keras_time_units(seconds, text):
    # Keras 3's Progbar: >= 1 s in s, >= 1 ms in ms, else us (keras/src/utils/progbar.py)
    assert progbar.format_step_time(seconds) == text
