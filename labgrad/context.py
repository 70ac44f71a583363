"""The interpreter context: the state that decides what an op call means right now.

An op call (``x * y``, ``exp(x)``) is given meaning by an *interpreter*: the eager engine
computes it (and records a tape node when gradients are wanted), the jit tracer adds a graph
node instead, a hook such as the profiler watches it. Everything those interpreters need to
know about "now" lives in one object, ``context``:

``grad_enabled``
    Do eager ops record tape nodes? Switched by ``lg.no_grad()`` / ``lg.enable_grad()``.
``scope``
    The current name scope (``"encoder/attn"``), recorded on tape and graph nodes so drawings
    can group them. Switched by ``lg.name_scope(...)`` and ``nn.Module`` calls.
``tracer``
    The active ``lg.jit`` tracer, or ``None``. While set, in-place updates and ``.grad`` are
    recorded into the graph being traced instead of changing tensors.
``frame``
    Where the graph builder puts new nodes while a ``lg.cond`` branch or ``lg.while_loop``
    body is traced (a ``graph.ir.Frame``); ``None`` for the top level.
``raw_arrays``
    The array module (``numpy`` or ``cupy``) while autograd runs backward rules directly on
    raw arrays, else ``None``. While set, an op called on arrays just computes (see
    ``autograd.py``, "array mode").
``hooks``
    The installed hooks, outermost first. Every hook sees every op, forward and backward, and
    they nest in install order (see ``Hook``).
``last_inplace``
    The stamp of the latest in-place change (0: none yet), so a backward rule can tell whether
    a tensor it saved was changed after the op used it.

Change a field with ``context.setting(field=value)``, which restores the old value on exit,
and install a hook with ``context.installed(hook)``::

    with context.setting(grad_enabled=False):
        ...                      # what lg.no_grad() does

The one instance is ``labgrad.context.context``; nothing else in labgrad keeps interpreter
state in module globals.
"""
from __future__ import annotations

import itertools
from contextlib import ContextDecorator
from functools import partial

__all__ = ["context", "Context", "Hook", "stamps"]

stamps = itertools.count(1)
"""Stamps tape nodes and in-place changes in the order they happen (``next(stamps)``)."""


class Hook:
    """Something that watches (or replaces) op calls: the profiler, the jit tracer, a test.

    ``on_op(op, inputs, attrs, run, phase)`` is called for each op; ``phase`` is
    ``"forward"`` for an op call and ``"backward"`` for autograd running that op's backward
    rule. ``run()`` does the work (and calls the next hook inside, if any) and returns the
    result; a hook returns what the call should return, usually ``run()``'s result. A hook
    that does not call ``run`` replaces the op (the tracer returns a graph node instead).
    """

    def on_op(self, op, inputs, attrs, run, phase):
        return run()


class Context:
    """The interpreter state (see the module docstring). One instance: ``context``."""

    __slots__ = ("grad_enabled", "scope", "tracer", "frame", "raw_arrays", "hooks", "last_inplace")

    def __init__(self):
        self.grad_enabled = True
        self.scope = None
        self.tracer = None
        self.frame = None
        self.raw_arrays = None
        self.hooks = ()              # a tuple: cheap to test on the hot path, replaced whole
        self.last_inplace = 0

    def setting(self, **changes):
        """``with context.setting(grad_enabled=False):``: change fields, restore them on exit."""
        for name in changes:
            if name not in self.__slots__:
                raise AttributeError(f"the interpreter context has no field {name!r}; "
                                     f"fields: {', '.join(self.__slots__)}")
        return _Setting(self, changes)

    def installed(self, hook):
        """``with context.installed(hook):``: ``hook`` sees every op inside, nested inside
        the hooks installed before it."""
        return _Installed(self, hook)

    def __repr__(self):
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Context({fields})"


class _Setting(ContextDecorator):
    def __init__(self, ctx, changes):
        self.ctx = ctx
        self.changes = changes
        self.saved = []

    def __enter__(self):
        ctx = self.ctx
        self.saved.append({name: getattr(ctx, name) for name in self.changes})
        for name, value in self.changes.items():
            setattr(ctx, name, value)
        return self

    def __exit__(self, *exc):
        for name, value in self.saved.pop().items():
            setattr(self.ctx, name, value)
        return False


class _Installed:
    def __init__(self, ctx, hook):
        self.ctx = ctx
        self.hook = hook

    def __enter__(self):
        if not callable(getattr(self.hook, "on_op", None)):
            raise TypeError(f"a hook needs an on_op(op, inputs, attrs, run, phase) method; "
                            f"got {type(self.hook).__name__}")
        self.ctx.hooks = self.ctx.hooks + (self.hook,)
        return self.hook

    def __exit__(self, *exc):
        hooks = list(self.ctx.hooks)
        hooks.remove(self.hook)
        self.ctx.hooks = tuple(hooks)
        return False


context = Context()


def call_hooked(hooks, op, inputs, attrs, run, phase):
    """Run ``run`` inside every hook, the first installed outermost."""
    call = partial(_innermost, run)
    for hook in reversed(hooks):   # partials, not nested closures: no reference cycle
        call = partial(hook.on_op, op, inputs, attrs, call, phase)
    return call()


def _innermost(run):
    # The op itself: ops it calls internally (a backward rule's, say) are not hooked again.
    hooks, context.hooks = context.hooks, ()
    try:
        return run()
    finally:
        context.hooks = hooks
