"""``Module``: a callable that owns parameters, buffers and sub-modules.

A module is found out by assignment, as in PyTorch: ``self.weight = nn.Parameter(...)``
registers a parameter, ``self.fc = nn.Linear(...)`` a sub-module. Parameters are ordinary
``Tensor``s that require grad (``nn.Parameter`` only makes one); there is no Parameter class,
because every op's fast path checks for exactly ``Tensor``.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..autograd import name_scope, no_grad
from ..backends import get_backend
from ..errors import DTypeError, LabgradError, ShapeError
from ..tensor import Tensor


class StateDictError(LabgradError, KeyError):
    """A state dict whose keys do not match the model's parameters and buffers."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


def Parameter(data, name=None):
    """A leaf tensor that requires grad: what a module learns.

    It is a plain ``Tensor`` (there is no Parameter class). Python floats and float64 arrays
    become float32, like ``lg.tensor``; a Tensor is detached and shares its memory.

    >>> w = nn.Parameter(lg.zeros(3, 2))
    >>> w.requires_grad
    True
    """
    if isinstance(data, Tensor):
        t = data.detach()
    else:
        array = np.asarray(data)
        t = Tensor(array.astype(np.float32) if array.dtype == np.float64 else array)
    if t.dtype.kind != "f":
        raise DTypeError(f"nn.Parameter needs floating-point values, got {t.dtype}; "
                         f"convert first, e.g. data.astype('float32')")
    t.requires_grad = True
    t.name = name
    return t


def _is_parameter(value):
    return value.__class__ is Tensor and value._requires_grad and value.grad_fn is None


class Module:
    """Base class of layers and models: subclass it, assign parameters and layers in
    ``__init__``, and write ``forward``.

    ::

        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(64, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                return self.fc2(F.relu(self.fc1(x)))

    Calling a module runs ``forward`` inside ``lg.name_scope(...)`` named after the attribute
    that holds it (``"fc1"``; ``"0:Linear"`` for a numbered child of ``Sequential``; the class
    name for the outermost module), so drawings of the tape can group each layer's ops.
    """

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["training"] = True
        d["_scope_name"] = type(self).__name__

    # ---- registration
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() at the start of "
                                 f"__init__, before assigning attributes such as {name!r}")
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, Module):
            self._forget(name)
            modules[name] = value
            value.__dict__["_scope_name"] = f"{name}:{type(value).__name__}" if name.isdigit() else name
            for pname, p in value._named_tensors(value):
                p.name = f"{name}.{pname}"
        elif value.__class__ is Tensor and (_is_parameter(value) or name in buffers):
            if name in buffers:
                buffers[name] = value
            else:
                self._forget(name)
                params[name] = value
            value.name = name
        elif value is None and (name in params or name in buffers or name in modules):
            (params if name in params else buffers if name in buffers else modules)[name] = None
        else:
            if name in params or name in modules:
                kind = "parameter" if name in params else "sub-module"
                raise TypeError(f"{type(self).__name__}.{name} is a {kind}; it can only be replaced by "
                                f"{'a tensor that requires grad (nn.Parameter(...))' if kind == 'parameter' else 'a Module'} "
                                f"or None, not a {type(value).__name__}. Delete it first (del m.{name}) "
                                f"to use the name for something else.")
            if name in buffers:
                raise TypeError(f"{type(self).__name__}.{name} is a buffer; assign a Tensor or None, "
                                f"not a {type(value).__name__}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            self.__dict__[registry].pop(name, None)

    def register_buffer(self, name, tensor):
        """Keep a tensor that is state but not learned (running means, masks): it is saved in
        ``state_dict`` and moved by ``to``, but the optimizer never sees it."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}, ...) needs a Tensor or None, "
                            f"got {type(tensor).__name__}")
        if tensor is not None and tensor.requires_grad:
            tensor = tensor.detach()
        self._forget(name)
        self.__dict__["_buffers"][name] = tensor
        if tensor is not None:
            tensor.name = name
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name, tensor):
        """Same as ``self.name = tensor`` for a parameter; ``None`` reserves the name (e.g. no bias)."""
        if tensor is None:
            self._forget(name)
            self.__dict__["_parameters"][name] = None
            object.__setattr__(self, name, None)
        elif not _is_parameter(tensor):
            raise TypeError(f"register_parameter({name!r}, ...) needs a leaf tensor that requires grad; "
                            f"wrap the values with nn.Parameter(...)")
        else:
            setattr(self, name, tensor)

    # ---- walking the tree
    def children(self):
        """The direct sub-modules, in the order they were assigned."""
        return (m for m in self._modules.values() if m is not None)

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def named_modules(self, prefix=""):
        """This module and every module below it, each once, with dotted names (``""`` for self)."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{n}" if name else n, c) for n, c in m.named_children()]
            stack.extend(reversed(kids))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        """``("0.weight", tensor)`` pairs; a parameter shared by two layers is listed once."""
        seen = set()
        for mname, m in self.named_modules(prefix):
            for pname, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self):
        """Every parameter, each once: what you hand to an optimizer."""
        return (p for _, p in self.named_parameters())

    def named_buffers(self, prefix=""):
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self):
        return (b for _, b in self.named_buffers())

    @staticmethod
    def _named_tensors(module):
        yield from module.named_parameters()
        yield from module.named_buffers()

    # ---- state
    def state_dict(self):
        """A flat ``{dotted name: Tensor}`` of parameters and buffers.

        The tensors share memory with the model but are detached (they do not require grad),
        so ``lg.save(model.state_dict(), path)`` saves exactly what the model holds now.
        """
        out = OrderedDict()
        for name, t in self._named_tensors(self):
            d = t.detach()
            d.name = name
            out[name] = d
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into this model's tensors, in place (optimizers keep working).

        With ``strict=True`` every key must match; otherwise missing and unexpected keys are
        allowed and returned. Shapes must always match. Values may be Tensors or NumPy arrays.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        own = OrderedDict(self._named_tensors(self))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        for k, t in own.items():
            if k in state_dict:
                shape = tuple(np.shape(_as_array(state_dict[k])))
                if shape != tuple(t.shape):
                    mismatched.append(f"{k}: checkpoint has shape {shape}, model has {tuple(t.shape)}")
        problems = []
        if strict and missing:
            problems.append("missing keys (in the model, not in the state dict): " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys (in the state dict, not in the model): " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatches: " + "; ".join(mismatched))
        if problems:
            cls = ShapeError if mismatched and not (strict and (missing or unexpected)) else StateDictError
            raise cls(f"{type(self).__name__}.load_state_dict: the state dict does not fit this model.\n  "
                      + "\n  ".join(problems)
                      + "\n  Build the model with the same layer sizes as the one that was saved"
                      + (", or pass strict=False to load only the keys that match." if not mismatched else "."))
        with no_grad():
            for k, t in own.items():
                if k in state_dict:
                    t.copy_(_as_array(state_dict[k]))
        return missing, unexpected

    # ---- modes and grads
    def train(self, mode=True):
        """Training mode: dropout drops. Returns self, so ``model.train()`` chains."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self):
        """Evaluation mode: dropout passes values through unchanged."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (``None``, or zeros in place with ``set_to_none=False``)."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                with no_grad():
                    p.grad.zero_()

    def requires_grad_(self, requires_grad=True):
        """Freeze (``False``) or unfreeze every parameter, e.g. for fine-tuning."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, device):
        """Move every parameter and buffer to ``device`` in place and return self.

        The Tensor objects stay the same, so an optimizer made earlier still updates them; make
        the move before the first ``step()``, because optimizer state (momentum) stays where it
        was created.
        """
        backend = get_backend(device)
        for _, t in self._named_tensors(self):
            if t._backend is not backend:
                t.data = backend.asarray(t.data)
                t._backend = backend
                if t.grad is not None:
                    t.grad = t.grad.to(device)
        return self

    # ---- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define "
                                  f"`def forward(self, x): ...` in the class")

    def __call__(self, *args, **kwargs):
        with name_scope(self._scope_name):
            return self.forward(*args, **kwargs)

    # ---- printing
    def extra_repr(self):
        """The text inside the parentheses of this module's repr (override in layers)."""
        return ""

    def __repr__(self):
        kids = list(self.named_children())
        extra = self.extra_repr()
        if not kids:
            return f"{type(self).__name__}({extra})"
        lines = [f"{type(self).__name__}(" + (extra if extra else "")]
        for name, m in kids:
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


def _as_array(value):
    if isinstance(value, Tensor):
        return value.data if value._backend.device.type == "cpu" else value.numpy()
    return np.asarray(value)
