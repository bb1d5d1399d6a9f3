"""The probabilistic loss classes: the crossentropies (binary, categorical, sparse, focal),
KL divergence and Poisson, with Keras's options.

Each class spells out its options (explicit signature, documented) and sets ``fn``;
``classes.py`` registers them with the other loss classes and ``base.py``
re-exports them. Owns no math.
"""

from __future__ import annotations

from .base import (
    Loss,
    _options,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    kl_divergence,
    poisson,
    sparse_categorical_crossentropy,
)


class BinaryCrossentropy(Loss):
    """Crossentropy of independent yes/no labels (one sigmoid unit per label).

    Targets are 0/1 (or probabilities), predictions probabilities, or logits with
    ``from_logits=True``; the mean over the last axis. Multi-label targets (several 1s per
    row) are fine. In ``compile`` as ``"binary_crossentropy"``, ``"bce"`` or as this class.

    Args:
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        label_smoothing: In [0, 1]: move the targets toward the uniform distribution by this
            amount (0 = none). Default ``0.0``.
        axis: The axis holding the classes (or the vector). Default ``-1``.
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"binary_crossentropy"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.BinaryCrossentropy()
        >>> round(float(loss(np.array([[0., 1.]]), np.array([[0.5, 0.5]]))), 4)
        0.6931
    """

    fn = staticmethod(binary_crossentropy)

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class CategoricalCrossentropy(Loss):
    """Crossentropy of one-hot (or soft) targets against a class distribution.

    Targets are one-hot rows ``(N, C)``; predictions probabilities (a softmax output) or
    logits with ``from_logits=True``. For integer labels use
    ``SparseCategoricalCrossentropy``. In ``compile`` as ``"categorical_crossentropy"``,
    ``"cce"`` or as this class.

    Args:
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        label_smoothing: In [0, 1]: move the targets toward the uniform distribution by this
            amount (0 = none). Default ``0.0``.
        axis: The axis holding the classes (or the vector). Default ``-1``.
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"categorical_crossentropy"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.CategoricalCrossentropy()
        >>> round(float(loss(np.array([[0., 1.]]), np.array([[0.5, 0.5]]))), 4)
        0.6931
    """

    fn = staticmethod(categorical_crossentropy)

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class SparseCategoricalCrossentropy(Loss):
    """Crossentropy of integer class labels against a class distribution.

    Targets are class indices ``(N,)`` (or ``(N, 1)``); predictions ``(N, C)`` probabilities
    or logits with ``from_logits=True``. In ``compile`` as
    ``"sparse_categorical_crossentropy"``, ``"scce"`` or as this class.

    Args:
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        ignore_class: A label whose samples contribute 0 (e.g. padding); ``None`` = every
            label counts. Default ``None``.
        axis: The axis holding the classes (or the vector). Default ``-1``.
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"sparse_categorical_crossentropy"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.SparseCategoricalCrossentropy()
        >>> round(float(loss(np.array([1]), np.array([[0.5, 0.5]]))), 4)
        0.6931
    """

    fn = staticmethod(sparse_categorical_crossentropy)

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class BinaryFocalCrossentropy(Loss):
    """Binary crossentropy down-weighting easy examples by ``(1 - p_t) ** gamma`` (focal loss).

    With ``gamma=0`` and no class balancing it equals binary crossentropy. In ``compile`` as
    ``"binary_focal_crossentropy"`` or as this class.

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
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"binary_focal_crossentropy"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.BinaryFocalCrossentropy()
        >>> round(float(loss(np.array([[0., 1.]]), np.array([[0.5, 0.5]]))), 4)
        0.1733
    """

    fn = staticmethod(binary_focal_crossentropy)

    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25,
                 gamma: float = 2.0, from_logits: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class CategoricalFocalCrossentropy(Loss):
    """Categorical crossentropy down-weighting easy examples by ``alpha * (1 - p) ** gamma``.

    Targets are one-hot rows, as for categorical crossentropy. In ``compile`` as
    ``"categorical_focal_crossentropy"`` or as this class.

    Args:
        alpha: The class-balancing weight. Default ``0.25``.
        gamma: The focusing exponent: larger values down-weight easy examples more. Default
            ``2.0``.
        from_logits: Whether ``y_pred`` holds logits (unnormalised scores) rather than
            probabilities; logits are more accurate numerically. Default ``False``.
        label_smoothing: In [0, 1]: move the targets toward the uniform distribution by this
            amount (0 = none). Default ``0.0``.
        axis: The axis holding the classes (or the vector). Default ``-1``.
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"categorical_focal_crossentropy"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.CategoricalFocalCrossentropy()
        >>> round(float(loss(np.array([[0., 1.]]), np.array([[0.5, 0.5]]))), 4)
        0.0433
    """

    fn = staticmethod(categorical_focal_crossentropy)

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                 label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class KLDivergence(Loss):
    """Kullback-Leibler divergence of the predicted distribution from the target one.

    ``sum(y_true * log(y_true / y_pred), axis=-1)``, both clipped to ``[eps, 1]``. In
    ``compile`` as ``"kl_divergence"``, ``"kld"``, ``"kullback_leibler_divergence"`` or as
    this class.

    Args:
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"kl_divergence"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.KLDivergence()
        >>> round(float(loss(np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]))), 4)
        0.0
    """

    fn = staticmethod(kl_divergence)

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


class Poisson(Loss):
    """Poisson negative log-likelihood, for count targets.

    ``mean(y_pred - y_true * log(y_pred + eps), axis=-1)``. In ``compile`` as ``"poisson"``
    or as this class.

    Args:
        reduction: How the per-sample values are reduced: ``"sum_over_batch_size"`` (the
            mean over all elements), ``"sum"``, ``"mean_with_sample_weight"`` (sum / sum of
            weights) or ``"none"``/``None`` (the per-sample values). Default
            ``"sum_over_batch_size"``.
        name: The log name (``<output>_<name>`` when used as a metric). Default ``None``:
            ``"poisson"``.

    Example:
        >>> import numpy as np
        >>> import kompile as kp
        >>> loss = kp.losses.Poisson()
        >>> round(float(loss(np.array([[1., 1.]]), np.array([[1., 1.]]))), 4)
        1.0
    """

    fn = staticmethod(poisson)

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name, _options(locals()))


__all__ = [
    "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy", "KLDivergence", "Poisson",
]
