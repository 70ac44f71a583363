"""Reverse-mode automatic differentiation over the tape that eager ops record.

Each op applied to a tensor that requires grad records a ``TapeNode``: the op, its inputs and
attributes. ``backward`` orders these nodes (outputs first), calls each op's ``backward`` rule
with the gradient of its output, and adds what the rule returns to the gradients of its
inputs. That is the whole chain rule; ``run_backward`` below is exactly those three steps,
and the helpers around it do the bookkeeping (leaf ``.grad``, hooks, freeing memory).

The rules are written with labgrad ops, so with ``create_graph=True`` the backward pass
records a tape of its own, and gradients of gradients come for free.

**Array mode.** Without ``create_graph`` nothing needs recording, so an op whose definition
says ``array_backward=True`` has its rule run directly on the backend's arrays (``g * b`` is
then a plain NumPy multiply, and op calls inside the rule just compute: see ``dispatch``).
That is one more interpreter of the same rule, and the reason eager backward costs little
more than hand-written NumPy. Every other rule (yours, unless you opt in) runs on tensors,
exactly once per node.

The tape itself (``TapeNode``, what it keeps after backward) is in ``tape.py``. This module
never imports ``tensor.py`` (which imports it): it works with whatever tensors it is handed,
and makes new ones of the same class.
"""
from __future__ import annotations

import weakref
from contextlib import ContextDecorator
from operator import attrgetter

from .context import call_hooked, context
from .errors import GradError, ShapeError
from .ops.registry import Ctx
from .ops.shape import sum_to
from .tape import NUMBERS, OUTPUT_OVERWRITTEN, RELEASED, TapeNode, _HookHandle, _released_error

# ---------------------------------------------------------------- grad mode and name scopes

class _GradMode(ContextDecorator):
    """``context.setting(grad_enabled=...)`` made small: it runs on every optimizer step."""

    __slots__ = ("enabled", "prev")

    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        self.prev = context.grad_enabled
        context.grad_enabled = self.enabled
        return self

    def __exit__(self, *exc):
        context.grad_enabled = self.prev
        return False

    def _recreate_cm(self):   # as a decorator, each call gets its own (recursion-safe)
        return _GradMode(self.enabled)


def no_grad():
    """Context manager (and decorator) in which ops record nothing: for inference and updates."""
    return _GradMode(False)


def enable_grad():
    """Context manager (and decorator) that turns recording back on inside ``no_grad``."""
    return _GradMode(True)


def set_grad_enabled(mode: bool):
    return _GradMode(bool(mode))


def is_grad_enabled() -> bool:
    return context.grad_enabled


class name_scope(ContextDecorator):
    """Label the ops recorded inside with a scope name, nested as ``"outer/inner"``.

    Visualizers group nodes by scope, which keeps a 300-op graph readable; ``nn.Module`` opens
    one scope per module call::

        with lg.name_scope("encoder"):
            h = F.relu(x @ w)
    """

    __slots__ = ("name", "prev")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.prev = outer = context.scope
        context.scope = self.name if outer is None else f"{outer}/{self.name}"
        return self

    def __exit__(self, *exc):
        context.scope = self.prev
        return False

    def _recreate_cm(self):   # as a decorator, each call gets its own (recursion-safe)
        return name_scope(self.name)


# ---------------------------------------------------------------- the engine

def topological_order(roots, *, for_backward=True):
    """Every node reachable from ``roots``, each before the nodes it depends on.

    Collect the reachable nodes with an explicit stack (a chain of 100,000 ops must not hit
    Python's recursion limit), then sort them newest first: a node is always created after
    the nodes of its inputs, so creation order is a topological order. A drawing may walk a
    released tape (``for_backward=False``); backward may not.
    """
    seen = set(roots)
    stack = list(roots)
    while stack:
        node = stack.pop()
        if for_backward and node.saved_output is RELEASED:
            raise _released_error(node)
        for x in node._inputs:
            if x.__class__ not in NUMBERS:
                fn = x if x.__class__ is TapeNode else x.grad_fn   # (a released value: its node)
                if fn is not None and fn not in seen:
                    seen.add(fn)
                    stack.append(fn)
    return sorted(seen, key=_stamp_of, reverse=True)


_stamp_of = attrgetter("stamp")


def run_backward(outputs, seeds, retain_graph, create_graph, capture=None, on_step=None):
    """The chain rule over the tape: order, call each rule, accumulate.

    Leaf gradients go to ``.grad`` (``accumulate_grad``), unless ``capture`` (a list of
    tensors) asks for them to be returned instead, as ``lg.grad`` does. ``on_step(node,
    grad_out, input_grads)`` is called after each node, for tools that show the process.
    """
    order = topological_order([y.grad_fn for y in outputs if y.grad_fn is not None])
    rules = RuleRunner(outputs[0], order, create_graph, on_step)
    grads = {}   # a node -> the gradient of its output; a leaf -> its gradient; summed over users
    for y, g in zip(outputs, seeds):
        _add(grads, y.grad_fn or y, rules.unwrap(g))
    watched = _watched_nodes(capture)
    ready = _ready_leaves(order) if _leaf_hooks.registered and capture is None else None
    stored = None if create_graph else set()   # arrays already handed to a leaf
    array_ctx = rules.array_ctx if not context.hooks else None
    saved = context.grad_enabled, context.raw_arrays
    context.grad_enabled, context.raw_arrays = create_graph, rules.xp
    try:
        for node in order:                                      # 1. outputs first
            g = grads.pop(node, None)
            if g is None:
                if ready is not None and node in ready:
                    _deliver_early(ready[node], grads, rules.wrap, stored)
                continue
            if node.hooks or watched:
                g = rules.before_node(node, g, watched)
            if array_ctx is not None and node.op.array_backward:  # 2. the op's rule (fast path:
                array_ctx.node = node                             #    on raw arrays)
                input_grads = node.op.backward(array_ctx, g)
            else:
                input_grads = rules.call(node, g)
            for x, gx in zip(node._inputs, input_grads):        # 3. add to each input's gradient
                if gx is None or x.__class__ in NUMBERS or not x._requires_grad:
                    continue
                if gx.shape != x.data.shape:                    #    (a broadcast input: sum back)
                    gx = rules.sum_to(gx, x.data.shape)
                key = x.grad_fn or x                            #    (its node, or the leaf itself)
                prev = grads.get(key)
                grads[key] = gx if prev is None else prev + gx
            if on_step is not None:
                on_step(node, g, input_grads)
            if not retain_graph:
                node.release()
            if ready is not None and node in ready:            # (hooked leaves that are done)
                _deliver_early(ready[node], grads, rules.wrap, stored)
        context.raw_arrays = None
        return _deliver(grads, capture, watched, rules.wrap, stored)   # what is left: leaves
    finally:
        context.grad_enabled, context.raw_arrays = saved


def _add(grads, key, g):
    prev = grads.get(key)
    grads[key] = g if prev is None else prev + g


def _watched_nodes(capture):
    """For ``lg.grad``: the node of each captured non-leaf tensor, and where its gradient goes."""
    if capture is None:
        return None
    return {x.grad_fn: [x, None] for x in capture if x.grad_fn is not None} or None


def _ready_leaves(order):
    """``{node: [leaves]}``: each leaf that has hooks, under the last node (in backward order)
    that adds to its gradient. After that node its gradient is final, so it is delivered at
    once, and its hooks run while backward goes on (``DistributedDataParallel`` starts
    sending a bucket of gradients while the earlier layers' gradients are being computed)."""
    last = {}
    for node in order:
        for x in node._inputs:
            if x.__class__ not in NUMBERS and x._hooks and x.grad_fn is None:
                last[x] = node
    ready = {}
    for leaf, node in last.items():
        ready.setdefault(node, []).append(leaf)
    return ready


def _deliver_early(leaves, grads, wrap, stored):
    saved, context.raw_arrays = context.raw_arrays, None    # hooks see tensors, as at the end
    try:
        for leaf in leaves:
            g = grads.pop(leaf, None)
            if g is not None:
                accumulate_grad(leaf, wrap(g), stored)
    finally:
        context.raw_arrays = saved


def _deliver(leaf_grads, capture, watched, wrap, stored):
    """Store each leaf's gradient in its ``.grad``, or (``lg.grad``) return those captured, as
    ``{id(tensor): gradient}``. Tensors hash by identity, so they key ``leaf_grads`` directly.
    ``stored``: arrays already handed to a leaf in this pass (``None`` with create_graph)."""
    if capture is None:
        for leaf, g in leaf_grads.items():
            accumulate_grad(leaf, wrap(g), stored)
        return {}
    found = {id(x): g for x, g in (watched or {}).values() if g is not None}
    for x in capture:
        if x.grad_fn is None and x in leaf_grads:
            found[id(x)] = leaf_grads[x]
    return {k: wrap(g) for k, g in found.items()}


class ArrayCtx(Ctx):
    """The ``ctx`` of a backward rule run on raw backend arrays instead of tensors."""

    __slots__ = ("node",)  # one ctx serves a whole backward pass, pointed at each node in turn

    @property
    def inputs(self):  # only when a rule asks (add, sub, exp, tanh, ... never do)
        node = self.node
        inputs = node._inputs if context.last_inplace < node.stamp else node.inputs  # (checks)
        if len(inputs) == 2:  # the common case, spelled out
            a, b = inputs
            return (a if a.__class__ in NUMBERS else a.data, b if b.__class__ in NUMBERS else b.data)
        return tuple([x if x.__class__ in NUMBERS else x.data for x in inputs])

    @property
    def attrs(self):
        return self.node.attrs

    @property
    def needs_input_grad(self):
        return self.node.needs_input_grad

    @property
    def output(self):
        out = self.node.saved_output
        if out is None or out is OUTPUT_OVERWRITTEN or out is RELEASED:
            self.node.output  # raises the error that explains why the output is missing
        return out


class RuleRunner:
    """How one backward pass runs the rules: on raw arrays or on tensors.

    Array mode (``xp`` set) is used without ``create_graph`` and without a stepper watching,
    and only on a tape with no device transfer (whose gradients must know their device).
    Then gradients travel as arrays, and ``call`` wraps them as tensors for the rules that
    did not declare ``array_backward``.
    """

    __slots__ = ("tensor_cls", "backend", "create_graph", "xp", "array_ctx")

    def __init__(self, root, order, create_graph, on_step):
        self.tensor_cls = root.__class__
        self.backend = root._backend
        self.create_graph = create_graph
        self.xp = None
        if not create_graph and on_step is None:
            self.xp = self.backend.xp
            for node in order:
                if node.op.output_device is not None:
                    self.xp = None
                    break
        self.array_ctx = ArrayCtx() if self.xp is not None else None

    def wrap(self, g):
        """A gradient as a tensor (from an array in array mode)."""
        return self.tensor_cls._wrap(self.xp.asarray(g), self.backend) if self.xp is not None else g

    def unwrap(self, g):
        return g.data if self.xp is not None else g

    def sum_to(self, g, shape):
        return sum_to.forward(self.xp, g, shape=shape) if self.xp is not None else sum_to(g, shape=shape)

    def call(self, node, g):
        """Run ``node``'s rule once: on arrays, on tensors, or recorded (``create_graph``)."""
        if context.hooks:
            return call_hooked(context.hooks, node.op, node._inputs, node.attrs,
                               lambda: self._call(node, g), "backward")
        return self._call(node, g)

    def _call(self, node, g):
        op = node.op
        if self.xp is None:
            if self.create_graph:
                return _recorded_backward(node, g)
            return op.backward(node, g)
        if op.array_backward:
            self.array_ctx.node = node
            return op.backward(self.array_ctx, g)
        with context.setting(raw_arrays=None):   # the rule needs tensors: give it tensors
            grads = op.backward(node, self.wrap(g))
        return tuple(None if r is None else r.data for r in grads)

    def before_node(self, node, g, watched):
        """A non-leaf's hooks (each may replace its gradient), and capture for ``lg.grad``."""
        if node.hooks:
            with context.setting(raw_arrays=None):   # user code: ops behave as usual
                for hook in node.hooks:
                    out = hook(self.wrap(g))
                    if out is not None:
                        g = self.unwrap(out)
        if watched and node in watched:
            watched[node][1] = g
        return g


def _recorded_backward(node, g):
    """Run a rule whose ops are being recorded (create_graph=True) in the name scope
    ``"<op> backward"``, nested in the forward op's scope, so that drawings of higher-order
    graphs can show which rule made which ops."""
    name = f"{node.op.name} backward"
    with context.setting(scope=f"{node.scope}/{name}" if node.scope else name):
        return node.op.backward(node, g)


# ---------------------------------------------------------------- a leaf's .grad

def accumulate_grad(leaf, g, stored=None):
    """Add gradient ``g`` to ``leaf.grad``: the one way every interpreter does it.

    The leaf's hooks run first (each may replace ``g``); then ``.grad`` is set to ``g`` if it
    was ``None``, else to ``.grad + g``. Eager backward and ``lg.jit`` (with ``g`` a graph
    symbol) call this; compiled code writes the result with ``store_grad``. ``stored``
    collects arrays already given to a leaf in this pass (see ``store_grad``).
    """
    for hook in leaf._hooks or ():
        out = hook(g)
        if out is not None:
            g = out
    current = leaf._grad if context.tracer is None else leaf.grad   # (the property, while tracing)
    if current is None:
        store_grad(leaf, g, stored)
    else:
        leaf.grad = current + g


def store_grad(leaf, g, stored=None):
    """Set ``leaf.grad = g``, giving the leaf its own writable array when ``g``'s is a view
    (e.g. the broadcast gradient of ``sum``) or already another leaf's (``stored``), so that
    ``grad.zero_()`` or in-place clipping touch only this leaf."""
    if g.__class__ is leaf.__class__ and stored is not None:
        data = g.data
        if id(data) in stored or getattr(data, "base", None) is not None:
            g = g.__class__._wrap(data.copy(), g._backend)
        stored.add(id(g.data))
    if context.tracer is None and g.__class__ is leaf.__class__:
        leaf._grad = g   # what ``leaf.grad = g`` does outside a trace, without the property
    else:
        leaf.grad = g


class _LeafHooks:
    registered = False     # has any leaf ever had a hook? (if not, backward skips the scan)


_leaf_hooks = _LeafHooks()


def register_leaf_hook(tensor, fn):
    _leaf_hooks.registered = True
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


# ---------------------------------------------------------------- entry points

def backward(tensor, grad=None, retain_graph=False, create_graph=False):
    """Compute the gradient of ``tensor`` with respect to every leaf that requires grad, and add
    it to each leaf's ``.grad``. Called as ``loss.backward()``."""
    if not tensor.requires_grad:
        raise GradError(
            "backward() on a tensor that does not require grad: nothing it depends on was created "
            "with requires_grad=True (or it was computed inside no_grad()).\n  Create the inputs "
            "you want gradients for with requires_grad=True.")
    run_backward([tensor], [_seed(tensor, grad)], retain_graph or create_graph, create_graph)


def backward_steps(tensor, grad=None):
    """Run ``tensor.backward(retain_graph=True)`` and return what happened, node by node.

    Each step is ``(node, grad_out, input_grads)`` in the order the engine ran them: the gradient
    arriving at the node's output, and the gradient it sent to each input (``None`` where none
    is needed). Used by the backprop stepper; leaves' ``.grad`` accumulate as in ``backward``.
    """
    if not tensor.requires_grad:
        raise GradError("backward_steps() on a tensor that does not require grad")
    steps = []
    run_backward([tensor], [_seed(tensor, grad)], True, False,
                 on_step=lambda node, g, gs: steps.append((node, g, tuple(gs))))
    return steps


def grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated into ``.grad``).

    With ``create_graph=True`` the result is itself differentiable: call ``grad`` on it again
    for second and higher derivatives::

        (dy,) = lg.grad(y, [x], create_graph=True)
        (d2y,) = lg.grad(dy, [x])
    """
    outputs = [outputs] if _is_tensor(outputs) else list(outputs)
    inputs = [inputs] if _is_tensor(inputs) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif _is_tensor(grad_outputs):
        grad_outputs = [grad_outputs]
    for x in inputs:
        if not _is_tensor(x) or not x.requires_grad:
            raise GradError(f"grad(): every input must be a tensor that requires grad; got {x!r}")
    for y in outputs:
        if not y.requires_grad:
            raise GradError("grad(): an output does not depend on any input that requires grad")
    seeds = [_seed(y, g) for y, g in zip(outputs, grad_outputs)]
    retain = create_graph if retain_graph is None else retain_graph
    got = run_backward(outputs, seeds, retain, create_graph, capture=inputs)
    result = []
    for x in inputs:
        g = got.get(id(x))
        if g is None and not allow_unused:
            raise GradError(
                f"grad(): input {x!r} was not used to compute the outputs, so it has no "
                f"gradient.\n  Pass allow_unused=True to get None for it.")
        result.append(g)
    return tuple(result)


def _is_tensor(x):
    return hasattr(x, "grad_fn") and hasattr(x, "_backend")


def _seed(y, g):
    cls = y.__class__
    if g is None:
        if y.size != 1:
            raise GradError(
                f"backward needs a starting gradient for a non-scalar output of shape "
                f"{tuple(y.shape)}: pass grad=lg.ones_like(y), or reduce it to a scalar first "
                f"(y.sum().backward()).")
        return cls._wrap(y._backend.xp.ones(y.shape, dtype=y.dtype), y._backend)
    if g.__class__ is not cls:
        g = cls._wrap(y._backend.asarray(g, dtype=y.dtype), y._backend)
    if g.shape != y.shape:
        raise ShapeError(f"the starting gradient has shape {tuple(g.shape)} but the output has shape {tuple(y.shape)}")
    return g
