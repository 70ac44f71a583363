"""The op registry as data: each op's ``infer``, ``cost`` and ``expr`` rules, checked generically.

Static graphs trust ``infer``, the profiler trusts ``cost``, and the fusion pass trusts
``expr``; each is checked here against what the op's ``forward`` really does.
"""
from __future__ import annotations

import copy
import pickle
import re

import numpy as np
import pytest

import labgrad as lg
from labgrad.ops import REGISTRY, Aval, aval_of, get_op
from viz.style import FAMILY_COLORS
from labgrad.ops.shape import INDEX_INPUT

_rng = np.random.default_rng(11)


def randn(*shape):
    return _rng.standard_normal(shape)


def positive(*shape):
    return _rng.uniform(0.5, 2.0, shape)


def ints(*shape, high=4):
    return _rng.integers(0, high, shape)


f32 = np.dtype("float32")
WIN = dict(kernel_size=(2, 2), stride=(1, 2), padding=(1, 0), dilation=(1, 1))

# op name -> list of (inputs, attrs); inputs are arrays or Python numbers
SAMPLES = {
    "add": [((randn(2, 3), randn(3)), {}), ((randn(2, 1), 1.5), {})],
    "sub": [((randn(2, 3), randn(2, 1)), {})],
    "mul": [((randn(4, 1, 3), randn(2, 1)), {}), ((2, randn(3)), {})],
    "div": [((randn(2, 3), positive(3)), {})],
    "neg": [((randn(3),), {})],
    "pow": [((positive(2, 3), randn(3)), {}), ((randn(3), 2), {})],
    "exp": [((randn(2, 3),), {})],
    "log": [((positive(2, 3),), {})],
    "sqrt": [((positive(2, 3),), {})],
    "abs": [((randn(2, 3),), {})],
    "sign": [((np.array([-1.5, 0.0, 2.0]),), {})],
    "sin": [((randn(4),), {})],
    "cos": [((randn(4),), {})],
    "tanh": [((randn(4),), {})],
    "sigmoid": [((3 * randn(5),), {})],
    "relu": [((randn(5),), {})],
    "leaky_relu": [((randn(5),), {"alpha": 0.1})],
    "gelu": [((2 * randn(5),), {})],
    "maximum": [((randn(2, 3), randn(3)), {})],
    "tanh_grad": [((randn(2, 3), randn(3)), {})],
    "sigmoid_grad": [((randn(2, 3), randn(3)), {})],
    "relu_grad": [((randn(2, 3), randn(3)), {})],
    "minimum": [((randn(2, 3), 0.0), {})],
    "where": [((randn(2, 3) > 0, randn(2, 3), randn(3)), {})],
    "clip": [((randn(6),), {"lo": -0.5, "hi": 0.5})],
    "cast": [((randn(3),), {"dtype": f32}), ((randn(3),), {"dtype": np.dtype("int64")})],
    "eq": [((ints(5), ints(5)), {})],
    "ne": [((ints(5), ints(5)), {})],
    "lt": [((randn(2, 3), randn(3)), {})],
    "le": [((randn(4), 0.0), {})],
    "gt": [((randn(2, 3), randn(2, 1)), {})],
    "ge": [((randn(4), 0.0), {})],
    "logical_and": [((randn(4) > 0, randn(4) > 0), {})],
    "logical_or": [((randn(4) > 0, randn(4) > 0), {})],
    "logical_not": [((randn(4) > 0,), {})],
    "reshape": [((randn(2, 3, 2),), {"shape": (3, 4)})],
    "transpose": [((randn(2, 3, 4),), {"axes": (2, 0, 1)})],
    "squeeze": [((randn(1, 3, 1),), {"axis": (0, 2)})],
    "unsqueeze": [((randn(3, 2),), {"axis": (0, 3)})],
    "broadcast_to": [((randn(3, 1),), {"shape": (2, 3, 4)})],
    "broadcast_like": [((randn(3, 1), randn(2, 3, 4)), {})],
    "sum_to": [((randn(2, 3, 4),), {"shape": (3, 1)})],
    "getitem": [((randn(3, 4),), {"index": (slice(1, None), slice(None, None, 2))}),
                ((randn(3, 4),), {"index": (np.array([0, 2, 0]),)}),
                ((randn(3, 4),), {"index": (None, Ellipsis, 1)}),
                ((randn(3, 4), np.array([[2, 0], [1, 1]])), {"index": (slice(None), INDEX_INPUT)}),
                ((randn(3, 4, 2), np.array([2, 0]), np.array([1, 3])), {"index": (INDEX_INPUT, INDEX_INPUT)}),
                ((randn(3, 4, 2), np.array([0, 1])), {"index": (0, slice(None), INDEX_INPUT)})],
    "getitem_grad": [((randn(3, 2), randn(4, 2)), {"index": (np.array([0, 3, 0]),)}),
                     ((randn(3, 2), randn(4, 2), np.array([0, 3, 0])), {"index": (INDEX_INPUT,)})],
    "setitem": [((randn(4, 2), randn(2)), {"index": (np.array([0, 3, 0]),)}),
                ((randn(4, 2), randn(3, 1), np.array([0, 3, 0])), {"index": (INDEX_INPUT,)}),
                ((randn(4, 3), 0.5), {"index": (slice(1, None), 2)})],
    "setitem_winners": [((randn(4, 2),), {"index": (np.array([0, 3, 0]),)}),
                        ((randn(4, 2), np.array([[1, 1], [0, 1]])), {"index": (slice(None), INDEX_INPUT)})],
    "concatenate": [((randn(2, 3), randn(2, 1)), {"axis": 1})],
    "stack": [((randn(2, 3), randn(2, 3), randn(2, 3)), {"axis": 1})],
    "pad": [((randn(2, 3),), {"pad_width": ((1, 0), (2, 1)), "value": 0.0})],
    "full_like": [((randn(2, 3),), {"value": 3.0, "dtype": None})],
    "any": [((randn(2, 3) > 0,), {"axis": (1,), "keepdims": False}), ((randn(2, 3),), {"axis": None, "keepdims": True})],
    "all": [((randn(2, 3) > 0,), {"axis": (0,), "keepdims": True})],
    "element_count": [((randn(2, 3),), {"axis": (0,), "dtype": f32}), ((randn(2, 3),), {"axis": None, "dtype": f32})],
    "sum": [((randn(2, 3, 4),), {"axis": (0, 2), "keepdims": False}), ((ints(3),), {"axis": None, "keepdims": True})],
    "mean": [((randn(2, 3),), {"axis": (1,), "keepdims": True}), ((ints(3),), {"axis": None, "keepdims": False})],
    "max": [((randn(2, 3),), {"axis": (0,), "keepdims": False})],
    "min": [((randn(2, 3),), {"axis": None, "keepdims": False})],
    "var": [((randn(3, 4),), {"axis": (1,), "keepdims": False, "ddof": 1})],
    "logsumexp": [((randn(3, 4),), {"axis": (0, 1), "keepdims": True})],
    "matmul": [((randn(2, 1, 2, 3), randn(4, 3, 5)), {}), ((randn(3), randn(3)), {}), ((randn(3), randn(2, 3, 4)), {})],
    "softmax": [((randn(2, 4),), {"axis": 1})],
    "log_softmax": [((randn(2, 4),), {"axis": 0})],
    "one_hot": [((ints(5),), {"num_classes": 4, "dtype": f32})],
    "cross_entropy": [((randn(5, 4), ints(5)), {})],
    "cross_entropy_grad": [((randn(5, 4), ints(5), np.array(1.5)), {})],
    "unfold": [((randn(2, 3, 4, 5),), WIN)],
    "fold": [((randn(2, 12, 10),), dict(WIN, output_size=(4, 5)))],
    "to_device": [((randn(2, 3),), {"device": "cpu"})],
    "assign": [((randn(2, 3), randn(3)), {})],
    "fma": [((randn(2, 3), randn(3), randn(2, 1)), {}), ((randn(3), 2.0, 1.0), {})],
    "linear": [((randn(4, 3), randn(3, 2), randn(2)), {"relu": False}),
               ((randn(4, 3), randn(3, 2), randn(4, 2)), {"relu": True})],
}


def _samples():
    for name in sorted(SAMPLES):
        for k, (inputs, attrs) in enumerate(SAMPLES[name]):
            yield pytest.param(name, inputs, attrs, id=f"{name}-{k}")


def _run(name, inputs, attrs):
    tensors = [lg.tensor(x, dtype=x.dtype) if isinstance(x, np.ndarray) else x for x in inputs]
    return get_op(name)(*tensors, **attrs)


def test_every_labgrad_module_imports(labgrad_import_failures):
    """conftest imports all of labgrad so that every op is registered; none may fail."""
    assert not labgrad_import_failures, labgrad_import_failures


def test_every_op_has_registry_samples():
    missing = sorted(set(REGISTRY) - set(SAMPLES))
    assert not missing, f"ops without samples in tests/test_op_registry.py SAMPLES: {missing}"


@pytest.mark.parametrize("name,inputs,attrs", list(_samples()))
def test_infer_agrees_with_forward(name, inputs, attrs):
    out = _run(name, inputs, attrs)
    aval = get_op(name).infer(*[aval_of(x) for x in inputs], **attrs)
    assert isinstance(aval, Aval)
    assert aval.shape == tuple(out.shape), f"{name}: infer says {aval}, forward gives {out.shape}"
    assert aval.dtype == out.dtype, f"{name}: infer says {aval.dtype}, forward gives {out.dtype}"


@pytest.mark.parametrize("name,inputs,attrs", list(_samples()))
def test_cost_is_non_negative_ints(name, inputs, attrs):
    cost = get_op(name).cost(*[aval_of(x) for x in inputs], **attrs)
    assert set(cost) >= {"flops", "bytes"}
    for key in ("flops", "bytes"):
        assert isinstance(cost[key], (int, np.integer)) and not isinstance(cost[key], bool), (name, key, cost)
        assert cost[key] >= 0, (name, key, cost)
    out = _run(name, inputs, attrs)
    if get_op(name).family != "transfer":
        assert cost["bytes"] >= out.numpy().nbytes, f"{name}: moving {cost['bytes']} bytes cannot write the output"


def test_hand_derived_costs():
    a, b = Aval((8, 16), "float32"), Aval((16, 4), "float32")
    assert get_op("matmul").cost(a, b) == {"flops": 2 * 8 * 4 * 16, "bytes": 4 * (8 * 16 + 16 * 4 + 8 * 4)}
    assert get_op("add").cost(a, 1.0) == {"flops": 8 * 16, "bytes": 2 * 4 * 8 * 16}
    assert get_op("sum").cost(a, axis=None, keepdims=False) == {"flops": 128, "bytes": 4 * 128 + 4}


def test_infer_handles_unknown_sizes():
    batch = Aval((None, 3), "float32")
    assert get_op("add").infer(batch, Aval((3,), "float32")) == Aval((None, 3), "float32")
    assert get_op("matmul").infer(batch, Aval((3, 5), "float64")) == Aval((None, 5), "float64")
    assert get_op("sum").infer(batch, axis=(1,), keepdims=False) == Aval((None,), "float32")
    img = Aval((None, 2, 6, 6), "float32")
    assert get_op("unfold").infer(img, **WIN).shape == (None, 2 * 2 * 2, 7 * 3)


def test_infer_explains_bad_shapes():
    with pytest.raises(lg.ShapeError, match=r"cannot broadcast shapes \(2, 3\) and \(4,\)"):
        get_op("mul").infer(Aval((2, 3), "float32"), Aval((4,), "float32"))
    with pytest.raises(lg.ShapeError, match="kernel is bigger than the padded input"):
        get_op("unfold").infer(Aval((1, 1, 2, 2), "float32"), kernel_size=(3, 3), stride=(1, 1),
                               padding=(0, 0), dilation=(1, 1))


# ---------------------------------------------------------------- expr templates

EXPR_FUNCTIONS = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "sin": np.sin, "cos": np.cos,
    "tanh": np.tanh, "max": np.maximum, "min": np.minimum, "where": np.where, "pow": np.power,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_not": np.logical_not,
}
_TOKEN = re.compile(r"\s*(?:(?P<slot>\{\w+\})|(?P<num>\d+\.?\d*(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
                    r"|(?P<op>==|!=|<=|>=|[-+*/<>(),]))")


def translate(template, attrs):
    """An ``expr`` template as a NumPy expression string, refusing anything outside its grammar."""
    out, pos = [], 0
    template = template.strip()
    while pos < len(template):
        m = _TOKEN.match(template, pos)
        if m is None or m.end() == pos:
            raise SyntaxError(f"unexpected text in expr {template!r} at {template[pos:]!r}")
        pos = m.end()
        if m["slot"]:
            key = m["slot"][1:-1]
            out.append(f"_in[{key}]" if key.isdigit() else repr(attrs[key]))
        elif m["name"]:
            if m["name"] not in EXPR_FUNCTIONS:
                raise SyntaxError(f"expr {template!r} uses {m['name']!r}, which is not in the template grammar")
            out.append(f"_fn[{m['name']!r}]")
        else:
            out.append(m["num"] or m["op"])
    return " ".join(out)


def evaluate(template, inputs, attrs):
    code = translate(template, attrs)
    with np.errstate(all="ignore"):
        return eval(code, {"__builtins__": {}}, {"_in": inputs, "_fn": EXPR_FUNCTIONS})  # noqa: S307


def test_translator_rejects_names_outside_the_grammar():
    with pytest.raises(SyntaxError, match="not in the template grammar"):
        translate("erf({0})", {})
    with pytest.raises(SyntaxError, match="unexpected text"):
        translate("{0} % 2", {})
    assert evaluate("where({0} > 0, {0}, {0} * {a})", [np.array([-2.0, 3.0])], {"a": 0.5}).tolist() == [-1.0, 3.0]


EXPR_OPS = sorted(name for name, o in REGISTRY.items() if o.expr is not None)


def test_every_elementwise_op_has_an_expr():
    missing = sorted(name for name, o in REGISTRY.items() if o.family in ("elementwise", "compare") and o.expr is None)
    assert not missing, f"elementwise ops without an expr template (the fusion pass needs one): {missing}"


@pytest.mark.parametrize("name", EXPR_OPS)
def test_expr_template_computes_what_forward_computes(name):
    op = get_op(name)
    for inputs, attrs in SAMPLES[name]:
        expected = np.asarray(op.forward(np, *inputs, **attrs))
        # a fused kernel stores its result in an array of the op's output dtype (cast: "{0}")
        got = np.broadcast_to(evaluate(op.expr, list(inputs), attrs), expected.shape).astype(expected.dtype)
        np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float),
                                   rtol=1e-6, atol=1e-7, err_msg=f"{name}: expr {op.expr!r}")


# ---------------------------------------------------------------- registry structure

# How users reach each op (besides lg.ops.<name>): a function of lg or F, or a Tensor method.
SPELLED = {"pow": "__pow__", "neg": "__neg__", "getitem": "__getitem__", "setitem": "__setitem__",
           "eq": "__eq__", "ne": "__ne__", "lt": "__lt__", "le": "__le__", "gt": "__gt__",
           "ge": "__ge__", "logical_and": "__and__", "logical_or": "__or__",
           "logical_not": "__invert__", "cast": "astype", "to_device": "to", "assign": "copy_"}
# Ops that only other ops' rules call, and the rule each one serves.
BUILDING_BLOCKS = {
    "tanh_grad": "tanh's backward", "sigmoid_grad": "sigmoid's backward",
    "relu_grad": "relu's backward", "cross_entropy_grad": "cross_entropy's backward",
    "sum_to": "every broadcast gradient (the interpreters sum back to the input's shape)",
    "broadcast_like": "the backward of the reductions", "getitem_grad": "getitem's backward",
    "setitem_winners": "setitem's backward", "element_count": "mean/var with unknown sizes",
    "unfold": "conv2d and pooling (im2col)", "fold": "unfold's backward (col2im)",
    "fma": "the patterns pass (a * b + c)",
}


def test_every_op_has_a_public_name():
    import labgrad.functional as F
    for name, o in REGISTRY.items():
        assert getattr(lg.ops, name) is o, f"lg.ops.{name} is not the op {name}"
        spelled = SPELLED.get(name, name)
        users = [where for where, obj in (("lg", lg), ("F", F), ("Tensor", lg.Tensor)) if hasattr(obj, spelled)]
        assert users or name in BUILDING_BLOCKS, (
            f"op {name} has no public spelling (lg.{name}, F.{name} or a Tensor method); add one, "
            f"or list it in BUILDING_BLOCKS with the rule that uses it")
    assert lg.broadcast_to(lg.ones(3), (2, 3)).shape == (2, 3)

def test_every_family_has_a_colour():
    missing = sorted({o.family for o in REGISTRY.values()} - set(FAMILY_COLORS))
    assert not missing, f"op families without a colour in FAMILY_COLORS: {missing}"


def test_ops_copy_and_pickle_as_themselves():
    for o in REGISTRY.values():
        assert copy.deepcopy(o) is o
        assert pickle.loads(pickle.dumps(o)) is o


def test_get_op_lists_known_ops_when_a_name_is_wrong():
    with pytest.raises(KeyError, match="no op named 'matmull'.*matmul"):
        get_op("matmull")


def test_defining_an_op_twice_is_refused():
    from labgrad.ops.registry import defop

    with pytest.raises(ValueError, match="defined twice"):
        @defop("elementwise", expr="({0} + {1})")
        class add:
            def forward(xp, a, b):
                return a + b


def test_attrs_are_hashable_so_graphs_can_compare_nodes():
    for name in SAMPLES:
        for inputs, attrs in SAMPLES[name]:
            if name in ("getitem", "getitem_grad", "setitem", "setitem_winners"):
                continue  # index arrays are compared by the graph code, not hashed
            hash(tuple(sorted(attrs.items())))
