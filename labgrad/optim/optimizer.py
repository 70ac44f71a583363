"""``Optimizer``: the base class that holds parameter groups and per-parameter state.

Every update is written with tensor operators inside ``no_grad`` (``p -= lr * g``), never by
reaching into ``p.data``: the same code then runs eagerly and can be captured by ``lg.jit``,
which traces tensor operations. State tensors (momentum, Adam's moments) are made when a
parameter group is added, so a traced step finds them already there.
"""
from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..errors import DTypeError, LabgradError
from ..tensor import Tensor


class Optimizer:
    """Base class: subclasses set ``defaults``, ``_init_state(p)`` and ``step()``.

    ``params`` is an iterable of tensors, or of dicts (parameter groups) with their own
    hyperparameters; a group's missing keys come from the optimizer's defaults::

        opt = optim.SGD([{"params": model[0].parameters(), "lr": 0.01},
                         {"params": model[2].parameters()}], lr=0.1)
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}   # parameter -> dict of state; keyed by identity (Tensor hashes by id)
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of tensors (e.g. "
                            f"model.parameters() or [w, b]), not a single Tensor; wrap it: [w]")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list; did the model "
                             f"register its parameters (assigned as attributes in __init__)?")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add parameters with their own hyperparameters (e.g. a smaller lr for a backbone)."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"a parameter group is a dict with a 'params' key, got {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            where = f"{type(self).__name__}: parameter {i}" + (f" ({p.name!r})" if getattr(p, "name", None) else "")
            if not isinstance(p, Tensor):
                raise TypeError(f"{where} is a {type(p).__name__}, not a Tensor")
            if p.dtype.kind != "f":
                raise DTypeError(f"{where} has dtype {p.dtype}; only floating-point tensors can be optimized")
            if not p.requires_grad or p.grad_fn is not None:
                raise LabgradError(f"{where} is not a leaf tensor that requires grad, so it will never "
                                   f"get a .grad; create it with requires_grad=True (nn.Parameter)")
            if id(p) in seen:
                raise ValueError(f"{where} appears in more than one parameter group (or twice)")
            seen.add(id(p))
        full = dict(self.defaults)
        full.update({k: v for k, v in group.items() if k != "params"})
        full["params"] = params
        self.param_groups.append(full)
        with no_grad():
            for p in params:
                self.state[p] = self._init_state(p)

    def _init_state(self, p):
        return {}

    def zero_grad(self, set_to_none=True):
        """Forget the gradients of the last step. ``set_to_none`` (the default) is cheapest: the
        next backward stores fresh gradients instead of adding to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    with no_grad():
                        p.grad.zero_()

    def step(self):
        raise NotImplementedError

    # ---- saving and restoring
    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``.

        Parameters are named by their position across the groups, so the dict can be loaded
        into a new optimizer over a freshly built model of the same shape.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = ids
            groups.append(saved)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                state[index[id(p)]] = {k: (v.detach() if isinstance(v, Tensor) else v)
                                       for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by ``state_dict`` (values are copied)."""
        try:
            saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected a dict with 'state' and "
                             f"'param_groups' (from optimizer.state_dict()), got {type(state_dict).__name__}") from None
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved optimizer has "
                             f"{len(saved_groups)} parameter group(s), this one has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: group {i} has "
                                 f"{len(saved['params'])} parameters in the saved state but "
                                 f"{len(group['params'])} here; was it made for a different model?")
        for saved, group in zip(saved_groups, self.param_groups):
            for p, k in zip(group["params"], saved["params"]):
                entry = saved_state.get(k, saved_state.get(str(k)))
                if entry is not None:
                    self.state[p] = {name: _restore(value, p, name, self) for name, value in entry.items()}
            group.update({k: v for k, v in saved.items() if k != "params"})

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        return "\n".join(lines) + "\n)"


def _restore(value, p, name, opt):
    """A saved state value as a fresh tensor on the parameter's device (numbers unchanged)."""
    if isinstance(value, (Tensor, np.ndarray)):
        array = value.numpy() if isinstance(value, Tensor) else value
        if tuple(array.shape) != tuple(p.shape) and array.ndim:
            raise ValueError(f"{type(opt).__name__}.load_state_dict: state {name!r} has shape "
                             f"{tuple(array.shape)} but its parameter has shape {tuple(p.shape)}")
        return Tensor(array.astype(p.dtype), device=p.device)
    return value
