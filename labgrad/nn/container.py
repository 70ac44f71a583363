"""Containers: ``Sequential`` chains modules; ``ModuleList`` holds them for your own forward."""
from __future__ import annotations

from collections import OrderedDict

from .config import to_config
from .module import Module


class Sequential(Module):
    """Call modules one after another; each one's output is the next one's input.

    >>> model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    >>> model[0]             # indexing gives a layer, slicing a smaller Sequential
    Linear(in_features=64, out_features=128, bias=True)

    Children are named ``"0"``, ``"1"``, ... (so parameters are ``"0.weight"``, ...); pass an
    ``OrderedDict`` to choose the names.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {name!r} is a {type(m).__name__}, not a Module; "
                                f"wrap functions in a Module (e.g. nn.ReLU() rather than F.relu)")
            setattr(self, name, m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        mods = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(mods[index]))
        try:
            return mods[index][1]
        except IndexError:
            raise IndexError(f"Sequential has {len(mods)} layers; index {index} is out of range") from None

    def append(self, module):
        """Add a layer at the end; it is named by its position."""
        setattr(self, str(len(self._modules)), module)
        return self

    def to_config(self):
        """This model as a declarative config (``nn.from_config`` builds it again)."""
        return to_config(self)


class ModuleList(Module):
    """A list of modules whose parameters the parent sees (a plain list would hide them)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules, not {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        mods = list(self._modules.values())
        return ModuleList(mods[index]) if isinstance(index, slice) else mods[index]

    def forward(self, *args, **kwargs):
        raise TypeError("ModuleList has no forward(): loop over it in your own module's forward")
