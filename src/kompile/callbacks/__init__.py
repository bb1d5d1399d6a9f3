"""Callbacks with Keras's names, arguments and hooks."""

from .backup import BackupAndRestore
from .base import Callback, CallbackList, History, LazyLogs
from .checkpoint import ModelCheckpoint
from .early_stopping import EarlyStopping
from .ema import SwapEMAWeights
from .loggers import CSVLogger, TensorBoard
from .misc import LambdaCallback, TerminateOnNaN
from .progbar import ProgbarLogger
from .schedules import LearningRateScheduler, ReduceLROnPlateau

__all__ = ["BackupAndRestore", "CSVLogger", "Callback", "CallbackList", "EarlyStopping",
           "History", "LambdaCallback", "LazyLogs", "LearningRateScheduler", "ModelCheckpoint",
           "ProgbarLogger", "ReduceLROnPlateau", "SwapEMAWeights", "TensorBoard",
           "TerminateOnNaN"]
