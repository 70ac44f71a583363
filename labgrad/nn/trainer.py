"""``Trainer``: the training loop written once — Keras's ``fit`` on labgrad modules.

Every training script repeats the same loop: batches, forward, loss, ``zero_grad``,
``backward``, ``step``, then numbers to watch and a validation pass. ``Trainer`` is that loop
with the usual extras (metrics, validation, callbacks, a progress bar, a compiled step),
and nothing hidden: ``Trainer.train_step`` is the five lines you would write yourself.

::

    trainer = nn.Trainer(model, lg.optim.Adam(model.parameters(), lr=1e-3),
                         loss=nn.CrossEntropyLoss(), metrics=["accuracy"], jit=True)
    history = trainer.fit(digits("train"), epochs=20, batch_size=32,
                          validation_data=digits("test"),
                          callbacks=[nn.ModelCheckpoint("best.npz"), nn.EarlyStopping(patience=3)])
    history["val_accuracy"][-1]; trainer.evaluate(digits("test")); trainer.predict(x)
"""
from __future__ import annotations

import time

import numpy as np

from ..autograd import no_grad
from ..data.loader import DataLoader
from ..data.dataset import TensorDataset
from ..graph import jit as make_jit
from ..tensor import Tensor
from . import loss as losses
from .callbacks import Callback
from .metrics import resolve
from .module import Module
from .progress import EpochBar

LOSSES = {"cross_entropy": losses.CrossEntropyLoss, "mse": losses.MSELoss, "l1": losses.L1Loss,
          "nll": losses.NLLLoss, "bce_with_logits": losses.BCEWithLogitsLoss}


class History:
    """What ``fit`` measured: ``history["val_loss"]`` is one number per epoch.

    ``history.history`` is the dict of lists (Keras's name), ``epochs`` the epoch indices,
    ``epoch_times`` the wall-clock seconds of each epoch's training part.
    """

    def __init__(self):
        self.history = {}
        self.epochs = []
        self.epoch_times = []

    def record(self, epoch, logs, seconds):
        self.epochs.append(epoch)
        self.epoch_times.append(seconds)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        try:
            return self.history[key]
        except KeyError:
            raise KeyError(f"History has no {key!r}; it recorded {', '.join(self.history) or 'nothing yet'}") from None

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.epochs)

    def __repr__(self):
        if not self.epochs:
            return "History(no epochs)"
        keys = list(self.history)
        lines = ["epoch  " + "  ".join(f"{k:>12}" for k in keys)]
        for i, e in enumerate(self.epochs):
            lines.append(f"{e + 1:>5}  " + "  ".join(f"{self.history[k][i]:>12.4f}" for k in keys))
        return "\n".join(lines)


class Trainer:
    """Train, evaluate and predict with ``model``.

    Parameters
    ----------
    model : Module
    optimizer : an ``lg.optim`` optimizer over ``model.parameters()``
    loss : a loss module (``nn.CrossEntropyLoss()``), a function ``loss(outputs, targets)``, or a
        name: ``"cross_entropy"``, ``"mse"``, ``"l1"``, ``"nll"``, ``"bce_with_logits"``
    metrics : names (``"accuracy"``, ``"mae"``) or functions ``f(outputs, targets) -> float`` on
        NumPy arrays; reported per epoch, weighted by batch size
    jit : compile the training step (and the evaluation step) with ``lg.jit``. The first batch
        traces the step into a graph, later batches of the same shape run the compiled code; a
        smaller last batch traces once more (``drop_last=True`` avoids it). The model's mode
        (train/eval) is baked into each trace, so there is one compiled step per mode.
        (Dropout in training mode cannot be traced yet: its mask is drawn eagerly.)
    device : move the model there and send batches there (``"cpu"``, ``"cuda"``)
    """

    def __init__(self, model, optimizer, loss="cross_entropy", metrics=(), jit=False, device=None):
        if not isinstance(model, Module):
            raise TypeError(f"Trainer: model must be an nn.Module, got {type(model).__name__}")
        if not hasattr(optimizer, "step") or not hasattr(optimizer, "zero_grad"):
            raise TypeError(f"Trainer: optimizer must be an lg.optim optimizer (with step() and zero_grad()), "
                            f"got {type(optimizer).__name__}; e.g. lg.optim.SGD(model.parameters(), lr=0.1)")
        self.model = model if device is None else model.to(device)
        self.optimizer = optimizer
        self.loss_fn = self._resolve_loss(loss)
        self.metrics = [resolve(m) for m in ([metrics] if isinstance(metrics, str) else metrics)]
        self.device = device
        self.jit = bool(jit)
        self.stop_training = False
        self.history = History()
        self._train_step = make_jit(self.train_step) if self.jit else self.train_step
        self._eval_step = make_jit(self.eval_step) if self.jit else self.eval_step

    @staticmethod
    def _resolve_loss(loss):
        if isinstance(loss, str):
            try:
                return LOSSES[loss]()
            except KeyError:
                raise ValueError(f"Trainer: unknown loss {loss!r}; use one of {', '.join(LOSSES)}, a loss "
                                 f"module such as nn.CrossEntropyLoss(), or a function loss(outputs, targets)") from None
        if not callable(loss):
            raise TypeError(f"Trainer: loss must be a name, a loss module or a function, got {type(loss).__name__}")
        return loss

    # ---- the two steps (what jit=True compiles)
    def train_step(self, xb, yb):
        """One optimization step on a batch; returns ``(loss, outputs)``."""
        outputs = self.model(xb)
        loss = self.loss_fn(outputs, yb)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss, outputs

    def eval_step(self, xb, yb):
        """Loss and outputs on a batch, without updating anything."""
        outputs = self.model(xb)
        return self.loss_fn(outputs, yb), outputs

    # ---- loops
    def fit(self, data, epochs=1, batch_size=32, validation_data=None, callbacks=(), shuffle=True,
            seed=None, drop_last=False, progress=True):
        """Train for ``epochs`` passes over ``data``; return the ``History``.

        ``data`` and ``validation_data`` may be a ``DataLoader`` (used as it is), a dataset, or a
        pair ``(x, y)`` of arrays or Tensors (batched with ``batch_size``; shuffled each epoch
        with ``seed``, or with ``lg.manual_seed``'s generator if ``seed`` is None).
        ``progress=False`` turns the progress bar off (it needs tqdm; without tqdm a line per
        epoch is printed instead). ``callbacks`` see every epoch's numbers; a callback stops
        training early by setting ``trainer.stop_training = True``.
        """
        if int(epochs) < 0:
            raise ValueError(f"fit: epochs must be >= 0, got {epochs}")
        loader = self._loader(data, batch_size, shuffle, seed, drop_last, "data")
        val_loader = (None if validation_data is None else
                      self._loader(validation_data, batch_size, False, None, False, "validation_data"))
        callbacks = list(callbacks)
        for c in callbacks:
            if not isinstance(c, Callback):
                raise TypeError(f"fit: callbacks must be nn.Callback objects, got {type(c).__name__}")
        self.stop_training = False
        for c in callbacks:
            c.on_train_begin(self)
        start_epoch = len(self.history)
        for epoch in range(start_epoch, start_epoch + int(epochs)):
            for c in callbacks:
                c.on_epoch_begin(self, epoch)
            bar = EpochBar(len(loader), epoch, start_epoch + int(epochs), enabled=progress)
            started = time.perf_counter()
            logs = self._run_epoch(loader, train=True, bar=bar, callbacks=callbacks)
            seconds = time.perf_counter() - started
            if val_loader is not None:
                logs.update({f"val_{k}": v for k, v in self._run_epoch(val_loader, train=False).items()})
            bar.finish(logs)
            self.history.record(epoch, logs, seconds)
            for c in callbacks:
                c.on_epoch_end(self, epoch, logs)
            if self.stop_training:
                break
        for c in callbacks:
            c.on_train_end(self)
        return self.history

    def evaluate(self, data, batch_size=256):
        """The loss and metrics over ``data`` in evaluation mode: ``{"loss": ..., "accuracy": ...}``."""
        return self._run_epoch(self._loader(data, batch_size, False, None, False, "data"), train=False)

    def predict(self, x, batch_size=256):
        """The model's outputs for inputs ``x`` (an array, a Tensor, a dataset or a loader, whose
        first field is used), in evaluation mode and without gradients, as one Tensor."""
        if isinstance(x, (Tensor, np.ndarray, list)):
            x = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
            loader = DataLoader(TensorDataset(x), batch_size=batch_size, device=self.device)
        else:
            loader = self._loader(x, batch_size, False, None, False, "x")
        was_training = self.model.training
        self.model.eval()
        try:
            with no_grad():
                parts = [self.model(batch[0]).numpy() for batch in loader]
        finally:
            self.model.train(was_training)
        return Tensor(np.concatenate(parts), device=self.device)

    def _run_epoch(self, loader, train, bar=None, callbacks=()):
        was_training = self.model.training
        self.model.train(train)
        step = self._train_step if train else self._eval_step
        total, count = 0.0, 0
        sums = [0.0] * len(self.metrics)
        try:
            for i, batch in enumerate(loader):
                xb, yb = self._split_batch(batch)
                if train:
                    loss, outputs = step(xb, yb)
                else:
                    with no_grad():
                        loss, outputs = step(xb, yb)
                n = len(xb)
                value = float(loss.item())
                total += value * n
                count += n
                if self.metrics:
                    out, target = outputs.numpy(), yb.numpy()
                    for j, (_, fn) in enumerate(self.metrics):
                        sums[j] += fn(out, target) * n
                if bar is not None:
                    bar.update(1, value)
                for c in callbacks:
                    c.on_batch_end(self, i, {"loss": value, "size": n})
        finally:
            self.model.train(was_training)
        if count == 0:
            raise ValueError("the data gave no batches (is it empty, or is drop_last=True with fewer "
                             "examples than batch_size?)")
        logs = {"loss": total / count}
        logs.update({name: s / count for (name, _), s in zip(self.metrics, sums)})
        return logs

    @staticmethod
    def _split_batch(batch):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError(f"Trainer: each batch must be a pair (inputs, targets), got "
                             f"{type(batch).__name__}" + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
                             + "; give fit() (x, y) or a dataset whose examples are (input, target)")
        return batch

    def _loader(self, data, batch_size, shuffle, seed, drop_last, what):
        if isinstance(data, DataLoader):
            return data
        if isinstance(data, tuple) and len(data) == 2:
            arrays = [d.numpy() if isinstance(d, Tensor) else np.asarray(d) for d in data]
            data = TensorDataset(*arrays)
        if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
            raise TypeError(f"Trainer: {what} must be a DataLoader, a dataset or a pair (x, y), got "
                            f"{type(data).__name__}")
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last,
                          device=self.device)

    def __repr__(self):
        metrics = ", ".join(name for name, _ in self.metrics)
        return (f"Trainer({type(self.model).__name__}, {type(self.optimizer).__name__}, "
                f"loss={getattr(self.loss_fn, '__name__', type(self.loss_fn).__name__)}, "
                f"metrics=[{metrics}], jit={self.jit})")
