"""Seeded random numbers, one generator per device, so notebooks give the same output every run."""
from __future__ import annotations

from .backends import get_backend

_seed = 0
_generators: dict = {}


def manual_seed(seed: int):
    """Reset every device's generator: ``lg.manual_seed(0)`` makes a run reproducible."""
    global _seed
    _seed = int(seed)
    _generators.clear()


def generator(backend):
    """The generator of ``backend``'s device (created from the current seed on first use)."""
    g = _generators.get(backend.device)
    if g is None:
        g = _generators[backend.device] = backend.random(_seed)
    return g


def default_generator(device=None):
    return generator(get_backend(device))
