"""The Model facade and its parts.

``core.py`` holds ``Model`` (construction, ``compile``, the backend it drives);
``training.py`` the public fit/evaluate/predict calls; ``state.py`` weights, saving and
summaries; ``saving.py`` whole-model files (``model.save``; the training state kept until
the first batch) and ``loading.py`` ``kp.load_model``, kept here above the file-format
module ``kompile.saving``.
"""

from __future__ import annotations

from .core import Model
from .loading import load_model

__all__ = ["Model", "load_model"]
