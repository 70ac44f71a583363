"""Inlining an op's ``forward`` into generated code.

When an op's ``forward`` is a single ``return`` expression, ``inline_forward`` substitutes the
node's input expressions and attribute values for its parameters, so the generated line for
``add`` reads ``v2 = xp.add(a, b)`` instead of a call to ``add``'s forward function. Forwards
with several statements, or that refer to module globals, are not inlined (``None``).
"""
from __future__ import annotations

import ast
import copy
import functools
import inspect
import math
import textwrap

__all__ = ["forward_template", "inline_forward", "is_literal"]


@functools.lru_cache(maxsize=None)
def forward_template(forward):
    """``(params, vararg, kwonly, expression)`` when ``forward`` is one ``return``; else None."""
    try:
        source = textwrap.dedent(inspect.getsource(forward))
        fn = ast.parse(source).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        return None
    if not isinstance(fn, ast.FunctionDef) or fn.args.kwarg or fn.decorator_list:
        return None
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return None
    a = fn.args
    params = [x.arg for x in a.posonlyargs + a.args]
    vararg = a.vararg.arg if a.vararg else None
    kwonly = [x.arg for x in a.kwonlyargs]
    allowed = set(params) | set(kwonly) | {vararg}
    expr = body[0].value
    for sub in ast.walk(expr):
        if isinstance(sub, ast.Name) and sub.id not in allowed:
            return None  # refers to a module global: call the function instead
        if isinstance(sub, (ast.Lambda, ast.NamedExpr, ast.comprehension)):
            return None
    return params, vararg, kwonly, expr


class _Substitute(ast.NodeTransformer):
    """Put the node's inputs and attributes in place of the forward's parameter names."""

    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        if node.id in self.mapping:
            return ast.parse(self.mapping[node.id], mode="eval").body
        return node

    def visit_BoolOp(self, node):
        # `dtype or a.dtype` with dtype=None reads better as `a.dtype`
        self.generic_visit(node)
        if isinstance(node.op, ast.Or):
            values = node.values
            while len(values) > 1 and isinstance(values[0], ast.Constant) and not values[0].value:
                values = values[1:]
            if len(values) == 1:
                return values[0]
            node.values = values
        return node


def is_literal(v):
    if v is None or isinstance(v, (bool, int, str)):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, slice):
        return all(is_literal(p) for p in (v.start, v.stop, v.step))
    if v is Ellipsis:
        return True
    if isinstance(v, tuple):
        return all(is_literal(x) for x in v)
    return False


def inline_forward(op, xp, args, attrs, program):
    t = forward_template(op.forward)
    if t is None:
        return None
    params, vararg, kwonly, expr = t
    if not params:
        return None
    arrays = params[1:]
    if len(args) < len(arrays) or (len(args) > len(arrays) and vararg is None):
        return None
    if set(attrs) != set(kwonly):
        return None
    mapping = {params[0]: xp}
    mapping.update(zip(arrays, args))
    if vararg is not None:
        rest = args[len(arrays):]
        mapping[vararg] = "(" + ", ".join(rest) + ("," if len(rest) == 1 else "") + ")"
    for k in kwonly:
        mapping[k] = program.literal(k, attrs[k])
    return ast.unparse(_Substitute(mapping).visit(copy.deepcopy(expr)))
