"""kompile: Keras's compile()/fit() workflow for Flax NNX and PyTorch models.

    import kompile as kp
    model = kp.Model(module).compile("adam", "sparse_categorical_crossentropy",
                                     metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, validation_split=0.1)

Importing kompile imports neither JAX nor torch: the backend is loaded from the type of
the module given to ``kp.Model``.
"""

from . import (
    callbacks,
    distribution,
    losses,
    metrics,
    optimizers,
    precision,
    saving,
    schedules,
    utils,
)
from . import precision as mixed_precision
from .backends.extra_losses import add_loss
from .callbacks import Callback, History
from .metrics import custom_metric
from .model import Model, load_model
from .registry import register
from .warn import KompileWarning

__version__ = "0.1.0"

__all__ = [
    "Callback", "History", "KompileWarning", "Model", "add_loss", "callbacks", "custom_metric",
    "distribution", "load_model", "losses", "metrics", "mixed_precision", "optimizers",
    "precision", "register", "saving", "schedules", "utils",
]
