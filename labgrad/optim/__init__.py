"""Optimizers and learning-rate schedules: ``opt = lg.optim.SGD(model.parameters(), lr=0.1)``.

The training step is always the same three lines::

    opt.zero_grad(); loss.backward(); opt.step()
"""
from .optimizer import Optimizer  # noqa: F401
from .sgd import SGD  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401
from .rmsprop import RMSprop  # noqa: F401
from .lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR  # noqa: F401
from . import lr_scheduler  # noqa: F401
