"""Callbacks with Keras's names and hooks."""

from .base import Callback, CallbackList, History, LazyLogs
from .progbar import ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "LazyLogs", "ProgbarLogger"]
