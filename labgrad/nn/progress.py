"""A progress bar for ``Trainer.fit``: tqdm when it is installed, a plain line per epoch when not.

tqdm is a course dependency, not a core one, so it is imported here, lazily, the first time
a bar is asked for. ``tqdm.auto`` picks a widget in Jupyter and a text bar in a terminal.
"""
from __future__ import annotations

import sys


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class EpochBar:
    """One bar per epoch: ``update(n)`` after each batch, ``finish(logs)`` at the end."""

    def __init__(self, total, epoch, epochs, enabled=True, file=None):
        self.enabled = bool(enabled)
        self.desc = f"epoch {epoch + 1}/{epochs}"
        self.file = file
        tqdm = _tqdm() if self.enabled else None
        self.bar = (tqdm(total=total, desc=self.desc, unit="batch", leave=True, file=file,
                         dynamic_ncols=True) if tqdm is not None else None)

    def update(self, n=1, loss=None):
        if self.bar is not None:
            self.bar.update(n)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def finish(self, logs):
        text = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=True)
            self.bar.close()
        elif self.enabled:
            print(f"{self.desc}: {text}", file=self.file or sys.stdout)
