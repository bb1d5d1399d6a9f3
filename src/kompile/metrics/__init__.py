"""Metric registry: names and aliases to metric classes, and ``get`` to resolve them.

``"accuracy"``/``"acc"`` and ``"crossentropy"``/``"ce"`` resolve to an ``AutoMetric``
placeholder whose concrete metric is chosen per output by ``compile.resolve_auto``.
"""

from __future__ import annotations

from typing import Any

from .. import losses
from ..registry import Registry, custom_name, get_custom, type_error
from . import accuracy_classes, mean_classes
from .accuracy_classes import (
    BinaryAccuracy,
    CategoricalAccuracy,
    CosineSimilarity,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
)
from .base import (
    Mean,
    MeanMetricWrapper,
    Metric,
    binary_accuracy,
    categorical_accuracy,
    cosine_similarity,
    custom_metric,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from .confusion import (
    AUC,
    FalseNegatives,
    FalsePositives,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
)
from .exact import Accuracy, accuracy
from .fscores import F1Score, FBetaScore
from .mean_classes import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalHinge,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
from .regression import R2Score, RootMeanSquaredError

METRICS = Registry("metric")
METRIC_CLASSES: dict[str, type[Metric]] = {}


def _add(cls: type[Metric], *names: str) -> type[Metric]:
    METRIC_CLASSES[cls.__name__] = cls
    if names:
        METRICS.add(list(names), cls)
    return cls


for _cls in [*accuracy_classes.__dict__.values(), *mean_classes.__dict__.values()]:
    # explicit classes, one per function
    if isinstance(_cls, type) and issubclass(_cls, MeanMetricWrapper) and _cls.fn is not None:
        _fn = _cls.fn
        _loss = losses.LOSS_CLASSES.get(_cls.__name__)
        _aliases = [] if _loss is None or _cls.__name__ == "CosineSimilarity" else [
            a for a in losses.LOSSES.names() if losses.LOSSES.get(a) is _loss]
        _add(_cls, _fn.__name__, *[a for a in _aliases if a != _fn.__name__])
for _cls, _names in [
    (AUC, ["auc"]), (Precision, ["precision"]), (Recall, ["recall"]),
    (TruePositives, ["true_positives"]), (FalsePositives, ["false_positives"]),
    (TrueNegatives, ["true_negatives"]), (FalseNegatives, ["false_negatives"]),
    (RootMeanSquaredError, ["root_mean_squared_error"]), (R2Score, ["r2_score"]),
    (F1Score, []), (FBetaScore, []), (Mean, []), (MeanMetricWrapper, []),
    (Accuracy, []),  # the name "accuracy" is the per-output choice (AUTO_NAMES)
]:
    _add(_cls, *_names)

AUTO_NAMES = {"accuracy": "accuracy", "acc": "accuracy", "crossentropy": "crossentropy",
              "ce": "crossentropy"}


class AutoMetric(Metric):
    """``"accuracy"`` or ``"crossentropy"`` before the output's loss and shapes are known."""

    def __init__(self, kind: str, name: str):
        super().__init__(name=name)
        self.kind = kind


def is_auto(name: Any) -> bool:
    return isinstance(name, str) and name.lower() in AUTO_NAMES


def get(identifier: Any) -> Metric:
    """Resolve a metric given as a name, a Metric class or instance, or a plain function.

    Args:
        identifier: A metric name or alias, a ``Metric`` class or object, a ``Loss``
            class or object (its mean), or a function ``fn(y_true, y_pred) -> per-sample
            values``.

    Returns:
        A ``Metric`` object (``"accuracy"``/``"crossentropy"`` give a placeholder that
        ``compile`` resolves per output).

    Raises:
        ValueError: An unknown name (the message lists the valid ones and the closest).
        TypeError: Something that is not a metric.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if is_auto(identifier):
            return AutoMetric(AUTO_NAMES[identifier.lower()], identifier)
        if identifier == "f1_score":
            return F1Score(average="macro", name=identifier)  # a scalar log [decision]
        metric = METRICS.get(identifier)()
        metric.name = identifier
        return metric
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, type) and issubclass(identifier, losses.Loss):
        identifier = identifier()  # a loss class as a metric: its default instance
    if isinstance(identifier, losses.Loss):
        return MeanMetricWrapper(identifier.call, name=identifier.name)
    if callable(identifier):
        for cls in METRIC_CLASSES.values():
            if getattr(cls, "fn", None) is identifier:
                return cls()
        return MeanMetricWrapper(identifier)
    raise type_error("metrics", "a metric name, a kp.metrics.Metric, or a callable", identifier)


def serialize(metric: Metric) -> dict[str, Any]:
    """``{"class_name", "config"}`` for a metric (custom ones must be registered).

    Args:
        metric: A ``Metric`` object.

    Returns:
        A JSON-serialisable dict.
    """
    if isinstance(metric, AutoMetric):
        return {"class_name": "auto", "config": {"name": metric.name}}
    config = metric.get_config()
    cls_name = custom_name(type(metric)) or type(metric).__name__  # its registered name
    if cls_name == "MeanMetricWrapper":
        wrapped = metric.wrapped  # type: ignore[attr-defined]  # a MeanMetricWrapper
        fn_name = custom_name(wrapped)
        if fn_name is None:
            raise ValueError(
                f"Cannot serialise the metric function {wrapped!r}: it is not registered. "
                "Register it with kp.register(fn) (or @kp.register) before get_compile_config()."
            )
        config["fn"] = fn_name
    elif cls_name not in METRIC_CLASSES and custom_name(type(metric)) is None:
        raise ValueError(
            f"Cannot serialise the metric {metric!r}: its class is not registered. "
            "Register it with kp.register(cls) before get_compile_config()."
        )
    return {"class_name": cls_name, "config": config}


def deserialize(config: dict[str, Any]) -> Metric:
    """A metric from the dict ``serialize`` made.

    Args:
        config: ``{"class_name": ..., "config": ...}``.

    Returns:
        The ``Metric`` object.
    """
    name, cfg = config["class_name"], dict(config["config"])
    if name == "auto":
        return get(cfg["name"])
    if name == "MeanMetricWrapper":
        fn = get_custom(cfg.pop("fn"))
        return MeanMetricWrapper(fn, cfg.pop("name", None), cfg.pop("dtype", None), cfg)
    cls = METRIC_CLASSES.get(name) or get_custom(name)
    return cls.from_config(cfg)


__all__ = [
    "AUC", "Accuracy", "AutoMetric", "BinaryAccuracy", "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalAccuracy", "CategoricalCrossentropy", "CategoricalFocalCrossentropy",
    "CategoricalHinge", "CosineSimilarity", "F1Score", "FBetaScore", "FalseNegatives",
    "FalsePositives", "Hinge", "Huber", "KLDivergence", "LogCosh", "Mean", "MeanAbsoluteError",
    "MeanAbsolutePercentageError", "MeanMetricWrapper", "MeanSquaredError",
    "MeanSquaredLogarithmicError", "Metric", "Poisson", "Precision", "R2Score", "Recall",
    "RootMeanSquaredError", "SparseCategoricalAccuracy", "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy", "SquaredHinge", "TopKCategoricalAccuracy",
    "TrueNegatives", "TruePositives", "custom_metric", "deserialize", "get", "serialize",
    "accuracy", "binary_accuracy", "categorical_accuracy", "cosine_similarity",
    "sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]
