"""Reading and writing models: checkpoints (``lg.save`` / ``lg.load``)."""
from .checkpoint import load, save  # noqa: F401
