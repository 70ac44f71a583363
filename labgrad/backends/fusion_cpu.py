"""CPU fused kernels: a generated Numba loop, or NumPy with ``out=`` buffers without Numba.

``compile_cpu(kernel)`` returns a ``CpuKernel``; calling it with NumPy arrays runs the group
in one pass over memory. How a call runs:

1. *Plan* (cached per input shapes and strides): broadcast the shapes; drop size-1 axes; merge
   neighbouring axes that every array can walk as one (same broadcast pattern, same reduced or
   kept role, strides that line up), so same-shape contiguous inputs become one flat loop and
   a bias add ``(N, C) + (C,)`` a 2-d loop whose inner axis is contiguous. Each input is then
   a *view* of the loop's shape (size 1 on the axes it is broadcast along).
2. *Source* (cached per broadcast pattern): one loop nest, one line per step, the loads
   indexed with ``0`` on broadcast axes. An elementwise producer feeding ``sum``/``mean``/``max``
   accumulates in the same loop: in a scalar when the innermost axes are reduced (row sums),
   else straight into the result row (column sums), so it too reads memory once.
3. *Compile* (cached by the source's hash, in memory; on disk by Numba): the source is written
   to ``<cache dir>/<name>.py`` and imported, so ``numba.njit(cache=True)`` keeps the machine
   code next to it and a new process loads it instead of compiling.

Float32 sums and means accumulate in float64 (NumPy sums pairwise in float32): the results
agree with NumPy to float32 rounding and are, if anything, more accurate.

Without Numba (``ImportError``) the same plan drives generated NumPy code: one ufunc call per
step, each writing with ``out=`` into a buffer that an earlier, now dead, step no longer needs;
a reduction is then a separate ``np.sum``/``np.mean``/``np.max`` call (no fusion across it).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import threading

import numpy as np

from .fusion import Cast, Const, FusionError, Ref, py_literal, render_python, walk

_lock = threading.Lock()
_COMPILED: dict[str, object] = {}        # source hash -> compiled function
STATS = {"compiles": 0, "hits": 0, "plans": 0}


def cache_dir():
    """Where generated kernel modules (and Numba's cache of them) live.

    ``$LABGRAD_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/labgrad/kernels`` (``~/.cache/...``).
    """
    path = os.environ.get("LABGRAD_KERNEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "labgrad", "kernels")
    os.makedirs(path, exist_ok=True)
    return path


def have_numba():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def cache_info():
    """Counters of the in-memory caches: compiles, hits, plans (for tests and reports)."""
    return dict(STATS, kernels=len(_COMPILED))


def clear_cache():
    """Forget compiled kernels held in memory (the on-disk Numba cache stays)."""
    with _lock:
        _COMPILED.clear()
        for k in STATS:
            STATS[k] = 0


# ---------------------------------------------------------------- planning a call

class Plan:
    """How one call walks memory: the loop shape and each array's view of it."""
    __slots__ = ("out_shape", "loop_shape", "pattern", "input_shapes", "reduced_shape",
                 "acc_shape", "count", "output_shapes", "output_views")


def make_plan(shapes, strides, reduce, output_deps=()):
    try:
        out_shape = np.broadcast_shapes(*shapes)
    except ValueError:
        raise FusionError("fused kernel: cannot broadcast input shapes "
                          + " and ".join(str(s) for s in shapes)) from None
    nd = len(out_shape)
    padded = [(1,) * (nd - len(s)) + tuple(s) for s in shapes]
    pstrides = [(0,) * (nd - len(s)) + tuple(st) for s, st in zip(shapes, strides)]
    axes = set()
    if reduce is not None:
        given = range(nd) if reduce.axes is None else reduce.axes
        for ax in given:
            if not -nd <= ax < max(nd, 1):
                raise FusionError(f"fused {reduce.kind}: axis {ax} is out of range for "
                                  f"{nd}-d values")
            axes.add(ax % nd if nd else 0)
    dims = []     # [size, reduced, letters, strides]
    for d in range(nd):
        size = out_shape[d]
        if size == 1:
            continue
        letters = tuple("f" if p[d] == size else "b" for p in padded)
        dims.append([size, d in axes, letters, [st[d] for st in pstrides]])
    merged = []
    for dim in dims:
        if merged:
            prev = merged[-1]
            if prev[1] == dim[1] and prev[2] == dim[2] and all(
                    letter == "b" or prev[3][k] == dim[3][k] * dim[0]
                    for k, letter in enumerate(dim[2])):
                prev[0] *= dim[0]
                prev[3] = list(dim[3])
                continue
        merged.append(dim)
    if not merged:                       # a 0-d or all-ones result: one element
        merged = [[1, bool(axes), tuple("b" for _ in shapes), [0] * len(shapes)]]
    plan = Plan()
    plan.out_shape = out_shape
    plan.loop_shape = tuple(m[0] for m in merged)
    plan.pattern = tuple((m[1], m[2]) for m in merged)
    plan.input_shapes = [tuple(m[0] if m[2][k] == "f" else 1 for m in merged)
                         for k in range(len(shapes))]
    plan.output_shapes = [np.broadcast_shapes(*[shapes[k] for k in deps]) if deps else ()
                          for deps in output_deps]
    plan.output_views = [tuple(m[0] if any(m[2][k] == "f" for k in deps) else 1 for m in merged)
                         for deps in output_deps]
    if reduce is not None:
        plan.acc_shape = tuple(1 if m[1] else m[0] for m in merged)
        kept = tuple(1 if d in axes else s for d, s in enumerate(out_shape))
        plan.reduced_shape = kept if reduce.keepdims else tuple(
            s for d, s in enumerate(out_shape) if d not in axes)
        plan.count = int(np.prod([out_shape[d] for d in axes])) if axes else 1
    return plan


# ---------------------------------------------------------------- generated Numba source

def _acc_dtype(kind, value_dtype, out_dtype):
    if kind == "max":
        return value_dtype
    if value_dtype.kind == "f" or kind == "mean":
        return np.dtype(np.float64)
    return out_dtype          # integer and bool sums: NumPy's int64 / uint64


def _identity(kind, dtype):
    if kind != "max":
        return 0
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min


def _header(kernel, pattern, what):
    ops = ", ".join(s.op for s in kernel.steps) or "(none)"
    ins = ", ".join(f"{i.ident} {i.dtype}" for i in kernel.inputs)
    outs = ", ".join(f"{o.ident} {o.dtype}" for o in kernel.outputs)
    red = "" if kernel.reduce is None else f"; {kernel.reduce.kind} over the reduced axes"
    idx = ["i"] if len(pattern) == 1 else [f"i{d}" for d in range(len(pattern))]
    axes = []
    for name, (reduced, letters) in zip(idx, pattern):
        bcast = [i.ident for i, l in zip(kernel.inputs, letters) if l == "b"]
        note = ", ".join((["reduced"] if reduced else []) + ([" ".join(bcast) + " broadcast"] if bcast else []))
        axes.append(name + (f" ({note})" if note else ""))
    return [f"# {kernel.name}: generated by labgrad ({what})",
            f"# ops: {ops}",
            f"# inputs: {ins}; outputs: {outs}{red}",
            f"# loop axes: {', '.join(axes)}"]


def numba_source(kernel, pattern, inplace=None):
    """The Numba module for one broadcast pattern (see the module docstring). ``inplace=k``:
    the (single) output is written over input ``k`` (same shape), which the function then
    takes instead of an ``out0``: LLVM vectorizes a loop that loads and stores the same array
    at the same index, but not one whose output might overlap an input."""
    nd = len(pattern)
    idx = ["i"] if nd == 1 else [f"i{d}" for d in range(nd)]
    loads = {}
    body = []
    for k, inp in enumerate(kernel.inputs):
        # each input is loaded once, into a local, before the steps: then a ``where`` or a max
        # picks between locals, which LLVM compiles to a select instead of a branch (a branch
        # on data mispredicts half the time on random signs)
        sub = ", ".join(idx[d] if pattern[d][1][k] == "f" else "0" for d in range(nd))
        loads[inp.ident] = f"ld{k}"
        body.append(f"ld{k} = {inp.ident}[{sub}]")
    ref = lambda ident: loads.get(ident, ident)  # noqa: E731
    body += [f"{s.ident} = {render_python(s.tree, ref)}  # {s.op}" for s in kernel.steps]
    names = [i.ident for i in kernel.inputs]
    used_types = _dtype_names(kernel)
    lines = []
    red = kernel.reduce
    if red is None:
        outs = [f"out{k}" for k in range(len(kernel.outputs))] if inplace is None else []
        sig = ", ".join(names + outs + ["shape"])
        lines.append(f"def {kernel.name}({sig}):")
        lines.append(f"    {_unpack(nd)} = shape")
        depth = 1
        for d in range(nd):
            lines.append("    " * depth + f"for {idx[d]} in range(n{d}):")
            depth += 1
        pad = "    " * depth
        lines += [pad + b for b in body]
        for k, (o, deps) in enumerate(zip(kernel.outputs, kernel.output_deps)):
            osub = ", ".join(idx[d] if any(pattern[d][1][j] == "f" for j in deps) else "0"
                             for d in range(nd))
            target = f"out{k}" if inplace is None else kernel.inputs[inplace].ident
            lines.append(pad + f"{target}[{osub}] = {ref(o.ident)}")
    else:
        accs = [f"acc{k}" for k in range(len(kernel.outputs))]
        sig = ", ".join(names + accs + ["shape"])
        lines.append(f"def {kernel.name}({sig}):")
        lines.append(f"    {_unpack(nd)} = shape")
        suffix = nd
        while suffix > 0 and pattern[suffix - 1][0]:
            suffix -= 1                  # the innermost reduced axes: a scalar accumulator
        asub = ", ".join("0" if pattern[d][0] else idx[d] for d in range(nd))
        adts = []
        for o in kernel.outputs:
            adt = _acc_dtype(red.kind, o.value_dtype, o.dtype)
            adts.append(adt)
            used_types.add(adt.name)
        depth = 1

        def combine(target, acc, value, pad):
            if red.kind == "max":
                return [pad + f"if {value} > {acc} or {value} != {value}:  # NaN wins, as in np.max",
                        pad + f"    {target} = {value}"]
            return [pad + f"{target} = {acc} + {value}"]

        # a float max in a scalar tracks NaN apart (np.max returns NaN if any): no branch
        track_nan = [red.kind == "max" and adt.kind == "f" and suffix < nd for adt in adts]
        for d in range(nd):
            if d == suffix:
                pad = "    " * depth
                for k, adt in enumerate(adts):
                    lines.append(pad + f"s{k} = {py_literal(_identity(red.kind, adt), adt)}")
                    if track_nan[k]:
                        lines.append(pad + f"nan{k} = False")
            lines.append("    " * depth + f"for {idx[d]} in range(n{d}):")
            depth += 1
        pad = "    " * depth
        lines += [pad + b for b in body]
        for k, (o, adt) in enumerate(zip(kernel.outputs, adts)):
            value = ref(o.ident)
            if o.value_dtype != adt:
                value = f"{adt.name}({value})"
            if suffix < nd and red.kind == "max":
                lines.append(pad + f"s{k} = {value} if {value} > s{k} else s{k}  # max")
                if track_nan[k]:
                    lines.append(pad + f"nan{k} |= {value} != {value}")
            elif suffix < nd:
                lines += combine(f"s{k}", f"s{k}", value, pad)
            else:
                lines += combine(f"acc{k}[{asub}]", f"acc{k}[{asub}]", value, pad)
        if suffix < nd:
            pad = "    " * (suffix + 1)
            for k in range(len(kernel.outputs)):
                if track_nan[k]:
                    lines.append(pad + f"if nan{k}:")
                    lines.append(pad + f"    s{k} = nan")
                lines += combine(f"acc{k}[{asub}]", f"acc{k}[{asub}]", f"s{k}", pad)
    imports = ["import numpy as np", "from numba import njit",
               f"from numpy import {', '.join(sorted(used_types))}"]
    if any(re.search(r"\b(inf|nan)\b", ln) for ln in lines):
        imports.append("inf, nan = float('inf'), float('nan')")
    # a sum may be reordered (as NumPy's pairwise sum is): lets LLVM vectorize the accumulation
    flags = ', fastmath={"reassoc"}' if red is not None and red.kind != "max" else ""
    return "\n".join(_header(kernel, pattern, "Numba") + imports + [
        "", "", f'@njit(cache=True, error_model="numpy"{flags})'] + lines) + "\n"


# ---------------------------------------------------------------- generated NumPy source (no Numba)

_UFUNC = {"add": "np.add", "sub": "np.subtract", "mul": "np.multiply", "div": "np.true_divide",
          "neg": "np.negative", "eq": "np.equal", "ne": "np.not_equal", "lt": "np.less",
          "le": "np.less_equal", "gt": "np.greater", "ge": "np.greater_equal", "exp": "np.exp",
          "log": "np.log", "sqrt": "np.sqrt", "abs": "np.absolute", "sin": "np.sin",
          "cos": "np.cos", "tanh": "np.tanh", "max": "np.maximum", "min": "np.minimum",
          "pow": "np.power", "logical_and": "np.logical_and", "logical_or": "np.logical_or",
          "logical_not": "np.logical_not", "where": "np.where"}


def np_literal(value, dtype):
    """A NumPy scalar of exactly this dtype (never a weak Python number)."""
    if dtype.kind == "b":
        return "np.True_" if value else "np.False_"
    text = py_literal(value, dtype)
    return text if text.startswith(dtype.name + "(") else f"{dtype.name}({text})"


def render_numpy(node, out=None):
    """The tree as NumPy calls on whole arrays; the outermost ufunc writes into ``out``."""
    def r(n, out=None):
        if isinstance(n, Ref):
            return n.ident
        if isinstance(n, Const):
            return np_literal(n.value, n.dtype)
        if isinstance(n, Cast):
            return f"{r(n.arg)}.astype({n.dtype.name})"
        args = ", ".join(r(a) for a in n.args)
        if out is not None and n.fn != "where":
            return f"{_UFUNC[n.fn]}({args}, out={out})"
        return f"{_UFUNC[n.fn]}({args})"
    return r(node, out)


def numpy_source(kernel, pattern):
    """NumPy code for one broadcast pattern: ``out=`` buffers, reused once a step is dead."""
    nd = len(pattern)
    full = tuple("f" for _ in range(nd))
    cls = {i.ident: tuple(pattern[d][1][k] for d in range(nd)) for k, i in enumerate(kernel.inputs)}
    last_use = {}
    for j, s in enumerate(kernel.steps):
        for n in _refs(s.tree):
            last_use[n] = j
    out_idents = {o.ident: k for k, o in enumerate(kernel.outputs)}
    for ident in out_idents:
        last_use[ident] = len(kernel.steps)
    step_idents = {s.ident for s in kernel.steps}
    free = []                 # (class, dtype, buffer name) of dead steps' buffers
    buffer_of = {}
    lines = []
    red = kernel.reduce
    for j, s in enumerate(kernel.steps):
        refs = _refs(s.tree)
        c = tuple("f" if any(cls[n][d] == "f" for n in refs) else "b" for d in range(nd))
        cls[s.ident] = c
        top = s.tree
        for n in refs:            # operands that die here: an elementwise ufunc may overwrite them
            if last_use.get(n) == j and n in step_idents and n not in out_idents:
                free.append((cls[n], kernel.dtypes[n], buffer_of[n]))
        target = None
        if red is None and s.ident in out_idents and _is_ufunc_call(top):
            target = f"out{out_idents[s.ident]}"
        elif _is_ufunc_call(top):
            for q, (fc, fdt, fname) in enumerate(free):
                if fc == c and fdt == s.dtype:
                    target = fname
                    del free[q]
                    break
        if _is_ufunc_call(top) and target is not None:
            buffer_of[s.ident] = target
            note = "" if target.startswith("out") else f", in {target}'s buffer"
            lines.append(f"{s.ident} = {render_numpy(top, target)}  # {s.op}{note}")
        else:
            buffer_of[s.ident] = s.ident
            lines.append(f"{s.ident} = {render_numpy(top)}  # {s.op}")
    names = [i.ident for i in kernel.inputs]
    if red is None:
        sig = names + [f"out{k}" for k in range(len(kernel.outputs))] + ["shape"]
        for k, o in enumerate(kernel.outputs):
            if buffer_of.get(o.ident) != f"out{k}":
                lines.append(f"out{k}[...] = {o.ident}")
        lines.append("return " + ", ".join(f"out{k}" for k in range(len(kernel.outputs))))
    else:
        sig = names + ["shape"]
        axes = tuple(d for d in range(nd) if pattern[d][0])
        results = []
        for k, o in enumerate(kernel.outputs):
            v = o.ident if cls.get(o.ident, full) == full else f"np.broadcast_to({o.ident}, shape)"
            lines.append(f"r{k} = np.{red.kind}({v}, axis={axes}, keepdims=True)  # {red.kind}")
            results.append(f"r{k}")
        lines.append("return " + ", ".join(results))
    used = sorted(_dtype_names(kernel))
    return "\n".join(_header(kernel, pattern, "NumPy with out= buffers; Numba is not installed") + [
        "import numpy as np", f"from numpy import {', '.join(used)}", "", "",
        f"def {kernel.name}({', '.join(sig)}):"] + ["    " + ln for ln in lines]) + "\n"


def _dtype_names(kernel):
    names = {"float64"}
    for s in kernel.steps:
        names |= {n.dtype.name for n in walk(s.tree) if n.dtype is not None}
    names |= {i.dtype.name for i in kernel.inputs} | {o.dtype.name for o in kernel.outputs}
    return names - {"bool"}      # bools are written True/False and (x != 0)


def _unpack(nd):
    return "n0," if nd == 1 else ", ".join(f"n{d}" for d in range(nd))


def _refs(tree):
    seen = []
    for n in walk(tree):
        if isinstance(n, Ref) and n.ident not in seen:
            seen.append(n.ident)
    return seen


def _is_ufunc_call(node):
    return getattr(node, "fn", None) is not None and node.fn != "where"


# ---------------------------------------------------------------- compiling

def _load(source, name, numba_module):
    digest = hashlib.sha1(source.encode()).hexdigest()[:16]
    with _lock:
        fn = _COMPILED.get(digest)
        if fn is not None:
            STATS["hits"] += 1
            return fn
        STATS["compiles"] += 1
    modname = f"labgrad_kernel_{name}_{digest}"
    if numba_module:
        path = os.path.join(cache_dir(), modname + ".py")
        if not os.path.exists(path):     # never rewrite: Numba's disk cache is keyed on the file
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(source)
            os.replace(tmp, path)
        spec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
        fn = getattr(module, name)
    else:
        namespace = {}
        exec(compile(source, f"<{modname}>", "exec"), namespace)
        fn = namespace[name]
    with _lock:
        _COMPILED[digest] = fn
    return fn


class CpuKernel:
    """A fused kernel compiled for the CPU. Call it with arrays; read ``.source``.

    ``engine`` is ``"numba"`` or ``"numpy"``. ``.sources`` holds the source of every broadcast
    pattern it has run (``.source`` is the one for the declared input shapes).
    """

    def __init__(self, kernel, engine=None):
        self.kernel = kernel
        self.engine = engine or ("numba" if have_numba() else "numpy")
        self._plans = {}
        self._fns = {}
        self.sources = {}
        shapes = [tuple(2 if d is None else d for d in i.shape) if i.shape is not None else None
                  for i in kernel.inputs]
        nd = max((len(s) for s in shapes if s is not None), default=1)
        shapes = [s if s is not None else (2,) * nd for s in shapes]
        # declared shapes (unknown sizes taken as "not broadcast") give the readable source
        try:
            plan = make_plan(shapes, [_c_strides(s) for s in shapes], kernel.reduce, kernel.output_deps)
            self.source = self._source(plan.pattern)
        except FusionError:
            self.source = None

    @property
    def name(self):
        return self.kernel.name

    def _source(self, pattern):
        src = self.sources.get(pattern)
        if src is None:
            src = (numba_source if self.engine == "numba" else numpy_source)(self.kernel, pattern)
            self.sources[pattern] = src
        return src

    def _fn(self, pattern, inplace=None):
        key = pattern if inplace is None else (pattern, inplace)
        fn = self._fns.get(key)
        if fn is None:
            src = self._source(pattern) if inplace is None else numba_source(self.kernel, pattern, inplace)
            fn = self._fns[key] = _load(src, self.kernel.name, self.engine == "numba")
        return fn

    def __call__(self, *arrays, out=None):
        """Run on NumPy arrays; ``out`` (an array, or a tuple with one per output) receives an
        elementwise kernel's results instead of new arrays (memory planning reuses buffers)."""
        k = self.kernel
        if len(arrays) != len(k.inputs):
            raise TypeError(f"{k.name} takes {len(k.inputs)} arrays "
                            f"({', '.join(i.name for i in k.inputs)}), got {len(arrays)}")
        arrays = [_as_input(a, i) for a, i in zip(arrays, k.inputs)]
        key = tuple((a.shape, a.strides) for a in arrays)
        plan = self._plans.get(key)
        if plan is None:
            plan = make_plan([a.shape for a in arrays], [a.strides for a in arrays], k.reduce,
                             k.output_deps)
            if len(self._plans) > 256:
                self._plans.clear()
            self._plans[key] = plan
            STATS["plans"] += 1
        fn = self._fn(plan.pattern)
        views = [a.reshape(s) for a, s in zip(arrays, plan.input_shapes)]
        if k.reduce is None:
            outs = ([np.empty(s, o.dtype) for s, o in zip(plan.output_shapes, k.outputs)]
                    if out is None else _check_out(out, plan, k))
            fn(*views, *[o.reshape(v) for o, v in zip(outs, plan.output_views)], plan.loop_shape)
            if 0 in plan.loop_shape:     # an empty loop, but an output that needs fewer inputs
                for j, (out, deps) in enumerate(zip(outs, k.output_deps)):    # may not be empty
                    if out.size:
                        alone = self(*[a if n in deps else np.zeros((), a.dtype)
                                       for n, a in enumerate(arrays)])
                        out[...] = alone[j] if len(outs) > 1 else alone
            return outs[0] if len(outs) == 1 else tuple(outs)
        if out is not None:
            raise TypeError(f"{k.name}: out= is for elementwise kernels; a reduction returns new arrays")
        return self._reduce(fn, plan, views)

    def bind(self, shapes):
        """A faster callable for inputs of these static shapes (C-contiguous, of the declared
        dtypes), as compiled graphs call it: the plan is made once, and a call only checks
        shapes and strides before it runs the loop (anything else takes the general path)."""
        shapes = [tuple(s) for s in shapes]
        k = self.kernel
        if self.engine != "numba" or any(None in s for s in shapes) or len(shapes) != len(k.inputs):
            return self
        strides = [_c_strides_of(s, i.dtype.itemsize) for s, i in zip(shapes, k.inputs)]
        try:
            plan = make_plan(shapes, strides, k.reduce, k.output_deps)
        except FusionError:
            return self
        fn = self._fn(plan.pattern)
        n = len(shapes)
        args = [f"a{j}" for j in range(n)]
        check = " and ".join(f"a{j}.__class__ is ndarray and a{j}.shape == S{j} and a{j}.strides == T{j}"
                             for j in range(n)) or "True"
        views = ", ".join(f"a{j}.reshape(V{j})" for j in range(n))
        ns = {"ndarray": np.ndarray, "fn": fn, "slow": self, "LOOP": plan.loop_shape, "np": np}
        for j in range(n):
            ns[f"S{j}"], ns[f"T{j}"], ns[f"V{j}"] = shapes[j], strides[j], plan.input_shapes[j]
        lines = [f"def {k.name}({', '.join(args + ['out=None'])}):",
                 f"    if not ({check}):",
                 f"        return slow({', '.join(args)}, out=out)"]
        if k.reduce is None:
            outs = []
            for j, (o, shape, view) in enumerate(zip(k.outputs, plan.output_shapes, plan.output_views)):
                ns[f"O{j}"], ns[f"W{j}"], ns[f"D{j}"] = tuple(shape), view, o.dtype
                outs.append(f"o{j}")
            if len(outs) == 1:
                for j in range(n):     # out is one of the inputs: the in-place variant
                    if shapes[j] == tuple(plan.output_shapes[0]) and k.inputs[j].dtype == k.outputs[0].dtype \
                            and plan.input_shapes[j] == plan.output_views[0]:
                        ns[f"fn_ip{j}"] = self._fn(plan.pattern, j)
                        lines += [f"    if out is a{j}:",
                                  f"        fn_ip{j}({views}, LOOP)",
                                  f"        return out"]
                lines += ["    if out is not None and not out.flags.c_contiguous:",
                          f"        out[...] = slow({', '.join(args)})",
                          "        return out",
                          "    o0 = np.empty(O0, D0) if out is None else out"]
            else:
                lines += [f"    {', '.join(outs)}, = [np.empty(s, d) for s, d in "
                          f"(({', '.join(f'(O{j}, D{j})' for j in range(len(outs)))}))] if out is None else out"]
            lines += [f"    fn({views}{', ' if n else ''}{', '.join(f'o{j}.reshape(W{j})' for j in range(len(outs)))}, LOOP)"]
            if 0 in plan.loop_shape:
                return self
            lines += [f"    return {outs[0] if len(outs) == 1 else '(' + ', '.join(outs) + ')'}"]
        else:
            if plan.count == 0:
                return self
            red = k.reduce
            accs = []
            for j, o in enumerate(k.outputs):
                adt = _acc_dtype(red.kind, o.value_dtype, o.dtype)
                ns[f"I{j}"], ns[f"A{j}"], ns[f"D{j}"] = _identity(red.kind, adt), adt, o.dtype
                lines.append(f"    acc{j} = np.full(ACC, I{j}, A{j})")
                accs.append(f"acc{j}")
            ns["ACC"], ns["RED"], ns["COUNT"] = plan.acc_shape, plan.reduced_shape, plan.count
            lines.append(f"    fn({views}{', ' if n else ''}{', '.join(accs)}, LOOP)")
            results = []
            for j in range(len(accs)):
                value = f"acc{j} / COUNT" if red.kind == "mean" else f"acc{j}"
                lines.append(f"    r{j} = ({value}).astype(D{j}, copy=False).reshape(RED)")
                results.append(f"r{j}")
            lines.append(f"    return {results[0] if len(results) == 1 else '(' + ', '.join(results) + ')'}")
        exec(compile("\n".join(lines) + "\n", f"<{k.name} bound>", "exec"), ns)  # noqa: S102
        bound = ns[k.name]
        bound.source = self.source
        bound.kernel = k
        bound.general = self
        return bound

    def _reduce(self, fn, plan, views):
        k, red = self.kernel, self.kernel.reduce
        if red.kind == "max" and plan.count == 0 and int(np.prod(plan.reduced_shape)) > 0:
            raise ValueError("zero-size array to reduction operation maximum which has no identity")
        if self.engine == "numpy":
            results = fn(*views, plan.loop_shape)
            results = results if isinstance(results, tuple) else (results,)
            outs = [r.reshape(plan.reduced_shape) for r in results]
            return outs[0] if len(outs) == 1 else tuple(outs)
        accs = []
        for o in k.outputs:
            adt = _acc_dtype(red.kind, o.value_dtype, o.dtype)
            accs.append(np.full(plan.acc_shape, _identity(red.kind, adt), adt))
        fn(*views, *accs, plan.loop_shape)
        outs = []
        for o, acc in zip(k.outputs, accs):
            if red.kind == "mean":
                with np.errstate(all="ignore"):
                    acc = acc / plan.count
            outs.append(acc.astype(o.dtype, copy=False).reshape(plan.reduced_shape))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def __repr__(self):
        return f"<CpuKernel {self.kernel.name} ({self.engine}): {', '.join(self.kernel.ops)}>"


def _check_out(out, plan, kernel):
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if len(outs) != len(kernel.outputs):
        raise TypeError(f"{kernel.name}: out= needs {len(kernel.outputs)} array(s), got {len(outs)}")
    for o, shape, spec in zip(outs, plan.output_shapes, kernel.outputs):
        if not isinstance(o, np.ndarray) or o.shape != shape or o.dtype != spec.dtype \
                or not o.flags.c_contiguous:
            raise TypeError(f"{kernel.name}: out= for {spec.name!r} must be a C-contiguous "
                            f"{spec.dtype} array of shape {shape}")
    return outs


def _as_input(a, inp):
    if isinstance(a, np.ndarray):
        if a.dtype != inp.dtype:
            raise TypeError(f"input {inp.name!r} was declared {inp.dtype}, got a {a.dtype} array")
        return a
    return np.asarray(a, inp.dtype)


def _c_strides_of(shape, itemsize):
    strides, acc = [], itemsize
    for d in reversed(shape):
        strides.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(strides))


def _c_strides(shape):
    strides, acc = [], 8
    for d in reversed(shape):
        strides.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(strides))


def compile_cpu(kernel, engine=None):
    """``kernel`` (a ``FusedKernel``) as a callable CPU kernel; ``engine`` forces numba/numpy."""
    return CpuKernel(kernel, engine)
