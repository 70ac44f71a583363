"""Callbacks: code that ``Trainer.fit`` calls at fixed moments (Keras's idea).

Subclass ``Callback`` and override the hooks you need. Each hook gets the trainer, so a
callback can read ``trainer.model`` or stop training with ``trainer.stop_training = True``;
``logs`` is the epoch's numbers, e.g. ``{"loss": 0.31, "accuracy": 0.9, "val_loss": 0.35, ...}``.
"""
from __future__ import annotations

import math

import numpy as np

from ..io.checkpoint import save


class Callback:
    """Hooks called by ``Trainer.fit``, in this order: ``on_train_begin``, then per epoch
    ``on_epoch_begin``, ``on_batch_end`` (once per batch), ``on_epoch_end``; ``on_train_end``."""

    def on_train_begin(self, trainer):
        pass

    def on_epoch_begin(self, trainer, epoch):
        pass

    def on_batch_end(self, trainer, batch, logs):
        pass

    def on_epoch_end(self, trainer, epoch, logs):
        pass

    def on_train_end(self, trainer):
        pass


class _Monitor(Callback):
    """Tracks the best value of one logged number (``monitor``), lower or higher being better."""

    def __init__(self, monitor, mode, min_delta=0.0):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{type(self).__name__}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.mode = mode if mode != "auto" else ("min" if "loss" in monitor or "error" in monitor else "max")
        self.min_delta = abs(float(min_delta))
        self.best, self.best_epoch = None, None

    def _value(self, logs):
        if self.monitor not in logs:
            hint = (" Pass validation_data=... to fit(), or monitor a training number such as 'loss'."
                    if self.monitor.startswith("val_") else "")
            raise KeyError(f"{type(self).__name__}: monitor={self.monitor!r} is not among this epoch's "
                           f"numbers ({', '.join(logs)}).{hint}")
        return float(logs[self.monitor])

    def _improved(self, value):
        if self.best is None:
            return not math.isnan(value)
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, trainer):
        self.best, self.best_epoch = None, None


class ModelCheckpoint(_Monitor):
    """Save the model's ``state_dict`` to ``path`` with ``lg.save`` whenever ``monitor`` improves.

    ``lg.save`` writes atomically (a crash leaves the old best checkpoint intact) and never
    pickles, so the file is safe to share. Restore with
    ``model.load_state_dict(lg.load(path))``. With ``save_best_only=False`` it saves every
    epoch. ``best`` and ``best_epoch`` say what was kept.
    """

    def __init__(self, path, monitor="val_loss", mode="auto", save_best_only=True):
        super().__init__(monitor, mode)
        self.path = path
        self.save_best_only = bool(save_best_only)

    def on_epoch_end(self, trainer, epoch, logs):
        value = self._value(logs)
        if self._improved(value):
            self.best, self.best_epoch = value, epoch
        elif self.save_best_only:
            return
        save(trainer.model.state_dict(), self.path)


class EarlyStopping(_Monitor):
    """Stop training when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Why: past some epoch the validation loss rises while the training loss keeps falling (the
    model starts memorizing); stopping there saves time and is a cheap regularizer. With
    ``restore_best_weights=True`` the model gets back the weights of its best epoch at the end.
    """

    def __init__(self, monitor="val_loss", patience=3, min_delta=0.0, mode="auto", restore_best_weights=False):
        super().__init__(monitor, mode, min_delta)
        if int(patience) < 0:
            raise ValueError(f"EarlyStopping: patience is a number of epochs >= 0, got {patience}")
        self.patience = int(patience)
        self.restore_best_weights = bool(restore_best_weights)
        self.wait, self.stopped_epoch, self._weights = 0, None, None

    def on_train_begin(self, trainer):
        super().on_train_begin(trainer)
        self.wait, self.stopped_epoch, self._weights = 0, None, None

    def on_epoch_end(self, trainer, epoch, logs):
        value = self._value(logs)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._weights = {k: np.array(v.numpy()) for k, v in trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer):
        if self.restore_best_weights and self._weights is not None:
            trainer.model.load_state_dict(self._weights)
