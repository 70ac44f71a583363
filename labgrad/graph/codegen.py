"""From a ``Graph`` to Python source: one statement per node.

Each node becomes one statement that calls the backend's array module directly::

    def graph(a, b):
        v2 = xp.add(a, b)            # example.py:5
        v3 = xp.add(v2, 1)           # example.py:6
        del v2
        return v3

When an op's ``forward`` is a single ``return`` expression, that expression is inlined with
the node's inputs and attributes substituted (``inline.py``: ``add`` reads ``xp.add(a, b)``);
other ops are called through their ``forward`` function. Intermediates are deleted after their last use, so
memory is freed as early as in eager code. Variables are read at the start; ``assign`` writes
happen at the end of a run.

``generate`` returns the source and a map from its lines to nodes; ``executable.py`` compiles
it and uses the map to explain errors.
"""
from __future__ import annotations

import bisect
import builtins
import keyword
import re
import sys

import numpy as np

from ..backends import get_backend, kernels_cpu
from ..autograd import store_grad
from ..context import context
from ..errors import LabgradError
from ..tensor import Tensor
from ..backends.fusion import FusedKernel, FusionError
from ..ops.fused_kernel import compiled_kernel
from ..ops.registry import get_op
from ..ops.shape import sum_to_axes
from .inline import inline_forward, is_literal
from .passes.memory import liveness, may_alias, product_fits
from ..profiler.profile import NodeInfo
from .ir import Node, graph_cost, node_cost

__all__ = ["generate"]

_LOCAL = re.compile(r"[va]\d+")   # the generated code's local names

class _Program:
    """Source lines being written, the names they refer to, and which node each line runs."""

    def __init__(self, profile=False):
        self.profile = profile       # write the profiled version (see ``generate``)
        self.node_info = {}          # node id -> NodeInfo, for the profiled version
        self.graph_info = None
        self.functions = []          # finished function sources (lists of lines)
        self.namespace = {"Tensor": Tensor}
        self.line_nodes = {}         # (function index, line in function) -> (graph, node, input exprs)
        self._taken = set(self.namespace) | set(dir(builtins))
        self._bound = {}             # id(value), or ("ones", n, dtype) -> name
        self.kernels = {}            # fused kernel name -> its source (what a student reads)

    def bind(self, base, value):
        """A global name for ``value`` in the generated module (reused for the same object)."""
        key = id(value)
        if key in self._bound and self.namespace[self._bound[key]] is value:
            return self._bound[key]
        name = self.reserve(base)
        self.namespace[name] = value
        self._bound[key] = name
        return name

    def ones(self, n, dtype):
        """The name of a vector of ``n`` ones of ``dtype``, one per length and dtype."""
        key = ("ones", n, np.dtype(dtype).str)
        if key not in self._bound:
            self._bound[key] = self.bind(f"ones{n}", np.ones(n, dtype))
        return self._bound[key]

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
        if is_literal(value):
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
        self.recycled = []           # (output node, slot name): results kept for the next call

    # ---- names
    def xp(self, device):
        if device == self.home:
            return self.p.bind("xp", get_backend(device).xp)
        return self.p.bind(f"xp_{device.type}{device.index if device.index is not None else ''}",
                           get_backend(device).xp)

    def ref(self, x):
        return self.names[x.id] if isinstance(x, Node) else repr(x) if is_literal(x) else self.p.bind("k", x)

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
        for node, slot in self.recycled:
            self.add(f"{slot}[0] = {self.names[node.id]}", None, {self.names[node.id]}, None)
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
        elif kind == "fused":
            self.fused(node)
        else:
            raise LabgradError(f"internal: cannot generate code for a {kind} node here")

    def buffer(self, node):
        """The name of the planned buffer ``node`` writes into (``out=``), or None."""
        plan = getattr(self.graph, "memory_plan", None)
        if plan is not None and node.id in plan.recycle:     # last call's result, if dropped
            slot = self.p.reserve(f"_last{self.numbers[node.id]}")
            self.p.namespace[slot] = [None]
            self.recycled.append((node, slot))
            return f"{self.p.bind('reuse', _reuse)}({slot})"
        if plan is not None and node.id in plan.into_variable:   # a state update, in place
            var = plan.into_variable[node.id]
            return f"{self.p.bind(var.name or 'var', var.value)}.data"
        if plan is None or node.id not in plan.out:
            return None
        b = plan.out[node.id]
        base = f"_buf{b}"
        if base not in self.p.namespace:
            (size,), dtype, device = plan.buffers[b]
            self.p.namespace[base] = get_backend(device).xp.empty(size, dtype)
            self.p._taken.add(base)
        shape = tuple(node.aval.shape)
        shapes = {tuple(self.graph.nodes[i].aval.shape) for i, c in plan.out.items() if c == b}
        name = f"buf{b}" if len(shapes) == 1 else f"buf{b}_" + "x".join(map(str, shape))
        if name not in self.p.namespace:   # a view of the buffer's first elements, made once
            n = int(np.prod(shape, dtype=np.int64))
            self.p.namespace[name] = self.p.namespace[base][:n].reshape(shape)
            self.p._taken.add(name)
        return name

    def bias_relu(self, node):
        """A fused kernel ``relu(y + b)`` for a ``linear`` node's epilogue (CPU, static shapes),
        or None."""
        y, b = node.aval, node.inputs[2].aval
        if node.device.type != "cpu" or None in y.shape or None in b.shape or not kernels_cpu.available():
            return None
        try:
            kernel = FusedKernel([("y", y.dtype, y.shape), ("b", b.dtype, b.shape)],
                                 [("t0", get_op("add"), ("y", "b"), {}, y.dtype),
                                  ("t1", get_op("relu"), ("t0",), {}, y.dtype)], ["t1"])
        except FusionError:
            return None
        kernel.name = f"fused_{kernel.key[:6]}"
        compiled = compiled_kernel(get_backend(node.device), kernel).bind([y.shape, b.shape])
        name = self.p.bind(kernel.name, compiled)
        self.p.kernels[kernel.name] = compiled.source
        return name

    def op(self, node):
        op = node.op
        args = [self.ref(x) for x in node.inputs]
        in_device = next((x.device for x in node.inputs if isinstance(x, Node)), node.device)
        xp = self.xp(in_device)
        buf = self.buffer(node)
        name = self.local(node)
        self.names[node.id] = name
        self.args[node.id] = args
        out = "" if buf is None else f", out={buf}"
        if op.name == "linear":
            # the product (into its buffer, if planned), then bias and relu in place (one
            # loop when Numba is here)
            lines = [f"{name} = {xp}.matmul({args[0]}, {args[1]}{out})"]
            bias_relu = self.bias_relu(node) if node.attrs["relu"] else None
            if bias_relu is not None:
                lines.append(f"{bias_relu}({name}, {args[2]}, out={name})")
            else:
                lines.append(f"{xp}.add({name}, {args[2]}, out={name})")
                if node.attrs["relu"]:
                    lines.append(f"{xp}.maximum({name}, 0, out={name})")
            self.add(lines, node, set(args), name)
        elif op.name == "fma" and (buf is not None or product_fits(node)):
            # the product (into its buffer, if planned), then the add in place: no temporary
            self.add([f"{name} = {xp}.multiply({args[0]}, {args[1]}{out})",
                      f"{xp}.add({name}, {args[2]}, out={name})"], node, set(args), name)
        elif buf is not None:
            ufunc = "matmul" if op.name == "matmul" else "maximum" if op.name == "relu" else op.ufunc
            extra = ", 0" if op.name == "relu" else ""
            self.add(f"{name} = {xp}.{ufunc}({', '.join(args)}{extra}{out})", node, set(args), name)
        else:
            expr = _specialized(node, xp, args, self.p)
            if expr is None:
                expr = inline_forward(op, xp, args, node.attrs, self.p)
            if expr is None:
                fn = self.p.bind(f"{op.name}_forward", op.forward)
                parts = [xp] + args + [f"{k}={self.p.literal(k, v)}" for k, v in node.attrs.items()]
                expr = f"{fn}({', '.join(parts)})"
            self.add(f"{name} = {expr}", node, set(args), name)

    def fused(self, node):
        """One call to the kernel the backend compiled for the group: ``v7 = fused_3f2a1c(v1, v2)``."""
        attr = node.attrs["kernel"]
        compiled = compiled_kernel(get_backend(node.device), attr.kernel)
        shapes = [x.aval.shape for x in node.inputs]
        if hasattr(compiled, "bind") and all(None not in s for s in shapes):
            compiled = compiled.bind(shapes)     # plan made once: a call checks and runs
        fn = self.p.bind(attr.name, compiled)
        src = getattr(compiled, "source", None)
        self.p.kernels[attr.name] = src if src is not None else repr(compiled)
        args = [self.ref(x) for x in node.inputs]
        name = self.local(node)
        self.names[node.id] = name
        self.args[node.id] = args
        buf = self.buffer(node)
        out = f", out={buf}" if buf is not None else ""
        self.add(f"{name} = {fn}({', '.join(args)}{out})", node, set(args), name)

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
            if n.kind == "assign":
                last[n.target.id] = n
        written = {a.target.id for a in last.values() if a.target.attrs.get("slot") != "grad"}
        plan = getattr(self.graph, "memory_plan", None)
        direct = {v.id for v in plan.into_variable.values()} if plan is not None else set()
        copies, out, stamped, stored_set = [], [], [], []
        for assign in last.values():
            var, value = assign.target, assign.inputs[1]
            val = self.ref(value)
            if isinstance(value, Node) and _may_alias(value, written - {var.id}) and val not in copies:
                copies.append(val)
            if var.attrs.get("slot") == "grad":
                owner = self.p.bind(var.name or "var", var.value)
                if value is None:
                    out.append((f"{owner}.grad = None", set()))
                else:   # stored as eager backward stores it (views and shared arrays copied)
                    store = self.p.bind("store_grad", _store_grad_array)
                    if not stored_set:
                        stored_set.append(("stored = set()", set()))
                    out.append((f"{store}({owner}, {val}, stored)", {val}))
            elif var.attrs.get("weak"):
                ref = self.p.bind(f"{var.name or 'new'}_ref", var.value)
                out.append((f"{self.p.bind('write_weak', _write_weak)}({ref}, {val})", {val}))
            else:
                owner = self.p.bind(var.name or "var", var.value)
                if var.id not in direct:    # (else the update wrote its array already)
                    out.append((f"{owner}.data[...] = {val}", {val}))
                stamped.append(owner)
        out.extend((f"{o}._mark_modified()", set()) for o in stamped)
        return [(f"{v} = {v}.copy()", {v}) for v in copies] + stored_set + out

    def render(self, params):
        body = []   # (text, node that the line runs or None, first line of the node's statement)
        profiled = self.p.profile and self.returns == "main"
        if profiled:
            params = params + ["_prof"]
        dead_after = self.deaths()
        for i, (stmt_lines, node, _, defines) in enumerate(self.statements):
            timed = profiled and node is not None and node.id in self.p.node_info
            if timed:
                info = self.p.bind(f"n{self.numbers[node.id]}", self.p.node_info[node.id])
                body.append((f"_s = _prof.node_begin({info})", None, False))
            for k, text in enumerate(stmt_lines):
                body.append((text, node, k == 0))
            if timed:
                body.append((f"_prof.node_end(_s, {defines})", None, False))
            if dead_after.get(i):
                body.append(("del " + ", ".join(sorted(dead_after[i], key=_natural)), None, False))
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

    def deaths(self):
        """``{statement index: [local names to delete after it]}``, from the liveness the
        memory pass computed (``plan.last_use``; ``liveness`` when no plan was made): a name
        is deleted after the last node that reads any node it names (an ``assign`` or
        ``stop_gradient`` shares its input's name), so memory is freed as early as in eager
        code. Names the end-of-run writes and the return statement read are kept."""
        plan = getattr(self.graph, "memory_plan", None)
        last = plan.last_use if plan is not None else liveness(self.graph)
        end = len(self.graph.nodes)
        local = {s[3] for s in self.statements if s[3]}   # feeds belong to the caller
        death = {}
        for n in self.graph.nodes:
            name = self.names.get(n.id)
            if name in local:
                death[name] = max(death.get(name, -1), last.get(n.id, n.id))
        keep = set(self.statements[-1][2]) if self.statements else set()
        runs = [(node.id, i) for i, (_, node, _, _) in enumerate(self.statements) if node is not None]
        ids = [nid for nid, _ in runs]      # statements run nodes in the graph's order
        out = {}
        for name, d in death.items():
            j = bisect.bisect_right(ids, d) - 1
            if d < end and name not in keep and j >= 0:
                out.setdefault(runs[j][1], []).append(name)
        return out


def _specialized(node, xp, args, program):
    """A cheaper spelling of a few ops when the shapes are known when the code is written:
    ``sum_to`` as the plain sum it is (axes worked out now, not on every call; on the CPU the
    column sums of a float matrix as ``ones @ m``), a matrix
    transpose as ``.T``, softmax cross-entropy and its gradient as one Numba loop over the
    rows on the CPU (``backends/kernels_cpu.py``)."""
    name = node.op.name
    if (name in kernels_cpu.SUPPORTED and node.device.type == "cpu" and kernels_cpu.available()
            and all(isinstance(x, Node) for x in node.inputs)
            and kernels_cpu.fits([x.aval for x in node.inputs])):
        fn = program.bind(f"{name}_kernel", kernels_cpu.SUPPORTED[name])
        return f"{fn}({', '.join(args)})"
    src = node.inputs[0] if node.inputs else None
    if not isinstance(src, Node) or isinstance(src.aval, tuple):
        return None
    if name == "sum_to" and None not in src.aval.shape:
        lead, axes = sum_to_axes(src.aval.shape, node.attrs["shape"])
        if not axes:
            return None
        if len(axes) == lead:
            shape = src.aval.shape
            if (axes == (0,) and len(shape) == 2 and node.device.type == "cpu"
                    and src.aval.dtype in (np.float32, np.float64)):
                # the column sums of a matrix (a bias gradient) as a product with a vector of
                # ones: BLAS reads the matrix once at memory speed; NumPy's reduction over the
                # leading axis takes two to five times longer at these sizes
                ones = program.ones(shape[0], src.aval.dtype)
                return f"{ones} @ {args[0]}"
            return f"{xp}.sum({args[0]}, axis={axes!r})"
        return f"{xp}.sum({args[0]}, axis={axes!r}, keepdims=True).reshape({tuple(node.aval.shape)!r})"
    if name == "transpose" and tuple(node.attrs["axes"]) == (1, 0):
        return f"{args[0]}.T"
    return None


def _natural(name):
    return (len(name), name)


def _value_uses(graph):
    """Ids of nodes whose value is needed (not merely named as an assign's target)."""
    used = {o.id for o in graph.outputs if isinstance(o, Node)}
    for n in graph.nodes:
        for i, x in enumerate(n.inputs):
            if isinstance(x, Node) and not (n.kind == "assign" and i == 0):
                used.add(x.id)
    return used


_may_alias = may_alias   # (the alias analysis lives with memory planning)


def _reuse(slot):
    """The array the previous call returned, when nobody else holds it any more (so writing
    into it is safe), else None (the op makes a new one). Our references: the slot, this local
    and ``getrefcount``'s argument."""
    array = slot[0]
    if array is not None and sys.getrefcount(array) <= 3:
        return array
    return None


def _store_grad_array(leaf, array, stored):
    """``leaf.grad`` = a gradient array the graph computed, stored by ``autograd.store_grad``
    as eager backward stores it (the common case, a fresh array outside a trace, directly)."""
    if context.tracer is None and getattr(array, "base", None) is None and id(array) not in stored:
        stored.add(id(array))
        leaf._grad = Tensor._wrap(array, leaf._backend)
        return
    store_grad(leaf, Tensor._wrap(array, leaf._backend), stored)


def _write_weak(ref, array):
    t = ref()
    if t is not None:
        t.data[...] = array
        t._mark_modified()


def generate(graph, home_device, profile=False):
    """Python source for ``graph``: ``(source, namespace, function name, line map, kernels)``.

    The namespace holds the values the source refers to (array modules, constants, variables'
    tensors); the line map says which ``(graph, node, input expressions)`` each line runs, so
    that an error can be traced back to the node and the user's line. ``kernels`` maps the
    name of each fused kernel the code calls to its generated source.

    ``profile=True`` writes the profiled version of the same program: its function takes the
    running ``Profile`` as one more argument, and each top-level node (op, fused kernel, cond,
    while) is bracketed by ``_prof.node_begin(info)`` / ``_prof.node_end(span, result)``; the
    namespace's ``_graph_info`` describes the whole run, whose span the executable opens
    (``profiler/profile.py``).
    """
    program = _Program(profile)
    if profile:
        program.graph_info, program.node_info = _profile_infos(graph, home_device)
        program.namespace["_graph_info"] = program.graph_info    # (the executable opens its span)
        program._taken.add("_graph_info")
    fname = program.reserve(_identifier(graph.name))
    _FunctionWriter(program, graph, fname, home_device, returns="main").write()
    source_lines, line_map = [], {}
    for index, lines in enumerate(program.functions):
        offset = len(source_lines)
        for (fi, line), value in program.line_nodes.items():
            if fi == index:
                line_map[offset + line] = value
        source_lines.extend(lines + [""])
    source = "\n".join(source_lines).rstrip() + "\n"
    return source, dict(program.namespace), fname, line_map, dict(program.kernels)


def _profile_infos(graph, home_device):
    """The ``NodeInfo`` of the whole run and of each node the profiled version times."""
    infos = {}
    for n in graph.nodes:
        if n.kind not in ("op", "fused", "cond", "while"):
            continue
        cost = node_cost(n)
        name = repr(n.attrs["kernel"]) if n.kind == "fused" else n.op_name
        ins = [x for x in n.inputs if isinstance(x, Node) and not isinstance(x.aval, tuple)]
        args = {"node": f"%{n.id}", "graph": graph.name}
        if n.location:
            args["line"] = n.source_location
        infos[n.id] = NodeInfo(name, n.device, cost["flops"], cost["bytes"],
                               [tuple(x.aval.shape) for x in ins], [str(x.aval.dtype) for x in ins],
                               n.scope, args)
    total = graph_cost(graph)
    whole = NodeInfo(graph.name, home_device, total["flops"], total["bytes"],
                     args={"nodes": len(graph.nodes), "kernels": len(infos)})
    return whole, infos
