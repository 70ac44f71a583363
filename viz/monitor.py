"""``TrainingMonitor``: live loss and metric curves while ``Trainer.fit`` runs.

::

    monitor = viz.TrainingMonitor()
    trainer.fit(train, epochs=20, validation_data=test, callbacks=[monitor])

It is an ``lg.nn.Callback``: after every epoch it redraws one panel for the loss (the training
loss of every batch faintly, the epoch means and ``val_loss`` boldly) and one panel per metric
(``accuracy`` and ``val_accuracy`` together), and updates a single output in the notebook
through a display handle. The picture is a PNG, so a notebook saved after training shows the
final curves even where no kernel runs (GitHub, nbviewer, a static HTML export).

The plain-text form of that output names the curves and nothing that changes between epochs
or runs, so notebook tests that compare text (nbval) see the same line every time; the numbers
are in ``monitor.summary()`` and ``repr(monitor)``. Drawn with matplotlib's object API (no
pyplot, so no global figure state and no second copy from the inline backend).
"""
from __future__ import annotations

import io

from labgrad.nn import Callback

__all__ = ["TrainingMonitor"]

_COLORS = {"train": "#1f77b4", "val": "#d62728", "batch": "#9ecae1"}


def _display(obj):
    """Show ``obj`` in the running notebook and return its display handle (None outside IPython)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    return display(obj, display_id=True)


class _Frame:
    """One drawing of the curves: a PNG with a fixed plain-text line beside it."""

    def __init__(self, png, text):
        self.png, self.text = png, text

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"image/png": self.png, "text/plain": self.text}

    def __repr__(self):
        return self.text


class TrainingMonitor(Callback):
    """Draw the loss and metrics of ``Trainer.fit`` after every epoch.

    Parameters
    ----------
    metrics : names of the logged numbers to draw besides the loss, e.g. ``["accuracy"]``
        (their ``val_`` versions come with them); ``None`` draws every metric ``fit`` logs.
    batches : also draw each batch's training loss, faintly (it shows the noise that the
        epoch mean hides).
    show : display and update the figure in the notebook; ``False`` only records (``figure()``
        still draws on demand).
    figsize, dpi : the size of the picture (inches, dots per inch).
    title : a line above the panels.

    After training, ``monitor.history`` holds the epoch numbers (``{"loss": [...], ...}``),
    ``monitor.batch_losses`` the per-batch losses, ``monitor.figure()`` a matplotlib Figure and
    ``monitor.png()`` its PNG bytes.
    """

    def __init__(self, metrics=None, batches=True, show=True, figsize=None, dpi=80, title=None):
        self.metrics = None if metrics is None else [metrics] if isinstance(metrics, str) else list(metrics)
        self.batches = bool(batches)
        self.show = bool(show)
        self.figsize = figsize
        self.dpi = int(dpi)
        self.title = title
        self.history = {}
        self.epochs = []
        self.batch_losses = []      # (x, loss) with x = epoch + (batch + 1) / batches in that epoch
        self._epoch_batches = []
        self._handle = None

    # ---- the callback
    def on_train_begin(self, trainer):
        self._handle = None        # a new fit draws a new output below its cell

    def on_epoch_begin(self, trainer, epoch):
        self._epoch_batches = []

    def on_batch_end(self, trainer, batch, logs):
        self._epoch_batches.append(float(logs["loss"]))

    def on_epoch_end(self, trainer, epoch, logs):
        n = len(self._epoch_batches)
        self.batch_losses.extend((epoch + (i + 1) / n, v) for i, v in enumerate(self._epoch_batches))
        self.epochs.append(int(epoch))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        if self.show:
            frame = self.frame()
            if self._handle is None:
                self._handle = _display(frame)
            else:
                self._handle.update(frame)

    # ---- what is drawn
    def panels(self):
        """The panels, in order: ``[("loss", ["loss", "val_loss"]), ("accuracy", [...]), ...]``."""
        names = self.metrics
        if names is None:
            names = [k for k in self.history if k != "loss" and not k.startswith("val_")]
        out = [("loss", [k for k in ("loss", "val_loss") if k in self.history])]
        for name in names:
            keys = [k for k in (name, f"val_{name}") if k in self.history]
            if not keys:
                raise KeyError(f"TrainingMonitor: metric {name!r} was not logged by fit (it logged "
                               f"{', '.join(self.history)}); pass it to Trainer(metrics=[...])")
            out.append((name, keys))
        return out

    def text(self):
        """The plain-text line of the display: which curves are drawn (stable across epochs)."""
        if not self.history:
            return "TrainingMonitor (no epochs yet)"
        return "TrainingMonitor: " + " | ".join(", ".join(keys) for _, keys in self.panels())

    def figure(self):
        """A matplotlib ``Figure`` of the curves so far."""
        from matplotlib.figure import Figure

        panels = self.panels() if self.history else [("loss", [])]
        size = self.figsize or (3.6 * len(panels) + 0.4, 2.8)
        fig = Figure(figsize=size, dpi=self.dpi, layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        x = [e + 1 for e in self.epochs]
        for ax, (name, keys) in zip(axes, panels):
            if name == "loss" and self.batches and self.batch_losses:
                bx, by = zip(*self.batch_losses)
                ax.plot(bx, by, color=_COLORS["batch"], lw=0.8, label="loss (each batch)")
            for key in keys:
                kind = "val" if key.startswith("val_") else "train"
                ax.plot(x, self.history[key], marker="o", ms=3, lw=1.8, color=_COLORS[kind], label=key)
            ax.set_xlabel("epoch")
            ax.set_title(name)
            if x:
                ax.set_xlim(0, max(x) + 0.2)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8, frameon=False)
        if self.title:
            fig.suptitle(self.title)
        return fig

    def png(self):
        """The figure as PNG bytes, the same bytes for the same numbers (no timestamp inside)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = self.figure()
        FigureCanvasAgg(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()

    def frame(self):
        """What the notebook shows: the PNG, with ``text()`` as its plain-text form."""
        return _Frame(self.png(), self.text())

    def summary(self):
        """The last and best value of every curve, one line each."""
        if not self.epochs:
            return "no epochs yet"
        lines = []
        for key, values in self.history.items():
            lower = "loss" in key or "error" in key or "mae" in key
            best = min(values) if lower else max(values)
            lines.append(f"{key:>14}: last {values[-1]:.4f}  best {best:.4f} "
                         f"(epoch {values.index(best) + 1})")
        return "\n".join(lines)

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": repr(self)}
        if self.epochs:
            bundle["image/png"] = self.png()
        return bundle

    def __repr__(self):
        if not self.epochs:
            return "TrainingMonitor(no epochs yet)"
        return f"TrainingMonitor({len(self.epochs)} epochs)\n{self.summary()}"
