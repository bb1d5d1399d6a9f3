"""Every registered loss against Keras 3's value on the same inputs: NumPy, jax.jit, torch.

Also holds the input generator and the three executions that test_metrics_parity.py reuses.
Known, intended differences from Keras are tested as such (see the ``*_differs_*`` tests).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kompile import losses  # noqa: E402

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.keras

TOL = {"rtol": 1e-5, "atol": 1e-5}
BACKENDS = ("numpy", "jax", "torch")
SHAPES = ((8, 5), (4, 3, 5))


# ----------------------------------------------------------------------------- inputs


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def make_inputs(kind: str, shape: tuple[int, ...], seed: int = 0):
    """``(y_true, y_pred)`` as float32 NumPy arrays (int32 labels for the sparse kinds)."""
    rng = np.random.default_rng(seed)
    normal = lambda: rng.normal(size=shape)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    one_hot = np.eye(shape[-1])[labels]
    binary = (rng.random(shape) > 0.5).astype(np.float64)
    y_true, y_pred = {
        "signed": lambda: (normal(), normal()),
        "positive": lambda: (rng.uniform(0.1, 2.0, shape), rng.uniform(0.1, 2.0, shape)),
        "probs": lambda: (_softmax(normal()), _softmax(2 * normal())),
        "binary": lambda: (binary, rng.uniform(0.02, 0.98, shape)),
        "logits": lambda: (binary, 2 * normal()),
        "binary_signed": lambda: (binary, normal()),
        "pm1": lambda: (2 * binary - 1, normal()),
        "categorical": lambda: (one_hot, _softmax(2 * normal())),
        "categorical_logits": lambda: (one_hot, 2 * normal()),
        "categorical_signed": lambda: (one_hot, normal()),
        "sparse": lambda: (labels, _softmax(2 * normal())),
        "sparse_logits": lambda: (labels, 2 * normal()),
    }[kind]()
    y_true = y_true.astype(np.int32 if kind.startswith("sparse") else np.float32)
    return y_true, y_pred.astype(np.float32)


def make_weights(mode: str | None, shape: tuple[int, ...], seed: int = 1):
    """None, per-sample ``(N,)`` or per-timestep ``(N, T)`` weights (some zero)."""
    if mode is None:
        return None
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.0, 2.0, shape[:1] if mode == "sample" else shape[:2])
    w.flat[0] = 0.0
    return w.astype(np.float32)


def weight_modes(shape: tuple[int, ...]) -> tuple[str | None, ...]:
    return (None, "sample", "temporal") if len(shape) == 3 else (None, "sample")


def shape_modes(full: bool = True, temporal: bool = True) -> list[tuple]:
    """(shape, weight mode) pairs: all of them, or two (to keep option and alias tests quick)."""
    shapes = SHAPES if temporal else SHAPES[:1]
    if not full:
        return [(shapes[-1], "temporal" if temporal else "sample")] + (
            [(SHAPES[0], "sample")] if temporal else [(SHAPES[0], None)])
    return [(shape, mode) for shape in shapes for mode in weight_modes(shape)]


# ----------------------------------------------------------------------------- executions


def to_backend(backend: str, x):
    if x is None or backend == "numpy":
        return x
    return jnp.asarray(x) if backend == "jax" else torch.as_tensor(x)


def to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def run_backends(fn, cases: list[tuple], jit_all: bool = True) -> dict[str, list[np.ndarray]]:
    """``fn(*case)`` for every case on NumPy and torch tensors, and under one ``jax.jit``.

    ``jit_all=False`` jits the first case only: XLA compiles take most of this file's time.
    """
    out = {}
    for backend in BACKENDS:
        args = [tuple(to_backend(backend, a) for a in case) for case in cases]
        if backend == "jax":
            args = args if jit_all else args[:1]
            values = jax.jit(lambda batch: [fn(*case) for case in batch])(args)
        else:
            values = [fn(*case) for case in args]
        out[backend] = [to_numpy(v) for v in values]
    return out


def assert_parity(fn, cases: list[tuple], expected: list[np.ndarray], label: str = "",
                  jit_all: bool = True) -> None:
    for backend, values in run_backends(fn, cases, jit_all).items():
        for i, (got, want) in enumerate(zip(values, expected)):
            np.testing.assert_allclose(
                got, want, **TOL, err_msg=f"{label} backend={backend} case={i}")


# ----------------------------------------------------------------------------- cases

# Loss class -> (input kind, options) variants; the first variant is the default one.
LOSS_CASES: dict[str, list[tuple[str, dict]]] = {
    "MeanSquaredError": [("signed", {})],
    "MeanAbsoluteError": [("signed", {})],
    "MeanAbsolutePercentageError": [("positive", {})],
    "MeanSquaredLogarithmicError": [("positive", {})],
    "BinaryCrossentropy": [
        ("binary", {}), ("binary", {"label_smoothing": 0.1}),
        ("logits", {"from_logits": True}),
        ("logits", {"from_logits": True, "label_smoothing": 0.2}),
    ],
    "CategoricalCrossentropy": [
        ("categorical", {}), ("categorical", {"label_smoothing": 0.1}),
        ("categorical_logits", {"from_logits": True}),
        ("categorical_logits", {"from_logits": True, "label_smoothing": 0.2}),
    ],
    "SparseCategoricalCrossentropy": [
        ("sparse", {}), ("sparse_logits", {"from_logits": True}),
    ],
    "BinaryFocalCrossentropy": [
        ("binary", {}),
        ("binary", {"apply_class_balancing": True, "alpha": 0.3, "gamma": 1.5}),
        ("logits", {"from_logits": True, "label_smoothing": 0.1}),
    ],
    "CategoricalFocalCrossentropy": [
        ("categorical", {}), ("categorical", {"label_smoothing": 0.1}),
        ("categorical_logits", {"from_logits": True, "alpha": 0.5, "gamma": 3.0}),
    ],
    "KLDivergence": [("probs", {})],
    "Poisson": [("positive", {})],
    "CosineSimilarity": [("signed", {})],
    "LogCosh": [("signed", {})],
    "Huber": [("signed", {}), ("signed", {"delta": 0.5}), ("signed", {"delta": 2.0})],
    "Hinge": [("pm1", {}), ("binary_signed", {})],
    "SquaredHinge": [("pm1", {}), ("binary_signed", {})],
    "CategoricalHinge": [("categorical_signed", {})],
}


def loss_cases(kind: str, full: bool = True) -> list[tuple]:
    """``(y_true, y_pred, kompile_weight, keras_weight)`` over shapes and weight modes."""
    cases = []
    for shape, mode in shape_modes(full):
        y_true, y_pred = make_inputs(kind, shape, seed=len(cases))
        w = make_weights(mode, shape)
        # Keras cannot spread (N,) weights over (N, T) values; kompile can (SPEC 4).
        kw = w[:, None] if mode == "sample" and len(shape) == 3 else w
        cases.append((y_true, y_pred, w, kw))
    return cases


def check_loss(loss, keras_loss, kind: str, label: str, full: bool = True) -> None:
    cases = loss_cases(kind, full)
    expected = [np.asarray(keras_loss(yt, yp, sample_weight=kw)) for yt, yp, _, kw in cases]
    assert_parity(lambda yt, yp, w: loss(yt, yp, w), [c[:3] for c in cases], expected, label,
                  jit_all=full)


def test_every_loss_class_has_cases():
    assert set(LOSS_CASES) == set(losses.LOSS_CLASSES)


@pytest.mark.parametrize("name", losses.LOSSES.names())
def test_registered_name_matches_keras(name):
    loss = losses.get(name)
    cls_name = type(loss).__name__
    kind = LOSS_CASES[cls_name][0][0]
    full = losses.LOSSES.canonical(name) == name  # an alias only needs a quick check
    check_loss(loss, getattr(keras.losses, cls_name)(), kind, name, full)


@pytest.mark.parametrize(
    "cls_name,kind,options",
    [(c, k, o) for c, variants in LOSS_CASES.items() for k, o in variants[1:]],
)
def test_options_match_keras(cls_name, kind, options):
    loss = losses.LOSS_CLASSES[cls_name](**options)
    keras_loss = getattr(keras.losses, cls_name)(**options)
    check_loss(loss, keras_loss, kind, f"{cls_name}{options}", full=False)


@pytest.mark.parametrize("reduction", ["sum", "none", "mean_with_sample_weight"])
@pytest.mark.parametrize("cls_name,kind", [("MeanSquaredError", "signed"),
                                           ("CategoricalCrossentropy", "categorical")])
def test_reductions_match_keras(cls_name, kind, reduction):
    # Weights of the values' own shape: Keras's "mean_with_sample_weight" divides by the sum
    # of the weights as given, kompile by the sum of the weights spread to the values.
    cases = []
    for shape in SHAPES:
        y_true, y_pred = make_inputs(kind, shape, seed=len(cases))
        w = make_weights("sample" if len(shape) == 2 else "temporal", shape)
        cases.append((y_true, y_pred, w, w))
    keras_loss = getattr(keras.losses, cls_name)(reduction=reduction)
    expected = [np.asarray(keras_loss(yt, yp, sample_weight=kw)) for yt, yp, _, kw in cases]
    loss = losses.LOSS_CLASSES[cls_name](reduction=reduction)
    assert_parity(lambda yt, yp, w: loss(yt, yp, w), [c[:3] for c in cases], expected)


def test_ignore_class_sum_matches_keras():
    # With "sum" both sum the valid entries; see test_ignore_class_mean_differs_from_keras.
    cases = []
    for shape in SHAPES:
        y_true, y_pred = make_inputs("sparse", shape, seed=len(cases))
        cases.append((y_true, y_pred, make_weights("sample", shape)[:, None]
                      if len(shape) == 3 else make_weights("sample", shape)))
    keras_loss = keras.losses.SparseCategoricalCrossentropy(ignore_class=1, reduction="sum")
    expected = [np.asarray(keras_loss(yt, yp, sample_weight=w)) for yt, yp, w in cases]
    loss = losses.SparseCategoricalCrossentropy(ignore_class=1, reduction="sum")
    assert_parity(lambda yt, yp, w: loss(yt, yp, w), cases, expected)


def test_ignore_class_mean_differs_from_keras():
    # Keras masks ignored entries and divides by the number of valid ones; kompile's
    # per-sample function gives them 0 and the reduction divides by every entry.
    y_true, y_pred = make_inputs("sparse", (8, 5))
    valid = float(np.sum(y_true != 1))
    ours = losses.SparseCategoricalCrossentropy(ignore_class=1)(y_true, y_pred)
    theirs = keras.losses.SparseCategoricalCrossentropy(ignore_class=1)(y_true, y_pred)
    np.testing.assert_allclose(ours * y_true.size / valid, np.asarray(theirs), **TOL)


def test_cosine_similarity_loss_is_negative():
    y_true, y_pred = make_inputs("signed", (8, 5))
    loss = losses.get("cosine_similarity")(y_true, y_true)
    np.testing.assert_allclose(loss, -1.0, **TOL)
    assert np.all(losses.cosine_similarity(y_true, y_pred) >= -1.0 - 1e-6)
