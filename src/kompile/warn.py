"""kompile's warning category, and where its warnings point.

``KompileWarning`` is a ``UserWarning``, so the usual filters keep working
(``warnings.simplefilter("ignore", UserWarning)``); it also lets you (and kompile's test
suite) filter kompile's own warnings alone: ``warnings.simplefilter("error",
kp.KompileWarning)``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


class KompileWarning(UserWarning):
    """A warning kompile raises: something that works but probably not as you meant.

    A ``UserWarning``, so the usual filters apply; ``warnings.simplefilter("error",
    kp.KompileWarning)`` turns kompile's own warnings (and only those) into errors.

    Args:
        message: What happened and what to do about it.
    """

    def __init__(self, message: str = ""):
        super().__init__(message)


def user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` that names the first line outside kompile
    (the user's ``fit``/``compile`` call), however deep inside kompile the warning is
    raised. Call it from the function that calls ``warnings.warn``."""
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level
