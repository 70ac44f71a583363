"""GPU fused kernels: CuPy ``ElementwiseKernel`` / ``ReductionKernel`` source from a ``FusedKernel``.

The typed tree of ``fusion.py`` is written as CUDA C: float32 math calls the ``f`` functions
(``expf``, ``tanhf``, ...) so nothing is promoted to double, literals carry their type
(``0.5f``), small integer results are cast back (C widens ``signed char + signed char`` to
``int``; NumPy wraps around), and ``max``/``min`` propagate NaN as ``np.maximum`` does.

CuPy does the indexing and broadcasting: an ``ElementwiseKernel`` gets one statement per step;
a reduction gets a ``__device__`` function computing the elementwise value (its ``map_expr``),
``a + b`` or ``lg_max(a, b)`` as ``reduce_expr``, and the mean's division in ``post_map_expr``.
One ``ReductionKernel`` is made per reduced output (CuPy reduces one value per kernel).

Without a GPU, ``check_source(kernel)`` wraps the same statements in a ``__global__`` function
written like CuPy's (each input bound as ``const T name``, each output as ``T &name``) and
``nvrtc_compile`` compiles it with NVRTC (the ``nvidia-cuda-nvrtc-cu12`` wheel through
``cupy_backends.cuda.libs.nvrtc``), so every generated kernel is checked to compile anywhere.
"""
from __future__ import annotations

import math

import numpy as np

from .fusion import COMPARISONS, WIDENING, Cast, Const, Ref, needs_wrap

C_TYPES = {"bool": "bool", "int8": "signed char", "int16": "short", "int32": "int",
           "int64": "long long", "uint8": "unsigned char", "uint16": "unsigned short",
           "uint32": "unsigned int", "uint64": "unsigned long long", "float32": "float",
           "float64": "double"}

PREAMBLE = """\
// labgrad fused-kernel helpers: NaN-propagating max/min (as np.maximum), integer power
template <typename T> __device__ __forceinline__ T lg_max(T a, T b) { return (a > b || a != a) ? a : b; }
template <typename T> __device__ __forceinline__ T lg_min(T a, T b) { return (a < b || a != a) ? a : b; }
template <typename T> __device__ __forceinline__ T lg_ipow(T a, T b) {
    T r = 1;
    if (b < 0) return (a == 1) ? 1 : 0;
    while (b) { if (b & 1) r *= a; a *= a; b >>= 1; }
    return r;
}
"""

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "eq": "==", "ne": "!=", "lt": "<",
          "le": "<=", "gt": ">", "ge": ">=", "logical_and": "&&", "logical_or": "||"}
_MATH = ("exp", "log", "sqrt", "sin", "cos", "tanh", "pow")


def ctype(dtype):
    return C_TYPES[np.dtype(dtype).name]


def c_literal(value, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return "true" if value else "false"
    if dtype.kind == "f":
        v = float(value)
        if math.isinf(v) or v != v:
            bits = {np.float32: ("__int_as_float", 0x7f800000, 0x7fc00000),
                    np.float64: ("__longlong_as_double", 0x7ff0000000000000, 0x7ff8000000000000)}
            fn, inf, nan = bits[dtype.type]
            text = f"{fn}({hex(nan)}{'LL' if dtype == np.float64 else ''})" if v != v else \
                f"{fn}({hex(inf)}{'LL' if dtype == np.float64 else ''})"
            return f"(-{text})" if v < 0 else text
        if dtype == np.float32:
            text = str(np.float32(v))
            text = text if ("." in text or "e" in text) else text + ".0"
            text += "f"
        else:
            text = repr(v)
        return f"({text})" if v < 0 else text
    v = int(value)
    suffix = {"int64": "LL", "uint64": "ULL", "uint32": "U"}.get(dtype.name, "")
    if dtype == np.int64 and v == -2 ** 63:
        return "(-9223372036854775807LL - 1)"
    if dtype.itemsize < 4:
        return f"(({ctype(dtype)}){v})"
    return f"({v}{suffix})" if v < 0 else f"{v}{suffix}"


def render_c(node, ref=lambda ident: ident):
    """The tree as one CUDA C expression."""
    def r(n):
        if isinstance(n, Ref):
            return ref(n.ident)
        if isinstance(n, Const):
            return c_literal(n.value, n.dtype)
        if isinstance(n, Cast):
            inner = r(n.arg)
            return f"({inner} != 0)" if n.dtype.kind == "b" else f"({ctype(n.dtype)})({inner})"
        fn, a, dt = n.fn, n.args, n.dtype
        if fn in _INFIX:
            text = f"({r(a[0])} {_INFIX[fn]} {r(a[1])})"
        elif fn == "neg":
            text = f"(-{r(a[0])})"
        elif fn == "logical_not":
            text = f"(!{r(a[0])})"
        elif fn == "where":
            text = f"({r(a[0])} ? {r(a[1])} : {r(a[2])})"
        elif fn in ("max", "min"):
            text = f"lg_{fn}<{ctype(dt)}>({r(a[0])}, {r(a[1])})"
        elif fn == "abs":
            x = r(a[0])
            text = (f"fabsf({x})" if dt == np.float32 else f"fabs({x})" if dt == np.float64
                    else x if dt.kind in "bu" else f"({x} < 0 ? -{x} : {x})")
        elif fn == "pow" and dt.kind != "f":
            text = f"lg_ipow<{ctype(dt)}>({r(a[0])}, {r(a[1])})"
        elif fn in _MATH:
            name = fn + ("f" if dt == np.float32 else "")
            text = f"{name}({', '.join(r(x) for x in a)})"
        else:
            raise ValueError(f"no CUDA translation for {fn}")
        if fn in WIDENING and needs_wrap(dt) and fn not in COMPARISONS:
            text = f"({text} != 0)" if dt.kind == "b" else f"(({ctype(dt)}){text})"
        return text
    return r(node)


def _strip(text):
    return text[1:-1] if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]) else text


def _balanced(text):
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return False
    return depth == 0


def _steps(kernel, indent=""):
    return [f"{indent}{ctype(s.dtype)} {s.ident} = {_strip(render_c(s.tree))};  // {s.op}"
            for s in kernel.steps]


class CudaSource:
    """Everything CuPy needs to build the kernel(s), as readable text."""

    def __init__(self, kernel):
        self.kernel = kernel
        k = kernel
        self.name = k.name
        self.in_params = ", ".join(f"{i.dtype.name} {i.ident}" for i in k.inputs)
        self.preamble = PREAMBLE
        ops = ", ".join(s.op for s in k.steps)
        if k.reduce is None:
            self.out_params = ", ".join(f"{o.dtype.name} out{n}" for n, o in enumerate(k.outputs))
            lines = [f"// {k.name}: {ops}"] + _steps(k)
            lines += [f"out{n} = {o.ident};" for n, o in enumerate(k.outputs)]
            self.operation = "\n".join(lines)
            self.reductions = []
        else:
            # the map as a device function, so that a ReductionKernel's map_expr is one call
            args = ", ".join(f"{ctype(i.dtype)} {i.ident}" for i in k.inputs)
            self.reductions = []
            funcs = []
            for n, o in enumerate(k.outputs):
                fname = f"{k.name}_map{n}"
                body = _steps(k, "    ") + [f"    return {o.ident};"]
                funcs.append(f"__device__ {ctype(o.value_dtype)} {fname}({args}) {{  // {ops}\n"
                             + "\n".join(body) + "\n}")
                red = {"sum": "a + b", "mean": "a + b", "max": f"lg_max<{ctype(o.dtype)}>(a, b)"}[k.reduce.kind]
                ident = ("0" if k.reduce.kind != "max" else
                         c_literal(-np.inf if o.dtype.kind == "f" else
                                   (False if o.dtype.kind == "b" else np.iinfo(o.dtype).min), o.dtype))
                post = ("out0 = a / (_in_ind.size() / _out_ind.size())" if k.reduce.kind == "mean"
                        else "out0 = a")
                in_params = ", ".join(f"{i.dtype.name} in{j}" for j, i in enumerate(k.inputs))
                self.reductions.append(dict(
                    in_params=in_params, out_params=f"{o.dtype.name} out0",
                    map_expr=f"{fname}({', '.join(f'in{j}' for j in range(len(k.inputs)))})",
                    reduce_expr=red, post_map_expr=post, identity=ident,
                    name=f"{k.name}_{n}", reduce_type=ctype(o.dtype)))
            self.preamble = PREAMBLE + "\n" + "\n\n".join(funcs) + "\n"
            self.operation = None
            self.out_params = None

    @property
    def text(self):
        """What a student reads: the CuPy call(s) with their sources."""
        k = self.kernel
        if self.operation is not None:
            return (f"cupy.ElementwiseKernel(\n    in_params={self.in_params!r},\n"
                    f"    out_params={self.out_params!r},\n    name={self.name!r},\n"
                    f"    operation='''\n{self.operation}\n''')\n")
        parts = [f"// preamble\n{self.preamble}"]
        for r in self.reductions:
            parts.append("cupy.ReductionKernel(" + ", ".join(
                f"{key}={r[key]!r}" for key in ("in_params", "out_params", "map_expr", "reduce_expr",
                                                  "post_map_expr", "identity", "name", "reduce_type"))
                + f")  # {k.reduce.kind}")
        return "\n".join(parts)


def check_source(kernel):
    """A self-contained CUDA translation unit holding the kernel's code, for NVRTC.

    It binds the inputs and outputs the way CuPy's generated kernels do (``const T x`` per
    input, ``T &out`` per output) around the same statements, and for a reduction runs the
    same ``map``/``reduce``/``post_map`` expressions in a simple one-thread-per-output loop.
    """
    src = CudaSource(kernel)
    k = kernel
    if src.operation is not None:
        params = [f"const {ctype(i.dtype)}* __restrict__ _raw_{i.ident}" for i in k.inputs]
        params += [f"{ctype(o.dtype)}* __restrict__ _raw_out{n}" for n, o in enumerate(k.outputs)]
        binds = [f"        const {ctype(i.dtype)} {i.ident} = _raw_{i.ident}[i];" for i in k.inputs]
        binds += [f"        {ctype(o.dtype)} &out{n} = _raw_out{n}[i];" for n, o in enumerate(k.outputs)]
        body = "\n".join("        " + ln for ln in src.operation.splitlines())
        return (src.preamble + f'\nextern "C" __global__ void {k.name}({", ".join(params)}, const long long _n) {{\n'
                "    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < _n;\n"
                "         i += (long long)blockDim.x * gridDim.x) {\n"
                + "\n".join(binds) + "\n" + body + "\n    }\n}\n")
    out = [src.preamble]
    for r in src.reductions:
        o_t = r["out_params"].split()[0]
        params = [f"const {C_TYPES[p.split()[0]]}* __restrict__ _raw_{p.split()[1]}"
                  for p in r["in_params"].split(", ")]
        params.append(f"{C_TYPES[o_t]}* __restrict__ _raw_out0")
        binds = [f"            const {C_TYPES[p.split()[0]]} {p.split()[1]} = _raw_{p.split()[1]}[_o * _m + _j];"
                 for p in r["in_params"].split(", ")]
        out.append(
            f"#define REDUCE(a, b) ({r['reduce_expr']})\n"
            f"#define POST_MAP(a) ({r['post_map_expr']})\n"
            f'extern "C" __global__ void {r["name"]}({", ".join(params)}, const long long _n, const long long _m) {{\n'
            f"    typedef {r['reduce_type']} _type_reduce;\n"
            "    struct { long long n; __device__ long long size() const { return n; } } "
            "_in_ind = {_n * _m}, _out_ind = {_n};\n"
            "    for (long long _o = blockIdx.x * (long long)blockDim.x + threadIdx.x; _o < _n;\n"
            "         _o += (long long)blockDim.x * gridDim.x) {\n"
            f"        _type_reduce _acc = {r['identity']};\n"
            "        for (long long _j = 0; _j < _m; ++_j) {\n"
            + "\n".join(binds) + "\n"
            f"            _type_reduce _v = static_cast<_type_reduce>({r['map_expr']});\n"
            "            _acc = REDUCE(_acc, _v);\n"
            "        }\n"
            f"        {C_TYPES[o_t]} &out0 = _raw_out0[_o];\n"
            "        POST_MAP(_acc);\n"
            "    }\n}\n"
            "#undef REDUCE\n#undef POST_MAP\n")
    return "\n".join(out)


def nvrtc_available():
    """``(True, None)`` when NVRTC can be loaded here, else ``(False, why)``."""
    try:
        from cupy_backends.cuda.libs import nvrtc
    except Exception as e:   # CuPy missing, or built without NVRTC bindings
        return False, (f"cannot import cupy_backends.cuda.libs.nvrtc ({type(e).__name__}: {e}); "
                       f"pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12")
    try:
        nvrtc.getVersion()
    except Exception as e:   # libnvrtc.so not found
        return False, (f"NVRTC is not loadable ({type(e).__name__}: {e}); "
                       f"pip install nvidia-cuda-nvrtc-cu12")
    return True, None


def nvrtc_compile(source, name="kernel.cu", arch="compute_80"):
    """Compile CUDA source to PTX with NVRTC; raises ``RuntimeError`` with NVRTC's log."""
    from cupy_backends.cuda.libs import nvrtc

    prog = nvrtc.createProgram(source, name, [], [])
    try:
        try:
            nvrtc.compileProgram(prog, [f"-arch={arch}", "-std=c++14"])
        except nvrtc.NVRTCError as e:
            log = nvrtc.getProgramLog(prog)
            raise RuntimeError(f"NVRTC could not compile {name}: {e}\n{log}\n--- source ---\n{source}") from None
        ptx = nvrtc.getPTX(prog)
    finally:
        nvrtc.destroyProgram(prog)
    return ptx.decode() if isinstance(ptx, bytes) else ptx


class CudaKernel:
    """A fused kernel for CuPy arrays; ``.source`` is the readable CuPy source."""

    def __init__(self, kernel, cupy):
        self.kernel = kernel
        self._cp = cupy
        self.cuda = CudaSource(kernel)
        self.source = self.cuda.text
        self._built = None

    @property
    def name(self):
        return self.kernel.name

    def _build(self):
        cp, src = self._cp, self.cuda
        if src.operation is not None:
            return cp.ElementwiseKernel(src.in_params, src.out_params, src.operation,
                                        name=src.name, preamble=src.preamble)
        return [cp.ReductionKernel(r["in_params"], r["out_params"], r["map_expr"], r["reduce_expr"],
                                   r["post_map_expr"], r["identity"], name=r["name"],
                                   reduce_type=r["reduce_type"], preamble=src.preamble)
                for r in src.reductions]

    def __call__(self, *arrays, out=None):
        """Run on CuPy arrays; ``out`` (array or tuple) receives an elementwise kernel's results."""
        if self._built is None:
            self._built = self._build()
        k = self.kernel
        arrays = [self._cp.asarray(a, dtype=i.dtype) for a, i in zip(arrays, k.inputs)]
        if k.reduce is None:
            outs = () if out is None else (tuple(out) if isinstance(out, (tuple, list)) else (out,))
            return self._built(*arrays, *outs)
        if out is not None:
            raise TypeError(f"{k.name}: out= is for elementwise kernels; a reduction returns new arrays")
        shape = np.broadcast_shapes(*[a.shape for a in arrays])
        arrays = [self._cp.broadcast_to(a, shape) for a in arrays]
        axes = k.reduce.axes
        outs = tuple(r(*arrays, axis=axes, keepdims=k.reduce.keepdims) for r in self._built)
        return outs[0] if len(outs) == 1 else outs

    def __repr__(self):
        return f"<CudaKernel {self.kernel.name}: {', '.join(self.kernel.ops)}>"


def compile_cuda(kernel, cupy):
    return CudaKernel(kernel, cupy)
