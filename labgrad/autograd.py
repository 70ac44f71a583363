"""Reverse-mode automatic differentiation over the tape that eager ops record.

Each op applied to a tensor that requires grad records a ``TapeNode``: the op, its inputs and
attributes. ``backward`` walks these nodes in reverse topological order and calls each op's
``backward`` rule. The rules are written with labgrad ops, so with ``create_graph=True`` the
backward pass records a tape of its own, and gradients of gradients come for free.
"""
from __future__ import annotations

import weakref
from operator import attrgetter
from contextlib import ContextDecorator

from . import dispatch
from .errors import GradError, ShapeError


class TapeNode:
    """One recorded op application: the ``grad_fn`` of the tensor it produced.

    It is also the ``ctx`` an op's ``backward`` rule receives: ``ctx.inputs``, ``ctx.attrs``,
    ``ctx.output`` and ``ctx.needs_input_grad``.
    """

    __slots__ = ("op", "_inputs", "attrs", "_out", "_stamp", "scope", "__dict__", "__weakref__")
    hooks = None  # set (in the instance's lazily made __dict__) by register_hook only
    # _stamp: when the op ran (dispatch.clock). Inputs exist before the ops that use them, so
    # stamps order nodes topologically; a tensor changed in place later has a larger stamp.

    def __init__(self, op, inputs, attrs, out):
        self.op = op
        self._inputs = inputs
        self.attrs = attrs
        self._out = out            # the output array, kept only for ops that use it (exp, tanh, ...)
        self._stamp = next(dispatch.clock)
        self.scope = dispatch.scope

    @property
    def name(self):
        return self.op.name

    @property
    def inputs(self):
        """The op's inputs (tensors and Python numbers), as they were when the op ran."""
        inputs = self._inputs
        if inputs is None:
            raise _freed_error(self)
        stamp = self._stamp
        if dispatch.last_inplace < stamp:  # nothing changed in place since this op ran
            return inputs
        for i, x in enumerate(inputs):
            if x.__class__ is Tensor and x._modified_at > stamp:
                raise GradError(
                    f"backward of {self.op.name} needs its input {i} ({x.dtype}{list(x.shape)}), "
                    f"but that tensor was modified in place after {self.op.name} used it, so its "
                    f"old value is gone.\n  Use an out-of-place op instead (y = y + 1, not y += 1), "
                    f"or change the tensor only after calling backward().")
        return inputs

    @property
    def output(self):
        """The op's output, as a tensor whose grad_fn is this node (so it is differentiable)."""
        if self._out is None:
            raise GradError(f"op {self.op.name} did not save its output; set saves_output=True in its definition")
        if self._out is OVERWRITTEN:
            raise GradError(
                f"backward of {self.op.name} needs the output it computed, but that tensor was "
                f"modified in place afterwards, so the value is gone.\n  Use an out-of-place op "
                f"instead (y = y * 2, not y *= 2), or change the tensor only after calling backward().")
        for x in self._inputs:
            if x.__class__ is Tensor:
                t = Tensor._wrap(self._out, x._backend)
                break
        t._requires_grad = True
        t.grad_fn = self
        return t

    @property
    def needs_input_grad(self):
        inputs = self._inputs
        if len(inputs) == 2:  # the common case, spelled out: this runs once per backward step
            a, b = inputs
            return (a.__class__ is Tensor and a._requires_grad, b.__class__ is Tensor and b._requires_grad)
        return tuple([x.__class__ is Tensor and x._requires_grad for x in inputs])

    @property
    def next_functions(self):
        """The nodes this node's gradients flow to (``None`` for leaves and constants)."""
        return tuple(x.grad_fn if isinstance(x, Tensor) else None for x in self._inputs or ())

    def register_hook(self, fn):
        if self.hooks is None:
            self.hooks = []
        self.hooks.append(fn)
        return _HookHandle(self.hooks, fn)

    def free(self):
        """Drop what backward needed; a second backward through this node will then refuse."""
        self._inputs = None
        self._out = None

    def __repr__(self):
        return f"<TapeNode {self.op.name}>"


OVERWRITTEN = object()  # a node's saved output after the tensor holding it changed in place


def _freed_error(node):
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


# ---------------------------------------------------------------- grad mode

class _GradMode(ContextDecorator):
    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        self.prev = dispatch.grad_enabled
        dispatch.grad_enabled = self.enabled
        return self

    def __exit__(self, *exc):
        dispatch.grad_enabled = self.prev
        return False


def no_grad():
    """Context manager (and decorator) in which ops record nothing: for inference and updates."""
    return _GradMode(False)


def enable_grad():
    """Context manager (and decorator) that turns recording back on inside ``no_grad``."""
    return _GradMode(True)


class name_scope(ContextDecorator):
    """Label the ops recorded inside with a scope name, nested as ``"outer/inner"``.

    Visualizers group nodes by scope, which keeps a 300-op graph readable; ``nn.Module`` opens
    one scope per module call::

        with lg.name_scope("encoder"):
            h = F.relu(x @ w)
    """

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.prev = dispatch.scope
        dispatch.scope = self.name if self.prev is None else f"{self.prev}/{self.name}"
        return self

    def __exit__(self, *exc):
        dispatch.scope = self.prev
        return False


def set_grad_enabled(mode: bool):
    return _GradMode(bool(mode))


def is_grad_enabled() -> bool:
    return dispatch.grad_enabled


# ---------------------------------------------------------------- the engine

def topological_order(roots):
    """Every node reachable from ``roots``, each before the nodes it depends on.

    Collect the reachable nodes with an explicit stack (a chain of 100,000 ops must not hit
    Python's recursion limit), then sort them newest first: a node is always created after
    the nodes of its inputs, so creation order is a topological order.
    """
    seen = set(roots)
    stack = list(roots)
    while stack:
        node = stack.pop()
        inputs = node._inputs
        if inputs is None:
            raise _freed_error(node)
        for x in inputs:
            if x.__class__ is Tensor:
                fn = x.grad_fn
                if fn is not None and fn not in seen:
                    seen.add(fn)
                    stack.append(fn)
    return sorted(seen, key=_stamp_of, reverse=True)


_stamp_of = attrgetter("_stamp")


def _recorded_backward(node, g):
    """Run a backward rule whose ops are being recorded (create_graph=True) in the name scope
    ``"<op> backward"``, nested in the forward op's scope, so that drawings of higher-order
    graphs can show which rule made which ops."""
    outer = dispatch.scope
    name = f"{node.op.name} backward"
    dispatch.scope = f"{node.scope}/{name}" if node.scope else name
    try:
        return node.op.backward(node, g)
    finally:
        dispatch.scope = outer


class _ArrayCtx:
    """The ``ctx`` of a backward rule run on raw backend arrays instead of tensors.

    Without ``create_graph`` nothing needs recording, so the engine runs each rule on the
    arrays themselves: ``g * b`` is then a plain NumPy multiply, and op calls inside the rule go
    straight to the op's ``forward`` (see ``dispatch.array_xp``). One more interpreter of the same
    rules, and the reason eager backward costs little more than hand-written NumPy.
    """

    __slots__ = ("node",)  # one ctx serves a whole backward pass, pointed at each node in turn

    @property
    def inputs(self):  # only when a rule asks (add, sub, exp, tanh, ... never do)
        return tuple([x.data if x.__class__ is Tensor else x for x in self.node.inputs])

    @property
    def attrs(self):
        return self.node.attrs

    @property
    def needs_input_grad(self):
        return self.node.needs_input_grad

    @property
    def output(self):
        out = self.node._out
        if out is None or out is OVERWRITTEN:
            self.node.output  # raises the error that explains why the output is missing
        return out


def _run_node_hooks(node, g, xp, as_tensor):
    """A non-leaf's hooks, called with (and allowed to replace) its whole gradient as a tensor."""
    saved, dispatch.array_xp = dispatch.array_xp, None  # user code: ops behave as usual
    try:
        for hook in node.hooks:
            out = hook(as_tensor(g))
            if out is not None:
                g = out.data if xp is not None else out
    finally:
        dispatch.array_xp = saved
    return g


def _rule_on_tensors(node, g, xp, backend):
    """Run ``node``'s rule on tensors inside an array-mode pass (for rules that need tensor
    methods, such as ``.exp()`` or ``.detach()``, as students' rules may) and hand back arrays."""
    dispatch.array_xp = None
    try:
        grads = node.op.backward(node, Tensor._wrap(xp.asarray(g), backend))
    finally:
        dispatch.array_xp = xp
    return tuple(None if r is None else r.data for r in grads)


def _run_backward(outputs, grad_outputs, retain_graph, create_graph, capture=None, on_step=None):
    """The chain rule over the tape. Leaf gradients accumulate into ``.grad``, unless
    ``capture`` (a list of tensors) asks for them to be returned instead. ``on_step(node,
    grad_out, input_grads)`` is called after each node, for tools that show the process."""
    grads = {}       # TapeNode -> gradient of its output, summed over its consumers
    captured = {}    # id(input) -> gradient, when capturing
    capture_nodes = {} if capture is None else {x.grad_fn: x for x in capture if x.grad_fn is not None}
    capture_leaves = set() if capture is None else {id(x) for x in capture if x.grad_fn is None}
    leaf_grads = {}  # id(leaf) -> [leaf, gradient summed over every path], stored at the end
    order = topological_order([y.grad_fn for y in outputs if y.grad_fn is not None])

    # Without create_graph (and without a stepper watching), rules run on raw arrays. Transfers
    # between devices need tensors that know their device, so a tape with one stays on tensors.
    backend = outputs[0]._backend
    xp = None
    if not create_graph and on_step is None:
        xp = backend.xp
        for node in order:
            if node.op.family == "transfer":
                xp = None
                break

    array_ctx = _ArrayCtx() if xp is not None else None

    def as_tensor(g):
        return Tensor._wrap(xp.asarray(g), backend) if xp is not None else g

    def deliver_to_leaf(x, g):
        if capture is not None:
            if id(x) in capture_leaves:
                prev = captured.get(id(x))
                captured[id(x)] = g if prev is None else prev + g
            return
        entry = leaf_grads.get(id(x))
        if entry is None:
            leaf_grads[id(x)] = [x, g]
        else:
            entry[1] = entry[1] + g

    grad_mode, dispatch.grad_enabled = dispatch.grad_enabled, create_graph  # (as _GradMode does)
    try:
        for y, g in zip(outputs, grad_outputs):
            if xp is not None:
                g = g.data
            if y.grad_fn is None:
                deliver_to_leaf(y, g)
            else:
                prev = grads.get(y.grad_fn)
                grads[y.grad_fn] = g if prev is None else prev + g
        dispatch.array_xp = xp  # ops called by rules now just compute (see dispatch)
        try:
            for node in order:
                g = grads.pop(node, None)
                if g is None:
                    continue
                if node.hooks:
                    g = _run_node_hooks(node, g, xp, as_tensor)
                if capture_nodes and node in capture_nodes:
                    captured[id(capture_nodes[node])] = g
                inputs = node._inputs
                if xp is not None:
                    op = node.op
                    if op.array_backward:
                        array_ctx.node = node
                        try:
                            in_grads = op.backward(array_ctx, g)
                        except GradError:
                            raise
                        except Exception:  # rules are pure: running one again on tensors is safe
                            op.array_backward = False
                            in_grads = _rule_on_tensors(node, g, xp, backend)
                    else:
                        in_grads = _rule_on_tensors(node, g, xp, backend)
                elif create_graph:
                    in_grads = _recorded_backward(node, g)
                else:
                    in_grads = node.op.backward(node, g)
                for x, gx in zip(inputs, in_grads):
                    if gx is None or x.__class__ is not Tensor or not x._requires_grad:
                        continue
                    if gx.shape != x.data.shape:
                        gx = (sum_to.forward(xp, gx, shape=x.data.shape) if xp is not None
                              else sum_to(gx, shape=x.data.shape))
                    fn = x.grad_fn
                    if fn is None:
                        deliver_to_leaf(x, gx)
                    else:
                        prev = grads.get(fn)
                        grads[fn] = gx if prev is None else prev + gx
                if on_step is not None:
                    on_step(node, g, in_grads)
                if not retain_graph:
                    node._inputs = node._out = None
        finally:
            dispatch.array_xp = None
        stored = set()
        for x, g in leaf_grads.values():  # hooks see a leaf's whole gradient, once
            g = as_tensor(g)
            if x._hooks:
                for hook in x._hooks:
                    out = hook(g)
                    g = out if out is not None else g
            if x.grad is not None:
                x.grad = x.grad + g
                continue
            if not create_graph and (id(g.data) in stored or g.data.base is not None):
                # a view (e.g. the broadcast gradient of sum) or a tensor another leaf got
                # too: give this leaf its own writable copy, so grad.zero_() and in-place
                # clipping touch only this leaf
                g = Tensor._wrap(g.data.copy(), g._backend)
            stored.add(id(g.data))
            x.grad = g
    finally:
        dispatch.grad_enabled = grad_mode
    return {k: as_tensor(g) for k, g in captured.items()}


def backward(tensor, grad=None, retain_graph=False, create_graph=False):
    """Compute the gradient of ``tensor`` with respect to every leaf that requires grad, and add
    it to each leaf's ``.grad``. Called as ``loss.backward()``."""
    if not tensor.requires_grad:
        raise GradError(
            "backward() on a tensor that does not require grad: nothing it depends on was created "
            "with requires_grad=True (or it was computed inside no_grad()).\n  Create the inputs "
            "you want gradients for with requires_grad=True.")
    grad = _seed(tensor, grad)
    _run_backward([tensor], [grad], retain_graph or create_graph, create_graph)


def backward_steps(tensor, grad=None):
    """Run ``tensor.backward(retain_graph=True)`` and return what happened, node by node.

    Each step is ``(node, grad_out, input_grads)`` in the order the engine ran them: the gradient
    arriving at the node's output, and the gradient it sent to each input (``None`` where none
    is needed). Used by the backprop stepper; leaves' ``.grad`` accumulate as in ``backward``.
    """
    if not tensor.requires_grad:
        raise GradError("backward_steps() on a tensor that does not require grad")
    steps = []
    _run_backward([tensor], [_seed(tensor, grad)], True, False,
                  on_step=lambda node, g, gs: steps.append((node, g, tuple(gs))))
    return steps


def grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated into ``.grad``).

    With ``create_graph=True`` the result is itself differentiable: call ``grad`` on it again
    for second and higher derivatives::

        (dy,) = lg.grad(y, [x], create_graph=True)
        (d2y,) = lg.grad(dy, [x])
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for x in inputs:
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise GradError(f"grad(): every input must be a tensor that requires grad; got {x!r}")
    for y in outputs:
        if not y.requires_grad:
            raise GradError("grad(): an output does not depend on any input that requires grad")
    seeds = [_seed(y, g) for y, g in zip(outputs, grad_outputs)]
    retain = create_graph if retain_graph is None else retain_graph
    got = _run_backward(outputs, seeds, retain, create_graph, capture=inputs)
    result = []
    for x in inputs:
        g = got.get(id(x))
        if g is None:
            if not allow_unused:
                raise GradError(
                    f"grad(): input {x!r} was not used to compute the outputs, so it has no "
                    f"gradient.\n  Pass allow_unused=True to get None for it.")
        result.append(g)
    return tuple(result)


def _seed(y, g):
    if g is None:
        if y.size != 1:
            raise GradError(
                f"backward needs a starting gradient for a non-scalar output of shape "
                f"{tuple(y.shape)}: pass grad=lg.ones_like(y), or reduce it to a scalar first "
                f"(y.sum().backward()).")
        return Tensor._wrap(y._backend.xp.ones(y.shape, dtype=y.dtype), y._backend)
    if not isinstance(g, Tensor):
        g = Tensor._wrap(y._backend.asarray(g, dtype=y.dtype), y._backend)
    if g.shape != y.shape:
        raise ShapeError(f"the starting gradient has shape {tuple(g.shape)} but the output has shape {tuple(y.shape)}")
    return g


def register_leaf_hook(tensor, fn):
    if tensor._hooks is None:
        tensor._hooks = []
    tensor._hooks.append(fn)
    return _HookHandle(tensor._hooks, fn)


def retain_grad(tensor):
    """Keep the gradient of a non-leaf tensor in its ``.grad`` during backward."""
    if tensor.grad_fn is None:
        return
    ref = weakref.ref(tensor)

    def store(g):
        t = ref()
        if t is not None:
            t.grad = g if t.grad is None else t.grad + g

    tensor.grad_fn.register_hook(store)


from .tensor import Tensor  # noqa: E402
from .ops.shape import sum_to  # noqa: E402
