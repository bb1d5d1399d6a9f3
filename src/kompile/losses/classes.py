"""The loss classes: one per loss function of ``functions.py``, with Keras's options.

Each class spells out its options (explicit signature, documented), sets ``fn`` and is
registered under the function's name and its aliases, so ``"mse"``,
``kp.losses.mean_squared_error`` and ``kp.losses.MeanSquaredError()`` are one loss.
The probabilistic ones (crossentropies, KL divergence, Poisson) are written in
``probabilistic.py``; this module holds the others and registers them all. Imported
by the package ``__init__`` (which re-exports every class); owns no math.
"""

from __future__ import annotations

from .base import (
    LOSS_CLASSES,
    LOSSES,
    Loss,
    _options,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
    cosine_similarity,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
)
from .probabilistic import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
)


class MeanSquaredError(Loss):
    """Mean of the squared errors over the last axis.

    ``mean((y_pred - y_true) ** 2, axis=-1)``. In ``compile`` as ``"mean_squared_error"``,
    ``"mse"`` or as this class.

    Args:
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"mean_squared_error"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.MeanSquaredError()
        >>> round(float(loss(np.array([[0., 1.]]), np.array([[1., 1.]]))), 4)
        0.5
    """

    fn = staticmethod(mean_squared_error)

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class MeanAbsoluteError(Loss):
    """Mean of the absolute errors over the last axis.

    ``mean(abs(y_pred - y_true), axis=-1)``. In ``compile`` as ``"mean_absolute_error"``,
    ``"mae"`` or as this class.

    Args:
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"mean_absolute_error"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.MeanAbsoluteError()
        >>> round(float(loss(np.array([[0., 1.]]), np.array([[1., 3.]]))), 4)
        1.5
    """

    fn = staticmethod(mean_absolute_error)

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class MeanAbsolutePercentageError(Loss):
    """Mean absolute error relative to the target, in percent.

    ``100 * mean(abs((y_true - y_pred) / max(abs(y_true), eps)), axis=-1)``. In ``compile``
    as ``"mean_absolute_percentage_error"``, ``"mape"`` or as this class.

    Args:
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"mean_absolute_percentage_error"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.MeanAbsolutePercentageError()
        >>> round(float(loss(np.array([[2., 4.]]), np.array([[1., 4.]]))), 4)
        25.0
    """

    fn = staticmethod(mean_absolute_percentage_error)

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class MeanSquaredLogarithmicError(Loss):
    """Mean squared error of ``log(1 + y)``: relative errors, for positive targets.

    ``mean((log(1 + y_pred) - log(1 + y_true)) ** 2, axis=-1)``. In ``compile`` as
    ``"mean_squared_logarithmic_error"``, ``"msle"`` or as this class.

    Args:
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"mean_squared_logarithmic_error"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.MeanSquaredLogarithmicError()
        >>> round(float(loss(np.array([[0., 0.]]), np.array([[0., 0.]]))), 4)
        0.0
    """

    fn = staticmethod(mean_squared_logarithmic_error)

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class CosineSimilarity(Loss):
    """Minus the cosine similarity of target and prediction along ``axis``.

    -1 when they point the same way, 1 when opposite; minimising it aligns them. In
    ``compile`` as ``"cosine_similarity"`` or as this class.

    Args:
        axis: The axis holding the classes (or the vector). Default ``-1``.
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"cosine_similarity"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.CosineSimilarity()
        >>> round(float(loss(np.array([[1., 0.]]), np.array([[2., 0.]]))), 4)
        -1.0
    """

    fn = staticmethod(cosine_similarity)

    def __init__(self, axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class LogCosh(Loss):
    """Mean of ``log(cosh(error))``: squared error for small errors, absolute error for large ones.

    ``mean(log(cosh(y_pred - y_true)), axis=-1)``, computed without overflow. In ``compile``
    as ``"log_cosh"``, ``"logcosh"`` or as this class.

    Args:
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"log_cosh"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.LogCosh()
        >>> round(float(loss(np.array([[0., 0.]]), np.array([[0., 0.]]))), 4)
        0.0
    """

    fn = staticmethod(log_cosh)

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class Huber(Loss):
    """Huber loss: quadratic for errors up to ``delta``, linear beyond (robust to outliers).

    ``0.5 * e**2`` where ``|e| <= delta``, else ``delta * |e| - 0.5 * delta**2``; mean over
    the last axis. In ``compile`` as ``"huber"``, ``"huber_loss"`` or as this class.

    Args:
        delta: Where the loss turns from quadratic to linear. Default ``1.0``.
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"huber"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.Huber()
        >>> round(float(loss(np.array([[0., 0.]]), np.array([[0.5, 3.]]))), 4)
        1.3125
    """

    fn = staticmethod(huber)

    def __init__(self, delta: float = 1.0, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class Hinge(Loss):
    """Hinge loss of labels -1/1 (0/1 labels are converted).

    ``mean(max(1 - y_true * y_pred, 0), axis=-1)``. In ``compile`` as ``"hinge"`` or as this
    class.

    Args:
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"hinge"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.Hinge()
        >>> round(float(loss(np.array([[1., 0.]]), np.array([[0.5, -2.]]))), 4)
        0.25
    """

    fn = staticmethod(hinge)

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class SquaredHinge(Loss):
    """Squared hinge loss of labels -1/1 (0/1 labels are converted).

    ``mean(max(1 - y_true * y_pred, 0) ** 2, axis=-1)``. In ``compile`` as
    ``"squared_hinge"`` or as this class.

    Args:
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"squared_hinge"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.SquaredHinge()
        >>> round(float(loss(np.array([[1., 0.]]), np.array([[0.5, -2.]]))), 4)
        0.125
    """

    fn = staticmethod(squared_hinge)

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class CategoricalHinge(Loss):
    """Categorical hinge of one-hot targets.

    ``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)``. In ``compile`` as
    ``"categorical_hinge"`` or as this class.

    Args:
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"categorical_hinge"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.CategoricalHinge()
        >>> round(float(loss(np.array([[0., 1.]]), np.array([[0.2, 0.9]]))), 4)
        0.3
    """

    fn = staticmethod(categorical_hinge)

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


LOSSES.add([mean_squared_error.__name__, "mse"], MeanSquaredError)
LOSSES.add([mean_absolute_error.__name__, "mae"], MeanAbsoluteError)
LOSSES.add([mean_absolute_percentage_error.__name__, "mape"], MeanAbsolutePercentageError)
LOSSES.add([mean_squared_logarithmic_error.__name__, "msle"], MeanSquaredLogarithmicError)
LOSSES.add([binary_crossentropy.__name__, "bce"], BinaryCrossentropy)
LOSSES.add([categorical_crossentropy.__name__, "cce"], CategoricalCrossentropy)
LOSSES.add([sparse_categorical_crossentropy.__name__, "scce"], SparseCategoricalCrossentropy)
LOSSES.add([binary_focal_crossentropy.__name__], BinaryFocalCrossentropy)
LOSSES.add([categorical_focal_crossentropy.__name__], CategoricalFocalCrossentropy)
LOSSES.add([kl_divergence.__name__, "kld", "kullback_leibler_divergence"], KLDivergence)
LOSSES.add([poisson.__name__], Poisson)
LOSSES.add([cosine_similarity.__name__], CosineSimilarity)
LOSSES.add([log_cosh.__name__, "logcosh"], LogCosh)
LOSSES.add([huber.__name__, "huber_loss"], Huber)
LOSSES.add([hinge.__name__], Hinge)
LOSSES.add([squared_hinge.__name__], SquaredHinge)
LOSSES.add([categorical_hinge.__name__], CategoricalHinge)
LOSS_CLASSES.update({cls.__name__: cls for cls in (
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, BinaryFocalCrossentropy, CategoricalFocalCrossentropy,
    KLDivergence, Poisson, CosineSimilarity, LogCosh, Huber, Hinge, SquaredHinge,
    CategoricalHinge
)})

__all__ = [
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError", "BinaryCrossentropy", "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy", "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy",
    "KLDivergence", "Poisson", "CosineSimilarity", "LogCosh", "Huber", "Hinge", "SquaredHinge",
    "CategoricalHinge",
]
