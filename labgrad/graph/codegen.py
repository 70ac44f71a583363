"""From a ``Graph`` to Python source, compiled once, wrapped in an ``Executable``.

Each node becomes one statement that calls the backend's array module directly::

    def graph(a, b):
        v2 = xp.add(a, b)            # example.py:5
        v3 = xp.add(v2, 1)           # example.py:6
        del v2
        return v3

When an op's ``forward`` is a single ``return`` expression, that expression is inlined with
the node's inputs and attributes substituted (so ``add`` reads ``xp.add(a, b)``); other ops are
called through their ``forward`` function. Intermediates are deleted after their last use, so
memory is freed as early as in eager code. Variables are read at the start; ``assign`` writes
happen at the end of a run.

Errors while running are mapped back from the failing line of the generated code to its node,
and so to the user's line that defined it. The happy path has no per-node ``try``.
"""
from __future__ import annotations

import ast
import builtins
import copy
import functools
import inspect
import itertools
import keyword
import linecache
import math
import re
import textwrap
import weakref

import numpy as np

from ..backends import CPU, get_backend
from ..errors import DeviceError, DTypeError, LabgradError, ShapeError, format_location
from ..autograd import store_grad
from ..ops.registry import Aval, fmt_shape
from ..tensor import Tensor
from .ir import Graph, Node, _fmt_aval

_program_ids = itertools.count()


# ---------------------------------------------------------------- inlining an op's forward

@functools.lru_cache(maxsize=None)
def _template(forward):
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


def _is_literal(v):
    if v is None or isinstance(v, (bool, int, str)):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, slice):
        return all(_is_literal(p) for p in (v.start, v.stop, v.step))
    if v is Ellipsis:
        return True
    if isinstance(v, tuple):
        return all(_is_literal(x) for x in v)
    return False


# ---------------------------------------------------------------- the program text

_LOCAL = re.compile(r"[va]\d+")   # the generated code's local names

class _Program:
    """Source lines being written, the names they refer to, and which node each line runs."""

    def __init__(self):
        self.functions = []          # finished function sources (lists of lines)
        self.namespace = {"Tensor": Tensor}
        self.line_nodes = {}         # (function index, line in function) -> (graph, node, input exprs)
        self._taken = set(self.namespace) | set(dir(builtins))
        self._bound = {}             # id(value) -> name

    def bind(self, base, value):
        """A global name for ``value`` in the generated module (reused for the same object)."""
        key = id(value)
        if key in self._bound and self.namespace[self._bound[key]] is value:
            return self._bound[key]
        name = self.reserve(base)
        self.namespace[name] = value
        self._bound[key] = name
        return name

    def reserve(self, base):
        """A fresh name: not a builtin, keyword, or the local names ``v3``/``a0`` of the code."""
        name, k = _identifier(base), 1
        candidate = name
        while candidate in self._taken or keyword.iskeyword(candidate) or _LOCAL.fullmatch(candidate):
            candidate = f"{name}_{k}"
            k += 1
        self._taken.add(candidate)
        return candidate

    def literal(self, base, value):
        """Source text for an attribute value: a literal where possible, else a bound name."""
        if _is_literal(value):
            return repr(value)
        if isinstance(value, np.dtype):
            return self.bind(value.name, value)
        return self.bind(base, value)


def _identifier(text):
    name = re.sub(r"\W", "_", str(text))
    if not name or name[0].isdigit():
        name = "_" + name
    return name


class _FunctionWriter:
    """Writes one Python function for one graph (the main graph or a cond/while branch)."""

    def __init__(self, program, graph, fname, home_device, returns="tuple"):
        self.p = program
        self.graph = graph
        self.fname = fname
        self.home = home_device
        self.returns = returns
        self.names = {}              # node id -> expression (a local name, global name or literal)
        self.statements = []         # (lines, node or None, names used, name defined)
        self.args = {}               # node id -> its input expressions, for error messages
        self.numbers = graph._numbers()

    # ---- names
    def xp(self, device):
        if device == self.home:
            return self.p.bind("xp", get_backend(device).xp)
        return self.p.bind(f"xp_{device.type}{device.index if device.index is not None else ''}",
                           get_backend(device).xp)

    def ref(self, x):
        return self.names[x.id] if isinstance(x, Node) else repr(x) if _is_literal(x) else self.p.bind("k", x)

    def local(self, node):
        return f"v{self.numbers[node.id]}"

    # ---- statements
    def add(self, lines, node, uses, defines):
        self.statements.append((lines if isinstance(lines, list) else [lines], node, uses, defines))

    def write(self):
        g = self.graph
        params = []
        for n in g.inputs:
            name = self.p.reserve(n.name or f"in{self.numbers[n.id]}") if self.returns == "main" else f"a{self.numbers[n.id]}"
            self.names[n.id] = name
            params.append(name)
        used_as_value = _value_uses(g)
        for node in g.nodes:
            if node.id in self.names:
                continue
            self.node(node, used_as_value)
        writes = self.writes() if self.returns == "main" else []
        outs = [self.ref(o) for o in g.outputs]
        if self.returns == "single":
            ret = f"return {outs[0]}"
        elif self.returns == "tuple":
            ret = "return (" + ", ".join(outs) + ("," if len(outs) == 1 else "") + ")"
        else:
            ret = "return " + (outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ")") if outs else "return None"
        for w in writes:
            self.add(w[0], None, w[1], None)
        self.add(ret, None, set(o for o in outs), None)
        return self.render(params)

    def node(self, node, used_as_value):
        kind = node.kind
        if kind == "constant":
            self.names[node.id] = self.p.bind(f"c{self.numbers[node.id]}", node.value)
        elif kind == "variable":
            owner = self.p.bind(node.name or "var", node.value) if not node.attrs.get("weak") else None
            if node.id in used_as_value:
                if owner is None:
                    raise LabgradError("internal: a weak variable is only ever written")
                name = self.local(node)
                field = ".grad.data" if node.attrs.get("slot") == "grad" else ".data"
                self.add(f"{name} = {owner}{field}", node, set(), name)
                self.names[node.id] = name
            else:
                self.names[node.id] = owner or "None"
        elif kind in ("assign", "stop_gradient"):
            self.names[node.id] = self.ref(node.inputs[-1] if kind == "assign" else node.inputs[0])
        elif kind == "get":
            name = self.local(node)
            src = self.ref(node.inputs[0])
            self.add(f"{name} = {src}[{node.attrs['index']}]", node, {src}, name)
            self.names[node.id] = name
        elif kind == "cond":
            self.cond(node)
        elif kind == "while":
            self.while_(node)
        elif kind == "op":
            self.op(node)
        else:
            raise LabgradError(f"internal: cannot generate code for a {kind} node here")

    def op(self, node):
        op = node.op
        args = [self.ref(x) for x in node.inputs]
        in_device = next((x.device for x in node.inputs if isinstance(x, Node)), node.device)
        xp = self.xp(in_device)
        expr = _inline(op, xp, args, node.attrs, self.p)
        if expr is None:
            fn = self.p.bind(f"{op.name}_forward", op.forward)
            parts = [xp] + args + [f"{k}={self.p.literal(k, v)}" for k, v in node.attrs.items()]
            expr = f"{fn}({', '.join(parts)})"
        name = self.local(node)
        self.names[node.id] = name
        self.args[node.id] = args
        self.add(f"{name} = {expr}", node, set(args), name)

    def _sub(self, graph, label, returns):
        fname = self.p.reserve(f"{self.fname}_{label}")
        _FunctionWriter(self.p, graph, fname, self.home, returns).write()
        return fname

    def cond(self, node):
        pred, *rest = [self.ref(x) for x in node.inputs]
        t = self._sub(node.subgraphs["true"], f"cond{self.numbers[node.id]}_true", "tuple")
        f = self._sub(node.subgraphs["false"], f"cond{self.numbers[node.id]}_false", "tuple")
        args = ", ".join(rest)
        name = self.local(node)
        self.names[node.id] = name
        self.add(f"{name} = {t}({args}) if {pred} else {f}({args})", node, {pred, *rest}, name)

    def while_(self, node):
        n_loop = node.attrs["n_loop"]
        refs = [self.ref(x) for x in node.inputs]
        loop, caps = refs[:n_loop], refs[n_loop:]
        c = self._sub(node.subgraphs["cond"], f"while{self.numbers[node.id]}_cond", "single")
        b = self._sub(node.subgraphs["body"], f"while{self.numbers[node.id]}_body", "tuple")
        name = self.local(node)
        self.names[node.id] = name
        extra = "".join(", " + x for x in caps)
        start = f"{name} = (" + ", ".join(loop) + ("," if len(loop) == 1 else "") + ")"
        limit = node.attrs.get("max_iterations")
        if limit is None:
            lines = [start, f"while {c}(*{name}{extra}):", f"    {name} = {b}(*{name}{extra})"]
        else:
            lines = [start, f"for _ in range({int(limit)}):",
                     f"    if not {c}(*{name}{extra}):", "        break",
                     f"    {name} = {b}(*{name}{extra})"]
        self.add(lines, node, set(refs), name)

    def writes(self):
        """The end-of-run updates: for each variable, the value of its last assign.

        Every value is computed before the first write, so every read saw the state from the
        start of the run. A value that may share memory with a variable written in this run
        (a view of it) is copied first.
        """
        last = {}
        for n in self.graph.nodes:
            if n.op == "assign":
                last[n.target.id] = n
        written = {a.target.id for a in last.values() if a.target.attrs.get("slot") != "grad"}
        stored_set = []   # the arrays given to leaves' .grad in this run (see store_grad)
        copies, out, stamped = [], [], []
        for assign in last.values():
            var, value = assign.target, assign.inputs[1]
            val = self.ref(value)
            if isinstance(value, Node) and _may_alias(value, written - {var.id}) and val not in copies:
                copies.append(val)
            if var.attrs.get("slot") == "grad":
                owner = self.p.bind(var.name or "var", var.value)
                store = self.p.bind("store_grad", store_grad)
                wrap = self.p.bind("as_grad", _as_grad)
                if value is None:
                    out.append((f"{owner}.grad = None", set()))
                else:
                    if not stored_set:
                        stored_set.append(("stored = set()", set()))
                    out.append((f"{store}({owner}, {wrap}({val}, {owner}), stored)", {val}))
            elif var.attrs.get("weak"):
                ref = self.p.bind(f"{var.name or 'fresh'}_ref", var.value)
                out.append((f"{self.p.bind('write_weak', _write_weak)}({ref}, {val})", {val}))
            else:
                owner = self.p.bind(var.name or "var", var.value)
                out.append((f"{owner}.data[...] = {val}", {val}))
                stamped.append(owner)
        out.extend((f"{o}._mark_modified()", set()) for o in stamped)
        return [(f"{v} = {v}.copy()", {v}) for v in copies] + stored_set + out

    def render(self, params):
        # the last use of each local name: intermediates are deleted as soon as they are dead
        local = {s[3] for s in self.statements if s[3]}   # feeds belong to the caller: not deleted
        last_use = {}
        for i, (_, _, uses, _) in enumerate(self.statements):
            for u in uses:
                if u in local:
                    last_use[u] = i
        keep = set(self.statements[-1][2]) if self.statements else set()
        body = []   # (text, node that the line runs or None)
        for i, (stmt_lines, node, _, defines) in enumerate(self.statements):
            for k, text in enumerate(stmt_lines):
                body.append((text, node, k == 0))
            dead = [u for u, j in last_use.items() if j == i and u not in keep]
            if defines and defines not in last_use and defines not in keep:
                dead.append(defines)
            if dead and node is not None:
                body.append(("del " + ", ".join(sorted(dead, key=_natural)), None, False))
        width = min(max((len(t) for t, n, first in body if first and n is not None and n.location), default=0), 56)
        lines = [f"def {self.fname}({', '.join(params)}):"]
        index = len(self.p.functions)
        for text, node, first in body:
            if first and node is not None and node.location:
                text = f"{text.ljust(width)}  # {node.source_location}"
            lines.append("    " + text)
            if node is not None:
                self.p.line_nodes[(index, len(lines))] = (self.graph, node, self.args.get(node.id, ()))
        self.p.functions.append(lines)
        return self.fname


def _natural(name):
    return (len(name), name)


def _value_uses(graph):
    """Ids of nodes whose value is needed (not merely named as an assign's target)."""
    used = {o.id for o in graph.outputs if isinstance(o, Node)}
    for n in graph.nodes:
        for i, x in enumerate(n.inputs):
            if isinstance(x, Node) and not (n.op == "assign" and i == 0):
                used.add(x.id)
    return used


def _may_alias(value, variables):
    """Could ``value`` share memory with one of ``variables`` (node ids)? Ops declared
    ``view=True`` (reshape, transpose, slicing, cast) may return views: follow them back."""
    seen, stack = set(), [value]
    while stack:
        n = stack.pop()
        if not isinstance(n, Node) or n.id in seen:
            continue
        seen.add(n.id)
        if n.op == "variable" and n.id in variables:
            return True
        view = n.kind == "op" and n.op.view
        if view or n.op in ("assign", "stop_gradient"):
            stack.extend(n.inputs)
    return False


def _as_grad(array, owner):
    """A gradient array computed by the graph, as a tensor on ``owner``'s device."""
    return Tensor._wrap(array, owner._backend)


def _write_weak(ref, array):
    t = ref()
    if t is not None:
        t.data[...] = array
        t._mark_modified()


def _inline(op, xp, args, attrs, program):
    t = _template(op.forward)
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


# ---------------------------------------------------------------- the Executable

class _Feed:
    """What one placeholder accepts; ``quick`` passes the common case without a detour."""

    __slots__ = ("name", "node", "shape", "dtype", "backend", "position", "on_cpu", "exact")

    def __init__(self, node, position):
        self.node = node
        self.name = node.name
        self.shape = node.aval.shape
        self.dtype = node.aval.dtype
        self.backend = get_backend(node.device)
        self.position = position
        self.on_cpu = self.backend.device.type == "cpu"
        self.exact = None not in self.shape

    def quick(self, value):
        """The array to feed when ``value`` already fits exactly, else None."""
        cls = value.__class__
        if cls is np.ndarray and self.on_cpu:
            array = value
        elif cls is Tensor and value._backend is self.backend:
            array = value.data
        else:
            return None
        if array.dtype == self.dtype and self.exact and array.shape == self.shape:
            return array
        return None


_MISSING = object()


class Executable:
    """A compiled graph: call it with feeds, by position or by placeholder name.

    ``graph`` is the IR it was made from, ``code`` the Python source it runs, ``reports`` the
    passes applied (none yet). Results come back as Tensors (a tuple if several outputs).
    """

    def __init__(self, graph: Graph, single=True):
        self.graph = graph
        self.single = single
        self.reports = []
        self._build()

    def _build(self):
        graph = self.graph
        program = _Program()
        home = graph.outputs[0].device if graph.outputs else (graph.nodes[0].device if graph.nodes else CPU.device)
        fname = program.reserve(_identifier(graph.name))
        _FunctionWriter(program, graph, fname, home, returns="main").write()
        self._filename = f"<labgrad {graph.name} #{next(_program_ids)}>"
        source_lines, line_map = [], {}
        for index, lines in enumerate(program.functions):
            offset = len(source_lines)
            for (fi, line), value in program.line_nodes.items():
                if fi == index:
                    line_map[offset + line] = value
            source_lines.extend(lines + [""])
        self._line_map = line_map
        self.code = "\n".join(source_lines).rstrip() + "\n"
        code = compile(self.code, self._filename, "exec")  # noqa: S102 - our own generated source
        linecache.cache[self._filename] = (len(self.code), None, self.code.splitlines(True), self._filename)
        namespace = dict(program.namespace)
        exec(code, namespace)  # noqa: S102
        self._fn = namespace[fname]
        self._feeds = [_Feed(n, i) for i, n in enumerate(graph.inputs)]
        self._by_name = {f.name: f for f in self._feeds if f.name}
        self._out_backends = [get_backend(o.device) for o in graph.outputs]
        weakref.finalize(self, linecache.cache.pop, self._filename, None)

    # ---- feeding
    @property
    def input_names(self):
        return [f.name for f in self._feeds]

    def _signature_text(self):
        return ", ".join(f"{f.name or f'input {f.position}'}: {_fmt_aval(f.node.aval)}" for f in self._feeds)

    def _arrays(self, args, feeds):
        n = len(self._feeds)
        if not feeds and len(args) == n:
            arrays = []
            for f, v in zip(self._feeds, args):
                a = f.quick(v)
                if a is None:
                    break
                arrays.append(a)
            else:
                return arrays
        if len(args) > n:
            raise TypeError(f"this executable takes {n} input(s) ({self._signature_text()}), "
                            f"but {len(args)} were given by position")
        values = list(args) + [_MISSING] * (n - len(args))
        for key, value in feeds.items():
            feed = self._by_name.get(key)
            if feed is None:
                raise TypeError(f"no placeholder named {key!r}; the inputs are: {self._signature_text()}")
            if values[feed.position] is not _MISSING:
                raise TypeError(f"input {key!r} was given twice (by position and by name)")
            values[feed.position] = value
        missing = [f for f, v in zip(self._feeds, values) if v is _MISSING]
        if missing:
            raise TypeError("missing input(s): " + ", ".join(
                f"{f.name or f'input {f.position}'} ({_fmt_aval(f.node.aval)}){format_location(f.node.location)}"
                for f in missing) + "\n  Pass them by position or by name, e.g. f(x=batch).")
        return [self._convert(f, v) for f, v in zip(self._feeds, values)]

    def _convert(self, feed, value):
        label = feed.name or f"input {feed.position}"
        if value.__class__ is Tensor:
            if value._backend is not feed.backend:
                raise DeviceError(f"input {label!r} is on {value.device}, but its placeholder is on "
                                  f"{feed.backend.device}.\n  Move it first (x.to('{feed.backend.device}')), "
                                  f"or declare the placeholder on {value.device} and add an explicit "
                                  f".to(...) transfer node in the graph.")
            array = value.data
        elif isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
            on_cpu = isinstance(value, np.ndarray)
            if on_cpu != (feed.backend.device.type == "cpu"):
                where = "host (NumPy)" if on_cpu else "GPU"
                raise DeviceError(f"input {label!r} is a {where} array, but its placeholder is on "
                                  f"{feed.backend.device}.\n  Declare the placeholder on the device "
                                  f"the data lives on and move it inside the graph with .to(...), "
                                  f"or move the data first.")
            array = value
        else:
            try:
                array = np.asarray(value)
            except Exception:
                raise TypeError(f"input {label!r}: cannot use a {type(value).__name__} as data") from None
            if array.dtype == object:
                raise TypeError(f"input {label!r}: cannot use a {type(value).__name__} as data")
            array = feed.backend.asarray(array)
        if array.dtype != feed.dtype:
            if not np.can_cast(array.dtype, feed.dtype, casting="same_kind"):
                raise DTypeError(f"input {label!r} has dtype {array.dtype}, but its placeholder has "
                                 f"dtype {feed.dtype}, and {array.dtype} -> {feed.dtype} would lose "
                                 f"information.\n  Convert it explicitly (x.astype('{feed.dtype}')) "
                                 f"or declare the placeholder with dtype='{array.dtype}'.")
            array = array.astype(feed.dtype)
        shape = array.shape
        want = feed.shape
        if len(shape) != len(want) or any(w is not None and w != s for w, s in zip(want, shape)):
            raise ShapeError(f"input {label!r} has shape {fmt_shape(shape)}, but its placeholder "
                             f"expects {fmt_shape(want)} (? = any size)"
                             f"{format_location(feed.node.location)}")
        return array

    # ---- running
    def __call__(self, *args, **feeds):
        arrays = self._arrays(args, feeds)
        try:
            out = self._fn(*arrays)
        except Exception as e:
            raise self._explain(e) from e
        return self._wrap(out)

    def run(self, feeds=None):
        """``run({"x": batch})`` or ``run({x_symbol: batch})``: feeds as a dict."""
        named = {}
        for k, v in (feeds or {}).items():
            named[k.node.name if hasattr(k, "node") else k] = v
            if hasattr(k, "node") and not k.node.name:
                raise TypeError("run(): feed unnamed placeholders by position with f(...) instead")
        return self(**named)

    def call_arrays(self, arrays):
        """Run on already-checked backend arrays; returns what the generated function returns."""
        try:
            return self._fn(*arrays)
        except Exception as e:
            raise self._explain(e) from e

    def _wrap(self, out):
        backends = self._out_backends
        if len(backends) == 1:
            t = Tensor._wrap(out, backends[0])
            return t if self.single else (t,)
        if not backends:
            return None
        return tuple([Tensor._wrap(a, b) for a, b in zip(out, backends)])

    def _explain(self, error):
        """The node (and user line) behind an exception raised inside the generated code."""
        tb, last = error.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self._filename:
                last = tb
            tb = tb.tb_next
        hit = self._line_map.get(last.tb_lineno) if last is not None else None
        if hit is None:
            return error
        graph, node, args = hit
        scope = dict(last.tb_frame.f_globals)
        scope.update(last.tb_frame.f_locals)
        avals = []
        for x, expr in zip(node.inputs, args):
            value = scope.get(expr) if isinstance(x, Node) else x
            avals.append(Aval(value.shape, value.dtype) if hasattr(value, "dtype") and hasattr(value, "shape") else x)
        explanation = f"{type(error).__name__}: {error}"
        cls = type(error) if isinstance(error, LabgradError) else (
            ShapeError if isinstance(error, (ValueError, IndexError)) else
            DTypeError if isinstance(error, TypeError) else LabgradError)
        if node.kind == "op":
            try:
                node.op.infer(*avals, **node.attrs)
            except (ShapeError, DTypeError) as e:
                cls, explanation = type(e), str(e)
            except Exception:
                pass
        described = ", ".join(_fmt_aval(a) if isinstance(a, Aval) else repr(a) for a in avals)
        where = "" if graph is self.graph else f" of subgraph {graph.name}"
        return cls(f"{node.op_name} failed while running the compiled graph, at node "
                   f"%{graph.index(node)}{where} ({node.op_name} -> {_fmt_aval(node.aval)}), "
                   f"defined{format_location(node.location)}\n"
                   f"  its inputs at run time: {described or 'none'}\n  {explanation}")

    def __repr__(self):
        return (f"<Executable {self.graph.name}({self._signature_text()}) -> "
                f"{len(self.graph.outputs)} output(s), {len(self.graph.nodes)} nodes>")

