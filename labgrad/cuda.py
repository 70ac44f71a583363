"""``lg.cuda.is_available()`` and friends, as in PyTorch."""
from .backends import cuda_device_count as device_count  # noqa: F401
from .backends import cuda_is_available as is_available  # noqa: F401
from .backends import cuda_unavailable_reason as unavailable_reason  # noqa: F401
from .backends import get_backend


def synchronize(device="cuda"):
    """Wait for queued GPU work (timing needs this)."""
    get_backend(device).synchronize()
