"""Every registered metric against Keras 3 (NumPy, jax.jit, torch), and the metric laws.

Laws: updating chunk by chunk equals one update; ``merge`` of per-chunk states equals one
update and is commutative and associative.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

try:  # tests/ is a package
    from .test_losses_parity import (
        LOSS_CASES,
        TOL,
        assert_parity,
        make_inputs,
        make_weights,
        shape_modes,
        to_backend,
    )
except ImportError:  # tests/ on sys.path (rootdir-relative test modules)
    from test_losses_parity import (  # type: ignore[no-redef]
        LOSS_CASES,
        TOL,
        assert_parity,
        make_inputs,
        make_weights,
        shape_modes,
        to_backend,
    )

from kompile import metrics  # noqa: E402
from kompile.metrics import confusion, regression  # noqa: E402

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.keras

COUNTS = ("TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives")
# Metric class -> input kind for its default parity check; loss metrics use the loss's.
KINDS = {
    "BinaryAccuracy": "binary", "CategoricalAccuracy": "categorical",
    "SparseCategoricalAccuracy": "sparse", "TopKCategoricalAccuracy": "categorical",
    "SparseTopKCategoricalAccuracy": "sparse", "CosineSimilarity": "signed",
    "AUC": "binary", "Precision": "binary", "Recall": "binary",
    "RootMeanSquaredError": "signed", "R2Score": "signed",
    **dict.fromkeys(COUNTS, "binary"),
    **{name: variants[0][0] for name, variants in LOSS_CASES.items() if name != "CosineSimilarity"},
}
CONFUSION = {"AUC", "Precision", "Recall", *COUNTS}
TWO_D_ONLY = {"R2Score", "F1Score", "FBetaScore"}

# (class, kind, options): every non-default option parity is checked for.
OPTION_CASES = [
    ("BinaryAccuracy", "binary", {"threshold": 0.3}),
    ("TopKCategoricalAccuracy", "categorical", {"k": 2}),
    ("SparseTopKCategoricalAccuracy", "sparse", {"k": 2}),
    ("BinaryCrossentropy", "logits", {"from_logits": True, "label_smoothing": 0.1}),
    ("CategoricalCrossentropy", "categorical_logits", {"from_logits": True}),
    ("CategoricalCrossentropy", "categorical", {"label_smoothing": 0.2}),
    ("SparseCategoricalCrossentropy", "sparse_logits", {"from_logits": True}),
    ("Huber", "signed", {"delta": 0.5}),
    *[(c, "binary", {"thresholds": t}) for c in COUNTS for t in (0.3, [0.2, 0.5, 0.8])],
    ("TruePositives", "binary", {"thresholds": [0.8, 0.1, 0.45]}),
    ("FalsePositives", "binary", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}),
    ("Precision", "binary", {"thresholds": [0.25, 0.5, 0.7]}),
    ("Precision", "categorical", {"top_k": 2}),
    ("Precision", "binary", {"class_id": 2}),
    ("Precision", "categorical", {"top_k": 3, "class_id": 1}),
    ("Recall", "binary", {"thresholds": [0.7, 0.3]}),
    ("Recall", "categorical", {"top_k": 2}),
    ("Recall", "binary", {"class_id": 4, "thresholds": 0.6}),
    ("AUC", "binary", {"curve": "PR"}),
    ("AUC", "binary", {"curve": "PR", "summation_method": "minoring"}),
    ("AUC", "binary", {"curve": "PR", "summation_method": "majoring"}),
    ("AUC", "binary", {"summation_method": "minoring"}),
    ("AUC", "binary", {"summation_method": "majoring"}),
    ("AUC", "binary", {"curve": "PRGAIN"}),
    ("AUC", "binary", {"num_thresholds": 50}),
    ("AUC", "binary", {"thresholds": [0.6, 0.2, 0.4]}),
    ("AUC", "logits", {"from_logits": True}),
    ("AUC", "binary", {"label_weights": [0.5, 1.0, 2.0, 0.0, 1.5]}),
    ("AUC", "binary", {"multi_label": True}),
    ("AUC", "binary", {"multi_label": True, "num_labels": 5, "curve": "PR"}),
    ("AUC", "binary", {"multi_label": True, "label_weights": [0.5, 1.0, 2.0, 0.0, 1.5]}),
    ("F1Score", "binary", {}),
    ("F1Score", "categorical", {"average": "macro"}),
    ("F1Score", "binary", {"average": "micro", "threshold": 0.5}),
    ("F1Score", "binary", {"average": "weighted", "threshold": 0.3}),
    ("FBetaScore", "categorical", {"beta": 2.0, "average": "weighted"}),
    ("R2Score", "signed", {"class_aggregation": None}),
    ("R2Score", "signed", {"class_aggregation": "variance_weighted_average"}),
]


def ours(cls_name: str, options: dict) -> metrics.Metric:
    for module in (confusion, regression):
        if hasattr(module, cls_name):
            return getattr(module, cls_name)(**options)
    return metrics.METRIC_CLASSES[cls_name](**options)


def theirs(metric: metrics.Metric, options: dict):
    """The Keras metric computing what ``metric`` does."""
    cls_name = type(metric).__name__
    if cls_name == "LogCosh":
        return keras.metrics.LogCoshError()
    if hasattr(keras.metrics, cls_name):
        return getattr(keras.metrics, cls_name)(**options)
    # no Keras metric class (Huber, focal crossentropies): its loss function, averaged
    return keras.metrics.MeanMetricWrapper(getattr(keras.losses, type(metric).fn.__name__),
                                           **options)


def metric_cases(cls_name: str, kind: str, options: dict, full: bool = True) -> list[tuple]:
    """``(y_true, y_pred, weight, keras_weight)`` over shapes and weight shapes."""
    temporal = cls_name not in TWO_D_ONLY and not options.get("multi_label")
    cases = []
    for shape, mode in shape_modes(full, temporal):
        y_true, y_pred = make_inputs(kind, shape, seed=len(cases))
        w = make_weights(mode, shape)
        # Keras's confusion metrics cannot spread (N,) weights over (N, T, C); kompile can.
        spread = mode == "sample" and len(shape) == 3 and cls_name in CONFUSION
        cases.append((y_true, y_pred, w, w[:, None] if spread else w))
    return cases


def keras_value(keras_metric, y_true, y_pred, weight) -> np.ndarray:
    keras_metric.reset_state()
    keras_metric.update_state(y_true, y_pred, sample_weight=weight)
    return np.asarray(keras_metric.result())


def evaluate(metric: metrics.Metric):
    """``fn(y_true, y_pred, weight) -> result`` on a fresh state of the arrays' backend."""

    def fn(y_true, y_pred, weight):
        like = "torch" if type(y_pred).__module__.startswith("torch") else (
            "numpy" if isinstance(y_pred, np.ndarray) else "jax")
        state = {k: to_backend(like, v) for k, v in metric.init().items()}
        return metric.result(metric.update(state, y_true, y_pred, weight))

    return fn


def check_metric(metric: metrics.Metric, keras_metric, kind: str, label: str,
                 options: dict | None = None, full: bool = True) -> None:
    cases = metric_cases(type(metric).__name__, kind, options or {}, full)
    expected = [keras_value(keras_metric, yt, yp, kw) for yt, yp, _, kw in cases]
    assert_parity(evaluate(metric), [c[:3] for c in cases], expected, label, jit_all=full)


def test_every_metric_class_has_a_kind():
    registered = {type(metrics.get(n)).__name__ for n in metrics.METRICS.names()}
    assert registered <= set(KINDS)


@pytest.mark.parametrize("name", metrics.METRICS.names())
def test_registered_name_matches_keras(name):
    metric = metrics.get(name)
    assert metric.name == name
    full = metrics.METRICS.canonical(name) == name  # an alias only needs a quick check
    check_metric(metric, theirs(metric, {}), KINDS[type(metric).__name__], name, full=full)


@pytest.mark.parametrize("cls_name,kind,options", OPTION_CASES,
                         ids=[f"{c}-{o}" for c, _, o in OPTION_CASES])
def test_options_match_keras(cls_name, kind, options):
    metric = ours(cls_name, options)
    check_metric(metric, theirs(metric, options), kind, f"{cls_name}{options}", options,
                 full=False)


# Keras's own expected values for the adjusted R2 (keras/src/metrics/regression_metrics_test.py
# after Keras's fix #23334, which Keras 3.15 predates: 3.15 counts samples x columns as data
# points). (y_pred, sample_weight, class_aggregation, num_regressors, expected)
_R2_TRUE = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
_R2_SKLEARN = [[0.4, 0.5, 0.6], [0.1, 0.2, 0.3], [0.5, 0.8, 0.2]]
_R2_TFA = [[0.4, 0.9, 1.6], [0.1, 1.2, 0.6], [1.5, 0.8, 0.6]]
R2_CASES = [
    (_R2_SKLEARN, None, None, 1, [-0.26, -3.59, 0.13]),
    (_R2_TFA, [0.8, 0.1, 0.4], None, 1, [-0.65388882, -18.673332, -2.042]),
    (_R2_TFA, [0.8, 0.1, 0.4], "uniform_average", 1, -7.123073577880859),
    (_R2_TFA, [0.8, 0.1, 0.4], "variance_weighted_average", 1, -3.742044448852539),
    (_R2_TFA, [0.8, 0.1, 0.4], None, 2, [0.17305559, -8.836666, -0.521]),  # n - 1 = p: plain
]


@pytest.mark.parametrize("y_pred,weight,aggregation,p,expected", R2_CASES)
def test_adjusted_r2_matches_keras_expected_values(y_pred, weight, aggregation, p, expected):
    metric = regression.R2Score(class_aggregation=aggregation, num_regressors=p)
    w = None if weight is None else np.asarray(weight, np.float32)
    case = (np.asarray(_R2_TRUE, np.float32), np.asarray(y_pred, np.float32), w)
    assert_parity(evaluate(metric), [case], [np.asarray(expected, np.float32)], "R2Score",
                  jit_all=False)


@pytest.mark.parametrize("p", [2, 20])
def test_adjusted_r2_counts_weighted_samples(p):
    # Keras's plain score adjusted by hand with n = samples of non-zero weight (here 7 of 8,
    # make_weights zeroes the first); p = 20 >= n - 1: the plain score
    y_true, y_pred = make_inputs("signed", (8, 5))
    w = make_weights("sample", (8, 5))
    plain = keras_value(keras.metrics.R2Score(), y_true, y_pred, w)
    n = 7
    expected = plain if p >= n - 1 else 1 - (1 - plain) * (n - 1) / (n - p - 1)
    metric = regression.R2Score(num_regressors=p)
    assert_parity(evaluate(metric), [(y_true, y_pred, w)], [expected], f"R2Score p={p}",
                  jit_all=False)


def test_f1_score_name_is_macro_average():
    metric = metrics.get("f1_score")
    check_metric(metric, keras.metrics.F1Score(average="macro"), "categorical", "f1_score")


@pytest.mark.parametrize("cls_name,options,size", [
    ("F1Score", {}, 5), ("R2Score", {"class_aggregation": None}, 5),
    ("TruePositives", {"thresholds": [0.1, 0.9]}, 2), ("Precision", {"thresholds": [0.5]}, 0),
])
def test_vector_results(cls_name, options, size):
    y_true, y_pred = make_inputs("binary", (8, 5))
    value = np.asarray(ours(cls_name, options)(y_true, y_pred))
    assert value.shape == ((size,) if size else ())


def test_cosine_similarity_metric_is_positive():
    y_true, _ = make_inputs("signed", (8, 5))
    np.testing.assert_allclose(metrics.get("cosine_similarity")(y_true, y_true), 1.0, **TOL)


def test_stateful_calls_match_pure_protocol():
    metric = confusion.AUC()
    y_true, y_pred = make_inputs("binary", (8, 5))
    metric.update_state(y_true[:3], y_pred[:3])
    metric.update_state(y_true[3:], y_pred[3:])
    np.testing.assert_allclose(metric.result(), metric(y_true, y_pred), **TOL)
    metric.reset_state()
    assert float(metric.result()) == 0.0


# ----------------------------------------------------------------------------- laws

LAW_CASES = [(n, type(metrics.get(n)).__name__, {}) for n in metrics.METRICS.names()] + [
    (f"{c}{o}", c, o) for c, _, o in OPTION_CASES]


def _kind(cls_name: str, options: dict) -> str:
    return next((k for c, k, o in OPTION_CASES if c == cls_name and o == options),
                KINDS.get(cls_name, "binary"))


def _states_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(np.broadcast_to(a[k], np.shape(b[k])), b[k], **TOL)


@pytest.mark.parametrize("label,cls_name,options", LAW_CASES, ids=[c[0] for c in LAW_CASES])
def test_chunked_updates_and_merge_laws(label, cls_name, options):
    metric = ours(cls_name, options)
    y_true, y_pred = make_inputs(_kind(cls_name, options), (9, 5))
    w = make_weights("sample", (9, 5))
    parts = [slice(0, 2), slice(2, 6), slice(6, 9)]
    whole = metric.update(metric.init(), y_true, y_pred, w)
    chunked = metric.init()
    for s in parts:
        chunked = metric.update(chunked, y_true[s], y_pred[s], w[s])
    _states_close(chunked, whole)
    a, b, c = (metric.update(metric.init(), y_true[s], y_pred[s], w[s]) for s in parts)
    _states_close(metric.merge(metric.merge(a, b), c), whole)
    _states_close(metric.merge(a, metric.merge(b, c)), whole)
    _states_close(metric.merge(b, a), metric.merge(a, b))
    _states_close(metric.merge(metric.init(), a), a)
    np.testing.assert_allclose(metric.result(chunked), metric.result(whole), **TOL)


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(0, 12), seed=st.integers(0, 2**16),
       which=st.sampled_from(["auc", "pr_auc", "precision_top_k", "f1", "r2", "mse"]))
def test_any_split_gives_the_same_result(cut, seed, which):
    metric, kind = {
        "auc": (confusion.AUC(), "binary"),
        "pr_auc": (confusion.AUC(curve="PR", multi_label=True), "binary"),
        "precision_top_k": (confusion.Precision(top_k=2), "categorical"),
        "f1": (confusion.F1Score(average="weighted"), "categorical"),
        "r2": (regression.R2Score(), "signed"),
        "mse": (metrics.get("mse"), "signed"),
    }[which]
    y_true, y_pred = make_inputs(kind, (12, 4), seed=seed)
    w = make_weights("sample", (12, 4), seed=seed + 1)
    one = metric.result(metric.update(metric.init(), y_true, y_pred, w))
    state = metric.init()
    for s in (slice(0, cut), slice(cut, 12)):
        if s.stop > s.start:
            state = metric.update(state, y_true[s], y_pred[s], w[s])
    np.testing.assert_allclose(metric.result(state), one, **TOL)


@pytest.mark.parametrize("cls_name,options", [
    (c, o) for c, _, o in OPTION_CASES if c in CONFUSION | TWO_D_ONLY | {"RootMeanSquaredError"}
], ids=lambda v: str(v))
def test_config_round_trip(cls_name, options):
    metric = ours(cls_name, options)
    clone = type(metric).from_config(metric.get_config())
    y_true, y_pred = make_inputs(_kind(cls_name, options), (8, 5))
    np.testing.assert_allclose(clone(y_true, y_pred), metric(y_true, y_pred), **TOL)


@pytest.mark.parametrize("make,match", [
    (lambda: confusion.TruePositives(thresholds=[0.5, 1.5]), "thresholds"),
    (lambda: confusion.Precision(thresholds=-0.1), "thresholds"),
    (lambda: confusion.AUC(curve="ROCK"), "curve.*'ROC', 'PR', 'PRGAIN'"),
    (lambda: confusion.AUC(summation_method="trapezoid"), "summation_method"),
    (lambda: confusion.AUC(num_thresholds=1), "num_thresholds"),
    (lambda: confusion.AUC(num_labels=3), "multi_label=True"),
    (lambda: confusion.F1Score(average="mean"), "average"),
    (lambda: confusion.FBetaScore(beta=0.0), "beta"),
    (lambda: confusion.F1Score(threshold=1.5), "threshold"),
    (lambda: regression.R2Score(class_aggregation="mean"), "class_aggregation"),
    (lambda: regression.R2Score(num_regressors=-1), "num_regressors"),
])
def test_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_shape_errors():
    y_true, y_pred = make_inputs("binary", (4, 3, 5))
    with pytest.raises(ValueError, match=r"shape \(batch, labels\)"):
        confusion.AUC(multi_label=True)(y_true, y_pred)
    with pytest.raises(ValueError, match=r"shape \(batch, columns\)"):
        regression.R2Score()(y_true, y_pred)
