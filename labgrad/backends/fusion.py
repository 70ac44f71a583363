"""Fused kernels, described independently of the graph IR and typed exactly like eager NumPy.

A fusion group is a small straight-line program over arrays::

    k = FusedKernel(
        inputs=[("a", "float32", None), ("b", "float32", None)],
        steps=[("t0", mul, ("a", "b"), {}),               # (name, op, inputs, attrs)
               ("t1", leaky_relu, ("t0",), {"alpha": 0.1})],
        outputs=["t1"],
        reduce=None)                                       # or ("sum", axes, keepdims)

An op here is anything with ``name``, ``expr`` and ``forward`` (labgrad's elementwise ops):
this module sits below ``labgrad.ops`` and never imports it. A step's inputs are names of
kernel inputs or earlier steps, or Python numbers (weakly typed, as in ``x * 2``).

Each template (``"({0} * {1})"``, ``"where({0} > 0, {0}, {0} * {alpha})"``) is parsed into a
small typed tree. Every node gets the dtype eager NumPy would give it, found by running the
NumPy function on 0-d arrays (the same probe ``infer`` uses), and every operand is cast to the
dtype the node computes in. So a Python ``0.5`` next to a float32 value becomes
``float32(0.5)`` and keeps the loop in float32 (NEP 50's weak scalars), ``int8 + int8`` wraps
around like NumPy's, ``int / int`` divides in float64, and each step's result is cast to the
step's dtype (the op's ``infer`` result; pass it as a 5th step element, or it is probed from the
op's ``forward``, which is what the default ``infer`` does).

The code generators read the typed tree: ``fusion_cpu`` writes a Numba loop (or NumPy with
``out=`` buffers), ``fusion_cuda`` a CuPy ``ElementwiseKernel``/``ReductionKernel``.
"""
from __future__ import annotations

import ast
import hashlib
import keyword
import math
import operator
import re
from numbers import Number

import numpy as np


class FusionError(ValueError):
    """The group cannot become one kernel; the message says why (fusion reports show it)."""


# ---------------------------------------------------------------- the template vocabulary

SUPPORTED_DTYPES = frozenset(np.dtype(d) for d in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64"))

#: template function or operator -> the NumPy function that defines its dtype and values
NUMPY_FUNCS = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "neg": np.negative,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
    "gt": np.greater, "ge": np.greater_equal,
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.absolute, "sin": np.sin,
    "cos": np.cos, "tanh": np.tanh, "max": np.maximum, "min": np.minimum, "where": np.where,
    "pow": np.power, "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_not": np.logical_not,
}
CALLS = {"exp", "log", "sqrt", "abs", "sin", "cos", "tanh", "max", "min", "where", "pow",
         "logical_and", "logical_or", "logical_not"}
ARITY = {name: 2 for name in NUMPY_FUNCS}
ARITY.update({"neg": 1, "exp": 1, "log": 1, "sqrt": 1, "abs": 1, "sin": 1, "cos": 1, "tanh": 1,
              "logical_not": 1, "where": 3})
COMPARISONS = {"eq", "ne", "lt", "le", "gt", "ge"}
LOGICAL = {"logical_and", "logical_or", "logical_not"}
_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}
_CMPOPS = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}
_PY_FOLD = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
            "neg": operator.neg}

REDUCE_KINDS = ("sum", "mean", "max")

# names the generated sources use themselves (an input called ``i`` or ``float32`` is renamed)
RESERVED = {"i", "np", "shape", "inf", "nan", "bool_", "True", "False", "None",
            "int", "float", "double", "char", "short", "long", "unsigned", "signed", "bool",
            "true", "false", "const", "void", "auto", "return", "if", "else", "for", "while",
            "do", "switch", "case", "default", "break", "continue", "struct", "union", "enum",
            "static", "extern", "register", "volatile", "inline", "typedef", "sizeof", "goto",
            "template", "typename", "class", "new", "delete", "this", "operator", "private",
            "public", "protected", "namespace", "using", "friend", "virtual", "restrict",
            "numba", "math", "min", "max", "abs", "exp", "log", "sqrt", "sin", "cos", "tanh",
            "pow", "where", "lg_max", "lg_min", "lg_ipow"} | {d.name for d in SUPPORTED_DTYPES}


_GENERATED = re.compile(r"^(i|n|s|r|acc|out|in|ld)\d+$")   # loop indices, sizes, accumulators, loads


# ---------------------------------------------------------------- the typed tree

class Node:
    __slots__ = ("dtype",)


class Ref(Node):
    """A kernel input or an earlier step, by its identifier in the generated code."""
    __slots__ = ("ident",)

    def __init__(self, ident, dtype):
        self.ident, self.dtype = ident, np.dtype(dtype)


class Const(Node):
    """A literal. ``dtype`` is ``None`` while it is weak (a Python number); typing fixes it."""
    __slots__ = ("value",)

    def __init__(self, value, dtype=None):
        self.value, self.dtype = value, (None if dtype is None else np.dtype(dtype))


class Cast(Node):
    __slots__ = ("arg",)

    def __init__(self, arg, dtype):
        self.arg, self.dtype = arg, np.dtype(dtype)


class Apply(Node):
    """``fn(*args)``; ``args`` are already cast to the dtypes this node computes in."""
    __slots__ = ("fn", "args")

    def __init__(self, fn, args, dtype):
        self.fn, self.args, self.dtype = fn, tuple(args), np.dtype(dtype)


def walk(node):
    """Every node of a tree, parents first."""
    yield node
    for child in node.args if isinstance(node, Apply) else (node.arg,) if isinstance(node, Cast) else ():
        yield from walk(child)


# ---------------------------------------------------------------- parsing a template

def parse_template(template, args, attrs, opname="?"):
    """Substitute a template's ``{0}``/``{alpha}`` and parse it into an untyped tree.

    ``args`` are ``Ref``/``Const`` nodes; attribute values must be numbers.
    """
    text = template
    subs = {}
    for k, arg in enumerate(args):
        text = text.replace("{%d}" % k, f"__arg{k}__")
        subs[f"__arg{k}__"] = arg
    for key, value in attrs.items():
        if "{" + key + "}" not in text:
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Number, np.generic)):
            raise FusionError(f"{opname}: attribute {key}={value!r} is not a number, so it cannot "
                              f"be written into a kernel")
        text = text.replace("{" + key + "}", f"__attr_{key}__")
        subs[f"__attr_{key}__"] = (Const(value, value.dtype) if isinstance(value, np.generic)
                                   else Const(value))
    if "{" in text:
        raise FusionError(f"{opname}: template {template!r} names a placeholder that was not given")
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise FusionError(f"{opname}: template {template!r} does not parse ({e.msg})") from None
    return _convert(tree, subs, opname, template)


def _convert(t, subs, opname, template):
    def bad(what):
        return FusionError(f"{opname}: template {template!r} uses {what}, which is outside the "
                           f"fusion vocabulary (see labgrad/ops/registry.py)")

    def conv(t):
        if isinstance(t, ast.Name):
            if t.id in subs:
                return subs[t.id]
            raise bad(f"the name {t.id!r}")
        if isinstance(t, ast.Constant) and isinstance(t.value, (int, float)):
            return Const(t.value)
        if isinstance(t, ast.BinOp) and type(t.op) in _BINOPS:
            return ("apply", _BINOPS[type(t.op)], (conv(t.left), conv(t.right)))
        if isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.USub):
            return ("apply", "neg", (conv(t.operand),))
        if isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.UAdd):
            return conv(t.operand)
        if isinstance(t, ast.Compare) and len(t.ops) == 1 and type(t.ops[0]) in _CMPOPS:
            return ("apply", _CMPOPS[type(t.ops[0])], (conv(t.left), conv(t.comparators[0])))
        if isinstance(t, ast.Call) and isinstance(t.func, ast.Name) and t.func.id in CALLS \
                and not t.keywords:
            if len(t.args) != ARITY[t.func.id]:
                raise bad(f"{t.func.id} with {len(t.args)} arguments")
            return ("apply", t.func.id, tuple(conv(a) for a in t.args))
        raise bad(ast.unparse(t))

    return conv(t)


# ---------------------------------------------------------------- typing like eager NumPy

def _probe_value(node):
    if node.dtype is None:
        return node.value
    return np.ones((), node.dtype)


def type_tree(raw, opname="?"):
    """Give every node of a parsed template its eager-NumPy dtype and insert the casts."""
    if isinstance(raw, Node):
        return raw
    _, fn, raw_args = raw
    args = [type_tree(a, opname) for a in raw_args]
    if all(isinstance(a, Const) and a.dtype is None for a in args):   # Python arithmetic
        return Const(_fold(fn, [a.value for a in args]))
    try:
        with np.errstate(all="ignore"):
            dtype = np.asarray(NUMPY_FUNCS[fn](*[_probe_value(a) for a in args])).dtype
            if fn in COMPARISONS:
                operand = np.result_type(*[_probe_value(a) for a in args])
    except (TypeError, OverflowError, ValueError) as e:
        dts = ", ".join(str(a.dtype or type(a.value).__name__) for a in args)
        raise FusionError(f"{opname}: NumPy cannot apply {fn} to {dts} ({e})") from None
    if dtype not in SUPPORTED_DTYPES:
        raise FusionError(f"{opname}: {fn} gives {dtype}, which fused kernels do not support "
                          f"(supported: bool, integers, float32, float64)")
    if fn == "where":
        want = [np.dtype(bool), dtype, dtype]
    elif fn in LOGICAL:
        want = [np.dtype(bool)] * len(args)
    elif fn in COMPARISONS:
        want = [operand] * len(args)
    else:
        want = [dtype] * len(args)
    return Apply(fn, [cast_to(a, w) for a, w in zip(args, want)], dtype)


def _fold(fn, values):
    if fn in _PY_FOLD:
        return _PY_FOLD[fn](*values)
    value = NUMPY_FUNCS[fn](*values)
    return value.item() if isinstance(value, np.generic) else value


def cast_to(node, dtype):
    """``node`` as ``dtype``: a weak literal takes the dtype, anything else gets a ``Cast``."""
    dtype = np.dtype(dtype)
    if isinstance(node, Const):
        if node.dtype is not None and node.dtype == dtype:   # (np.dtype(None) is float64!)
            return node
        with np.errstate(all="ignore"):
            value = np.array(node.value, dtype=node.dtype).astype(dtype) if node.dtype is not None \
                else np.asarray(dtype.type(node.value))
        return Const(value.item(), dtype)
    if node.dtype == dtype:
        return node
    return Cast(node, dtype)


# ---------------------------------------------------------------- the description

class Input:
    __slots__ = ("name", "ident", "dtype", "shape")

    def __init__(self, name, ident, dtype, shape):
        self.name, self.ident, self.dtype, self.shape = name, ident, dtype, shape


class Step:
    __slots__ = ("name", "ident", "op", "tree", "dtype", "refs", "attrs")

    def __init__(self, name, ident, op, tree, dtype, refs, attrs):
        self.name, self.ident, self.op, self.tree = name, ident, op, tree
        self.dtype, self.refs, self.attrs = dtype, refs, attrs


class Output:
    __slots__ = ("name", "ident", "value_dtype", "dtype")

    def __init__(self, name, ident, value_dtype, dtype):
        self.name, self.ident, self.value_dtype, self.dtype = name, ident, value_dtype, dtype


class Reduce:
    """``kind`` over ``axes`` (``None``: all axes) of the broadcast shape, like ``np.<kind>``."""
    __slots__ = ("kind", "axes", "keepdims")

    def __init__(self, kind, axes, keepdims):
        if kind not in REDUCE_KINDS:
            raise FusionError(f"cannot fuse a {kind!r} reduction; fused reductions are "
                              f"{', '.join(REDUCE_KINDS)}")
        self.kind = kind
        self.axes = None if axes is None else ((axes,) if isinstance(axes, int) else tuple(axes))
        self.keepdims = bool(keepdims)

    def __repr__(self):
        return f"Reduce({self.kind!r}, axes={self.axes}, keepdims={self.keepdims})"


def reduce_dtype(kind, dtype):
    """The dtype eager NumPy gives ``np.<kind>`` of an array of ``dtype``."""
    return getattr(np, kind)(np.ones((1,), dtype)).dtype


class FusedKernel:
    """A group of elementwise steps that becomes one kernel (see the module docstring).

    ``inputs``: ``(name, dtype, shape_or_None)``; ``steps``: ``(name, op, inputs, attrs)`` or
    ``(name, op, inputs, attrs, dtype)``; ``outputs``: names; ``reduce``: ``None`` or
    ``(kind, axes, keepdims)`` with kind in sum/mean/max, applied to every output.
    """

    def __init__(self, inputs, steps, outputs, reduce=None, name=None):
        self._idents = {}
        self.inputs = []
        env = {}
        for spec in inputs:
            iname, dtype, shape = (tuple(spec) + (None,))[:3]
            dtype = _check_dtype(dtype, f"input {iname!r}")
            inp = Input(iname, self._ident(iname), dtype, None if shape is None else tuple(shape))
            self.inputs.append(inp)
            env[iname] = Ref(inp.ident, dtype)
        self.steps = []
        for spec in steps:
            if len(spec) not in (4, 5):
                raise FusionError(f"a step is (name, op, inputs, attrs[, dtype]), not {spec!r}")
            sname, op, refs, attrs = spec[:4]
            attrs = dict(attrs or {})
            opname = getattr(op, "name", str(op))
            if getattr(op, "expr", None) is None:
                raise FusionError(f"{opname} has no expr template, so it cannot be fused")
            args = []
            for r in refs:
                if isinstance(r, (Number, np.generic)) and not isinstance(r, str):
                    args.append(Const(r.item(), r.dtype) if isinstance(r, np.generic) else Const(r))
                elif r in env:
                    args.append(env[r])
                else:
                    raise FusionError(f"step {sname!r} ({opname}) reads {r!r}, which is neither an "
                                      f"input nor an earlier step")
            raw = parse_template(op.expr, args, attrs, opname)
            dtype = spec[4] if len(spec) == 5 else _forward_dtype(op, args, attrs, opname)
            dtype = _check_dtype(dtype, f"step {sname!r} ({opname})")
            tree = type_tree(raw, opname)
            tree = cast_to(tree, dtype)
            if sname in env:
                raise FusionError(f"the name {sname!r} is defined twice in the group")
            step = Step(sname, self._ident(sname), opname, tree, dtype, tuple(refs), attrs)
            self.steps.append(step)
            env[sname] = Ref(step.ident, dtype)
        if not outputs:
            raise FusionError("a fused kernel needs at least one output")
        self.reduce = None if reduce is None else (reduce if isinstance(reduce, Reduce) else Reduce(*reduce))
        self.outputs = []
        for oname in outputs:
            if oname not in env:
                raise FusionError(f"output {oname!r} is not an input or a step of the group")
            vdt = env[oname].dtype
            odt = vdt if self.reduce is None else reduce_dtype(self.reduce.kind, vdt)
            self.outputs.append(Output(oname, env[oname].ident, vdt, odt))
        self.env = env
        deps = {i.ident: {k} for k, i in enumerate(self.inputs)}
        for st in self.steps:
            deps[st.ident] = set().union(*[deps.get(n.ident, set()) for n in walk(st.tree)
                                           if isinstance(n, Ref)])
        #: for each output, the indices of the inputs it depends on (its shape broadcasts theirs)
        self.output_deps = [tuple(sorted(deps[o.ident])) for o in self.outputs]
        self.dtypes = {ref.ident: ref.dtype for ref in env.values()}   # identifier -> dtype
        self.key = self._key()
        self.name = name or f"fused_{self.key[:10]}"

    # ---- names
    def _ident(self, name):
        base = name if isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name) \
            and not name.startswith("_") and name not in RESERVED \
            and not _GENERATED.match(name) else None
        ident = base or f"v{len(self._idents)}"
        while ident in self._idents.values() or ident in RESERVED or _GENERATED.match(ident):
            ident = f"v{len(self._idents)}_{ident}"
        self._idents[name] = ident
        return ident

    def _key(self):
        parts = [f"in {i.ident}:{i.dtype}" for i in self.inputs]
        parts += [f"{s.ident}:{s.dtype} = {render_python(s.tree)}  # {s.op}" for s in self.steps]
        parts += [f"out {o.ident}" for o in self.outputs]
        if self.reduce is not None:
            parts.append(f"{self.reduce.kind} keepdims={self.reduce.keepdims}")
        return hashlib.sha1("\n".join(parts).encode()).hexdigest()

    @property
    def ops(self):
        return [s.op for s in self.steps]

    def expressions(self):
        """One expression per output, every step inlined: ``{output name: expression}``."""
        inlined = {}
        for s in self.steps:
            inlined[s.ident] = "(" + render_python(s.tree, lambda ident: inlined.get(ident, ident)) + ")"
        return {o.name: _strip_parens(inlined.get(o.ident, o.ident)) for o in self.outputs}

    def __repr__(self):
        red = "" if self.reduce is None else f", {self.reduce}"
        return (f"<FusedKernel {self.name}: {', '.join(self.ops) or 'copy'} -> "
                f"{', '.join(o.name for o in self.outputs)}{red}>")


def _strip_parens(text):
    if text.startswith("(") and text.endswith(")"):
        depth = 0
        for k, ch in enumerate(text):
            depth += (ch == "(") - (ch == ")")
            if depth == 0 and k < len(text) - 1:
                return text
        return text[1:-1]
    return text


def _check_dtype(dtype, what):
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise FusionError(f"{what} has dtype {dtype}; fused kernels support bool, integers, "
                          f"float32 and float64")
    return dtype


def _forward_dtype(op, args, attrs, opname):
    """The op's result dtype from its NumPy ``forward`` on 0-d arrays (the default ``infer``)."""
    probes = [a.value if a.dtype is None else np.ones((), a.dtype) for a in args]
    try:
        with np.errstate(all="ignore"):
            return np.asarray(op.forward(np, *probes, **attrs)).dtype
    except Exception as e:
        raise FusionError(f"{opname}: cannot apply to "
                          f"{', '.join(str(a.dtype or a.value) for a in args)} ({e})") from None


# ---------------------------------------------------------------- rendering as Python (Numba)

def py_literal(value, dtype):
    """A literal the generated Python/Numba code reads as exactly this dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return "True" if value else "False"
    if dtype.kind == "f":
        v = float(value)
        text = "inf" if v == math.inf else "-inf" if v == -math.inf else "nan" if v != v \
            else (str(np.float32(v)) if dtype == np.float32 else repr(v))
        return text if dtype == np.float64 else f"{dtype.name}({text})"
    text = str(int(value))
    if dtype == np.int64:
        return text if int(value) >= 0 else f"({text})"
    return f"{dtype.name}({text})"


_PY_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "eq": "==", "ne": "!=", "lt": "<",
             "le": "<=", "gt": ">", "ge": ">="}
_PY_CALL = {"exp": "np.exp", "log": "np.log", "sqrt": "np.sqrt", "abs": "np.abs", "sin": "np.sin",
            "cos": "np.cos", "tanh": "np.tanh", "max": "np.maximum", "min": "np.minimum",
            "pow": "np.power"}


def render_python(node, ref=lambda ident: ident):
    """The tree as one Python expression for a Numba loop over scalars."""
    def r(n, top=False):
        if isinstance(n, Ref):
            return ref(n.ident)
        if isinstance(n, Const):
            return py_literal(n.value, n.dtype)
        if isinstance(n, Cast):
            inner = r(n.arg, top=True)
            return f"({inner} != 0)" if n.dtype.kind == "b" else f"{n.dtype.name}({inner})"
        fn, a = n.fn, n.args
        if fn in _PY_INFIX:
            text = f"{r(a[0])} {_PY_INFIX[fn]} {r(a[1])}"
            text = text if top else f"({text})"
        elif fn == "neg":
            text = f"-{r(a[0])}"
        elif fn == "where":
            text = f"({r(a[1])} if {r(a[0], True)} else {r(a[2])})"
        elif fn == "logical_not":
            text = f"(not {r(a[0])})"
        elif fn in ("logical_and", "logical_or"):
            text = f"({r(a[0])} {fn[8:]} {r(a[1])})"
        else:
            text = f"{_PY_CALL[fn]}({', '.join(r(x, True) for x in a)})"
        if fn in WIDENING and needs_wrap(n.dtype):
            # Numba computes small integers in int64 (and bool + bool as an int): wrap back
            text = f"({text} != 0)" if n.dtype.kind == "b" else f"{n.dtype.name}({text})"
        return text

    return r(node, top=True)


WIDENING = {"add", "sub", "mul", "neg", "pow"}   # ops whose small-integer results C/Numba widen


def needs_wrap(dtype):
    """Integer/bool results the target language would widen: cast them back (NumPy wraps)."""
    return dtype.kind in "biu" and dtype != np.int64
