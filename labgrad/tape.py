"""The tape: what eager ops record so that ``backward`` can run later.

Each op applied to a tensor that requires grad records one ``TapeNode`` (the op, its inputs,
its attributes, and its output when the backward rule needs it) and becomes the ``grad_fn`` of
the tensor it produced. Following ``grad_fn`` and each node's inputs walks the whole graph
back to the leaves. ``autograd.py`` runs the chain rule over it.
"""
from __future__ import annotations

from .context import context, stamps
from .errors import GradError
from .ops.registry import Ctx

NUMBERS = frozenset({float, int, bool})   # the other things a tape node's inputs can be


class TapeNode(Ctx):
    """One recorded op application: the ``grad_fn`` of the tensor it produced, and the ``Ctx``
    its backward rule receives (``inputs``, ``attrs``, ``output``, ``needs_input_grad``)."""

    __slots__ = ("op", "_inputs", "attrs", "saved_output", "stamp", "scope", "__dict__", "__weakref__")
    hooks = None  # set (in the instance's lazily made __dict__) by register_hook only
    # saved_output: the output array for ops that use it (exp, tanh), else None; later
    #   OUTPUT_OVERWRITTEN (the tensor changed in place) or RELEASED (backward freed the node).
    # stamp: when the op ran (``next(stamps)``). Inputs exist before the ops that use them, so
    #   stamps order nodes topologically; a tensor changed in place later has a larger stamp.
    # The eager interpreter (``tensor.apply``) fills these slots directly, for speed.

    def __init__(self, op, inputs, attrs, saved_output):
        self.op = op
        self._inputs = inputs
        self.attrs = attrs
        self.saved_output = saved_output
        self.stamp = next(stamps)
        self.scope = context.scope

    @property
    def released(self):
        """Has backward freed what this node saved? (Then its structure is all that is left.)"""
        return self.saved_output is RELEASED

    @property
    def name(self):
        return self.op.name

    @property
    def inputs(self):
        """The op's inputs (tensors and Python numbers), as they were when the op ran."""
        if self.saved_output is RELEASED:
            raise _released_error(self)
        inputs = self._inputs
        if context.last_inplace < self.stamp:  # nothing changed in place since this op ran
            return inputs
        for i, x in enumerate(inputs):
            if x.__class__ not in NUMBERS and x._modified_at > self.stamp:
                raise GradError(
                    f"backward of {self.op.name} needs its input {i} ({x.dtype}{list(x.shape)}), "
                    f"but that tensor was modified in place after {self.op.name} used it, so its "
                    f"old value is gone.\n  Use an out-of-place op instead (y = y + 1, not y += 1), "
                    f"or change the tensor only after calling backward().")
        return inputs

    @property
    def recorded_inputs(self):
        """The inputs as the tape holds them now, for tools that walk it (drawings): tensors and
        numbers, and after ``release`` the node that computed each freed value in its place."""
        return self._inputs

    @property
    def output(self):
        """The op's output, as a tensor whose grad_fn is this node (so it is differentiable)."""
        out = self.saved_output
        if out is RELEASED:
            raise _released_error(self)
        if out is None:
            raise GradError(f"op {self.op.name} did not save its output; set saves_output=True in its definition")
        if out is OUTPUT_OVERWRITTEN:
            raise GradError(
                f"backward of {self.op.name} needs the output it computed, but that tensor was "
                f"modified in place afterwards, so the value is gone.\n  Use an out-of-place op "
                f"instead (y = y * 2, not y *= 2), or change the tensor only after calling backward().")
        x = next(x for x in self._inputs if x.__class__ not in NUMBERS)
        t = x.__class__._wrap(out, x._backend)
        t._requires_grad = True
        t.grad_fn = self
        return t

    @property
    def needs_input_grad(self):
        inputs = self._inputs
        if len(inputs) == 2:  # the common case, spelled out: this runs once per backward step
            a, b = inputs
            return (a.__class__ not in NUMBERS and a._requires_grad,
                    b.__class__ not in NUMBERS and b._requires_grad)
        return tuple([x.__class__ not in NUMBERS and x._requires_grad for x in inputs])

    @property
    def next_functions(self):
        """The nodes this node's gradients flow to (``None`` for leaves and constants)."""
        return tuple(None if x.__class__ in NUMBERS else x if x.__class__ is TapeNode else x.grad_fn
                     for x in self._inputs)

    def register_hook(self, fn):
        if self.hooks is None:
            self.hooks = []
        self.hooks.append(fn)
        return _HookHandle(self.hooks, fn)

    def release(self):
        """Free what backward needed (saved arrays, intermediate tensors), keep the structure.

        Each intermediate input is replaced by the node that computed it, which stands in for
        the released value, so the graph can still be walked (``next_functions``,
        ``topological_order``) and drawn, but not differentiated again. Leaves and numbers stay.
        """
        inputs = self._inputs
        if len(inputs) == 2:  # the common case, spelled out: this runs once per backward step
            a, b = inputs
            self._inputs = (a if a.__class__ in NUMBERS else a.grad_fn or a,
                            b if b.__class__ in NUMBERS else b.grad_fn or b)
        else:
            self._inputs = tuple([x if x.__class__ in NUMBERS else x.grad_fn or x for x in inputs])
        self.saved_output = RELEASED

    def __repr__(self):
        return f"<TapeNode {self.op.name}>"


OUTPUT_OVERWRITTEN = object()  # a node's saved output after the tensor holding it changed in place
RELEASED = object()            # a node's saved output after backward freed the node


def _released_error(node):
    return GradError(
        f"backward through {node.op.name} a second time: the values it saved were freed after "
        f"the first backward() to save memory.\n  Call backward(retain_graph=True) the first time "
        f"if you need to go back through the same graph again, or recompute the forward pass.")


class _HookHandle:
    def __init__(self, hooks, fn):
        self._hooks, self._fn = hooks, fn

    def remove(self):
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)
