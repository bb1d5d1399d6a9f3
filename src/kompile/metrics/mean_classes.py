"""The mean metrics that average a loss, with explicit signatures (accuracies: accuracy_classes.py).

Each class averages a per-sample function over all the samples seen (``Mean``'s total
and count states) and spells out that function's options. ``metrics/__init__.py``
registers them under the function's name (and the loss aliases). Owns no math: the
accuracies live in ``base.py``, the losses in ``losses.py``.
"""

from __future__ import annotations

from typing import Any

from .. import losses
from .base import (
    MeanMetricWrapper,
    _options,
)


class MeanSquaredError(MeanMetricWrapper):
    """The loss ``mean_squared_error`` as a metric: its mean over all samples seen.

    Mean of the squared errors over the last axis. ``mean((y_pred - y_true) ** 2,
    axis=-1)``. In ``compile(metrics=[...])`` as ``"mean_squared_error"`` or as this class.
    Sample weights apply when it is given in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"mean_squared_error"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.MeanSquaredError()
        >>> metric.update_state(np.array([[0., 1.]]), np.array([[1., 1.]]))
        >>> round(float(metric.result()), 4)
        0.5
    """

    fn = staticmethod(losses.mean_squared_error)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class MeanAbsoluteError(MeanMetricWrapper):
    """The loss ``mean_absolute_error`` as a metric: its mean over all samples seen.

    Mean of the absolute errors over the last axis. ``mean(abs(y_pred - y_true), axis=-1)``.
    In ``compile(metrics=[...])`` as ``"mean_absolute_error"`` or as this class. Sample
    weights apply when it is given in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"mean_absolute_error"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.MeanAbsoluteError()
        >>> metric.update_state(np.array([[0., 1.]]), np.array([[1., 3.]]))
        >>> round(float(metric.result()), 4)
        1.5
    """

    fn = staticmethod(losses.mean_absolute_error)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """The loss ``mean_absolute_percentage_error`` as a metric: its mean over all samples seen.

    Mean absolute error relative to the target, in percent. ``100 * mean(abs((y_true -
    y_pred) / max(abs(y_true), eps)), axis=-1)``. In ``compile(metrics=[...])`` as
    ``"mean_absolute_percentage_error"`` or as this class. Sample weights apply when it is
    given in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"mean_absolute_percentage_error"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.MeanAbsolutePercentageError()
        >>> metric.update_state(np.array([[2., 4.]]), np.array([[1., 4.]]))
        >>> round(float(metric.result()), 4)
        25.0
    """

    fn = staticmethod(losses.mean_absolute_percentage_error)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """The loss ``mean_squared_logarithmic_error`` as a metric: its mean over all samples seen.

    Mean squared error of ``log(1 + y)``: relative errors, for positive targets.
    ``mean((log(1 + y_pred) - log(1 + y_true)) ** 2, axis=-1)``. In
    ``compile(metrics=[...])`` as ``"mean_squared_logarithmic_error"`` or as this class.
    Sample weights apply when it is given in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"mean_squared_logarithmic_error"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.MeanSquaredLogarithmicError()
        >>> metric.update_state(np.array([[0., 0.]]), np.array([[0., 0.]]))
        >>> round(float(metric.result()), 4)
        0.0
    """

    fn = staticmethod(losses.mean_squared_logarithmic_error)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class BinaryCrossentropy(MeanMetricWrapper):
    """The loss ``binary_crossentropy`` as a metric: its mean over all samples seen.

    Crossentropy of independent yes/no labels (one sigmoid unit per label). Targets are 0/1
    (or probabilities), predictions probabilities, or logits with ``from_logits=True``; the
    mean over the last axis. Multi-label targets (several 1s per row) are fine. In
    ``compile(metrics=[...])`` as ``"binary_crossentropy"`` or as this class. Sample weights
    apply when it is given in ``weighted_metrics``.

    Args:
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        label_smoothing: In [0, 1]: move the targets toward the uniform distribution by this
            amount (0 = none). Default ``0.0``.
        axis: The axis holding the classes (or the vector). Default ``-1``.
        name: The log name. Default ``None``: ``"binary_crossentropy"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.BinaryCrossentropy()
        >>> metric.update_state(np.array([[0., 1.]]), np.array([[0.5, 0.5]]))
        >>> round(float(metric.result()), 4)
        0.6931
    """

    fn = staticmethod(losses.binary_crossentropy)

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class CategoricalCrossentropy(MeanMetricWrapper):
    """The loss ``categorical_crossentropy`` as a metric: its mean over all samples seen.

    Crossentropy of one-hot (or soft) targets against a class distribution. Targets are one-
    hot rows ``(N, C)``; predictions probabilities (a softmax output) or logits with
    ``from_logits=True``. For integer labels use ``SparseCategoricalCrossentropy``. In
    ``compile(metrics=[...])`` as ``"categorical_crossentropy"`` or as this class. Sample
    weights apply when it is given in ``weighted_metrics``.

    Args:
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        label_smoothing: In [0, 1]: move the targets toward the uniform distribution by this
            amount (0 = none). Default ``0.0``.
        axis: The axis holding the classes (or the vector). Default ``-1``.
        name: The log name. Default ``None``: ``"categorical_crossentropy"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.CategoricalCrossentropy()
        >>> metric.update_state(np.array([[0., 1.]]), np.array([[0.5, 0.5]]))
        >>> round(float(metric.result()), 4)
        0.6931
    """

    fn = staticmethod(losses.categorical_crossentropy)

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """The loss ``sparse_categorical_crossentropy`` as a metric: its mean over all samples seen.

    Crossentropy of integer class labels against a class distribution. Targets are class
    indices ``(N,)`` (or ``(N, 1)``); predictions ``(N, C)`` probabilities or logits with
    ``from_logits=True``. In ``compile(metrics=[...])`` as
    ``"sparse_categorical_crossentropy"`` or as this class. Sample weights apply when it is
    given in ``weighted_metrics``.

    Args:
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        ignore_class: A label whose samples contribute 0 (e.g. padding); ``None`` = every
            label counts. Default ``None``.
        axis: The axis holding the classes (or the vector). Default ``-1``.
        name: The log name. Default ``None``: ``"sparse_categorical_crossentropy"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.SparseCategoricalCrossentropy()
        >>> metric.update_state(np.array([1]), np.array([[0.5, 0.5]]))
        >>> round(float(metric.result()), 4)
        0.6931
    """

    fn = staticmethod(losses.sparse_categorical_crossentropy)

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None, axis: int = -1,
                 name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class BinaryFocalCrossentropy(MeanMetricWrapper):
    """The loss ``binary_focal_crossentropy`` as a metric: its mean over all samples seen.

    Binary crossentropy down-weighting easy examples by ``(1 - p_t) ** gamma`` (focal loss).
    With ``gamma=0`` and no class balancing it equals binary crossentropy. In
    ``compile(metrics=[...])`` as ``"binary_focal_crossentropy"`` or as this class. Sample
    weights apply when it is given in ``weighted_metrics``.

    Args:
        apply_class_balancing: Weigh positives by ``alpha`` and negatives by ``1 - alpha``.
            Default ``False``.
        alpha: The class-balancing weight. Default ``0.25``.
        gamma: The focusing exponent: larger values down-weight easy examples more. Default
            ``2.0``.
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        label_smoothing: In [0, 1]: move the targets toward the uniform distribution by this
            amount (0 = none). Default ``0.0``.
        axis: The axis holding the classes (or the vector). Default ``-1``.
        name: The log name. Default ``None``: ``"binary_focal_crossentropy"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.BinaryFocalCrossentropy()
        >>> metric.update_state(np.array([[0., 1.]]), np.array([[0.5, 0.5]]))
        >>> round(float(metric.result()), 4)
        0.1733
    """

    fn = staticmethod(losses.binary_focal_crossentropy)

    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25,
                 gamma: float = 2.0, from_logits: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class CategoricalFocalCrossentropy(MeanMetricWrapper):
    """The loss ``categorical_focal_crossentropy`` as a metric: its mean over all samples seen.

    Categorical crossentropy down-weighting easy examples by ``alpha * (1 - p) ** gamma``.
    Targets are one-hot rows, as for categorical crossentropy. In ``compile(metrics=[...])``
    as ``"categorical_focal_crossentropy"`` or as this class. Sample weights apply when it
    is given in ``weighted_metrics``.

    Args:
        alpha: The class-balancing weight. Default ``0.25``.
        gamma: The focusing exponent: larger values down-weight easy examples more. Default
            ``2.0``.
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        label_smoothing: In [0, 1]: move the targets toward the uniform distribution by this
            amount (0 = none). Default ``0.0``.
        axis: The axis holding the classes (or the vector). Default ``-1``.
        name: The log name. Default ``None``: ``"categorical_focal_crossentropy"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.CategoricalFocalCrossentropy()
        >>> metric.update_state(np.array([[0., 1.]]), np.array([[0.5, 0.5]]))
        >>> round(float(metric.result()), 4)
        0.0433
    """

    fn = staticmethod(losses.categorical_focal_crossentropy)

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                 label_smoothing: float = 0.0, axis: int = -1, name: str | None = None,
                 dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class KLDivergence(MeanMetricWrapper):
    """The loss ``kl_divergence`` as a metric: its mean over all samples seen.

    Kullback-Leibler divergence of the predicted distribution from the target one.
    ``sum(y_true * log(y_true / y_pred), axis=-1)``, both clipped to ``[eps, 1]``. In
    ``compile(metrics=[...])`` as ``"kl_divergence"`` or as this class. Sample weights apply
    when it is given in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"kl_divergence"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.KLDivergence()
        >>> metric.update_state(np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]))
        >>> round(float(metric.result()), 4)
        0.0
    """

    fn = staticmethod(losses.kl_divergence)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class Poisson(MeanMetricWrapper):
    """The loss ``poisson`` as a metric: its mean over all samples seen.

    Poisson negative log-likelihood, for count targets. ``mean(y_pred - y_true * log(y_pred
    + eps), axis=-1)``. In ``compile(metrics=[...])`` as ``"poisson"`` or as this class.
    Sample weights apply when it is given in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"poisson"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.Poisson()
        >>> metric.update_state(np.array([[1., 1.]]), np.array([[1., 1.]]))
        >>> round(float(metric.result()), 4)
        1.0
    """

    fn = staticmethod(losses.poisson)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class LogCosh(MeanMetricWrapper):
    """The loss ``log_cosh`` as a metric: its mean over all samples seen.

    Mean of ``log(cosh(error))``: squared error for small errors, absolute error for large
    ones. ``mean(log(cosh(y_pred - y_true)), axis=-1)``, computed without overflow. In
    ``compile(metrics=[...])`` as ``"log_cosh"`` or as this class. Sample weights apply when
    it is given in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"log_cosh"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.LogCosh()
        >>> metric.update_state(np.array([[0., 0.]]), np.array([[0., 0.]]))
        >>> round(float(metric.result()), 4)
        0.0
    """

    fn = staticmethod(losses.log_cosh)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class Huber(MeanMetricWrapper):
    """The loss ``huber`` as a metric: its mean over all samples seen.

    Huber loss: quadratic for errors up to ``delta``, linear beyond (robust to outliers).
    ``0.5 * e**2`` where ``|e| <= delta``, else ``delta * |e| - 0.5 * delta**2``; mean over
    the last axis. In ``compile(metrics=[...])`` as ``"huber"`` or as this class. Sample
    weights apply when it is given in ``weighted_metrics``.

    Args:
        delta: Where the loss turns from quadratic to linear. Default ``1.0``.
        name: The log name. Default ``None``: ``"huber"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.Huber()
        >>> metric.update_state(np.array([[0., 0.]]), np.array([[0.5, 3.]]))
        >>> round(float(metric.result()), 4)
        1.3125
    """

    fn = staticmethod(losses.huber)

    def __init__(self, delta: float = 1.0, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class Hinge(MeanMetricWrapper):
    """The loss ``hinge`` as a metric: its mean over all samples seen.

    Hinge loss of labels -1/1 (0/1 labels are converted). ``mean(max(1 - y_true * y_pred,
    0), axis=-1)``. In ``compile(metrics=[...])`` as ``"hinge"`` or as this class. Sample
    weights apply when it is given in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"hinge"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.Hinge()
        >>> metric.update_state(np.array([[1., 0.]]), np.array([[0.5, -2.]]))
        >>> round(float(metric.result()), 4)
        0.25
    """

    fn = staticmethod(losses.hinge)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class SquaredHinge(MeanMetricWrapper):
    """The loss ``squared_hinge`` as a metric: its mean over all samples seen.

    Squared hinge loss of labels -1/1 (0/1 labels are converted). ``mean(max(1 - y_true *
    y_pred, 0) ** 2, axis=-1)``. In ``compile(metrics=[...])`` as ``"squared_hinge"`` or as
    this class. Sample weights apply when it is given in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"squared_hinge"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.SquaredHinge()
        >>> metric.update_state(np.array([[1., 0.]]), np.array([[0.5, -2.]]))
        >>> round(float(metric.result()), 4)
        0.125
    """

    fn = staticmethod(losses.squared_hinge)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


class CategoricalHinge(MeanMetricWrapper):
    """The loss ``categorical_hinge`` as a metric: its mean over all samples seen.

    Categorical hinge of one-hot targets. ``max(max((1 - y_true) * y_pred) - sum(y_true *
    y_pred) + 1, 0)``. In ``compile(metrics=[...])`` as ``"categorical_hinge"`` or as this
    class. Sample weights apply when it is given in ``weighted_metrics``.

    Args:
        name: The log name. Default ``None``: ``"categorical_hinge"``.
        dtype: Accepted for Keras compatibility; states are float32 sums.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> metric = kp.metrics.CategoricalHinge()
        >>> metric.update_state(np.array([[0., 1.]]), np.array([[0.2, 0.9]]))
        >>> round(float(metric.result()), 4)
        0.3
    """

    fn = staticmethod(losses.categorical_hinge)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(None, name, dtype, _options(locals()))


__all__ = [
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError", "BinaryCrossentropy", "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy", "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy",
    "KLDivergence", "Poisson", "LogCosh", "Huber", "Hinge", "SquaredHinge", "CategoricalHinge",
]
