"""The accuracy and similarity mean metrics, with explicit signatures.

Each class averages a per-sample function from ``base.py`` over all the samples seen
(``Mean``'s total and count states) and spells out that function's options.
``metrics/__init__.py`` registers them under the function's name; the losses as mean
metrics live in ``mean_classes.py``.
"""

from __future__ import annotations

from typing import Any

from .base import (
    MeanMetricWrapper,
    _options,
    binary_accuracy,
    categorical_accuracy,
    cosine_similarity,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)


class BinaryAccuracy(MeanMetricWrapper):
    """How often thresholded predictions equal binary targets.

    Targets are 0/1; each element is thresholded and compared; the per-sample value is the
    mean over the last axis. In ``compile(metrics=[...])`` as ``"binary_accuracy"`` or as
    this class. Sample weights apply when it is given in ``weighted_metrics``.

    Args:
        threshold: Predictions above it count as 1, others as 0. Default ``0.5``.
        name: The log name. Default ``None``: ``"binary_accuracy"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.BinaryAccuracy()
        >>> metric.update_state(np.array([[1.], [0.]]), np.array([[0.9], [0.8]]))
        >>> round(float(metric.result()), 4)
        0.5
    """

    fn = staticmethod(binary_accuracy)

    def __init__(self, threshold: float = 0.5, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the predicted class (argmax) equals the one-hot target's.

    Targets are one-hot rows ``(N, C)``. In ``compile(metrics=[...])`` as
    ``"categorical_accuracy"`` or as this class. Sample weights apply when it is given in
    ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"categorical_accuracy"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.CategoricalAccuracy()
        >>> metric.update_state(np.array([[0., 1.], [1., 0.]]), np.array([[0.2, 0.8], [0.3, 0.7]]))
        >>> round(float(metric.result()), 4)
        0.5
    """

    fn = staticmethod(categorical_accuracy)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the predicted class (argmax) equals the integer label.

    Targets are class indices ``(N,)`` or ``(N, 1)``. In ``compile(metrics=[...])`` as
    ``"sparse_categorical_accuracy"`` or as this class. Sample weights apply when it is
    given in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"sparse_categorical_accuracy"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.SparseCategoricalAccuracy()
        >>> metric.update_state(np.array([1, 0]), np.array([[0.2, 0.8], [0.3, 0.7]]))
        >>> round(float(metric.result()), 4)
        0.5
    """

    fn = staticmethod(sparse_categorical_accuracy)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target's class is among the ``k`` highest predictions.

    Targets are one-hot rows ``(N, C)``. In ``compile(metrics=[...])`` as
    ``"top_k_categorical_accuracy"`` or as this class. Sample weights apply when it is given
    in ``weighted_metrics``.

    Args:
        k: How many of the highest-scoring classes count as a hit. Default ``5``.
        name: The log name. Default ``None``: ``"top_k_categorical_accuracy"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.TopKCategoricalAccuracy()
        >>> metric.update_state(np.array([[0., 0., 1.]]), np.array([[0.5, 0.3, 0.2]]))
        >>> round(float(metric.result()), 4)
        1.0
    """

    fn = staticmethod(top_k_categorical_accuracy)

    def __init__(self, k: int = 5, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the ``k`` highest predictions.

    Targets are class indices ``(N,)`` or ``(N, 1)``. In ``compile(metrics=[...])`` as
    ``"sparse_top_k_categorical_accuracy"`` or as this class. Sample weights apply when it
    is given in ``weighted_metrics``.

    Args:
        k: How many of the highest-scoring classes count as a hit. Default ``5``.
        name: The log name. Default ``None``: ``"sparse_top_k_categorical_accuracy"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.SparseTopKCategoricalAccuracy()
        >>> metric.update_state(np.array([2]), np.array([[0.5, 0.3, 0.2]]))
        >>> round(float(metric.result()), 4)
        1.0
    """

    fn = staticmethod(sparse_top_k_categorical_accuracy)

    def __init__(self, k: int = 5, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class CosineSimilarity(MeanMetricWrapper):
    """The mean cosine similarity of targets and predictions along ``axis``.

    1 when they point the same way, -1 when opposite (the loss of the same name is its
    negative). In ``compile(metrics=[...])`` as ``"cosine_similarity"`` or as this class.
    Sample weights apply when it is given in ``weighted_metrics``.

    Args:
        axis: The axis holding the classes (or the vector). Default ``-1``.
        name: The log name. Default ``None``: ``"cosine_similarity"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.CosineSimilarity()
        >>> metric.update_state(np.array([[1., 0.]]), np.array([[2., 0.]]))
        >>> round(float(metric.result()), 4)
        1.0
    """

    fn = staticmethod(cosine_similarity)

    def __init__(self, axis: int = -1, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


__all__ = [
    "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "CosineSimilarity",
]
