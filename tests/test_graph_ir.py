"""The graph IR that passes rewrite: ops with effects, local numbering, immutability, helpers."""
from __future__ import annotations

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad.errors import LabgradError
from labgrad.graph.executable import Executable
from labgrad.graph.ir import Attrs, Graph, GraphNode, Node, rewrite
from labgrad.ops import GRAPH_OPS, REGISTRY, Op, get_op


def _program():
    x = lg.placeholder((None, 3), name="x")
    w = lg.Variable(lg.tensor(np.arange(6.0).reshape(3, 2), dtype="float32"), name="w")
    y = F.relu(x @ w) * 2 + 1
    return x, w, y


# ---------------------------------------------------------------- ops and effects

def test_every_node_applies_a_registered_op_with_declared_effects():
    x, w, y = _program()
    upd = lg.assign(w, w * 0.5)
    g = lg.compile([y, upd], passes=()).graph
    assert all(isinstance(n.op, Op) for n in g.nodes)
    by_kind = {n.kind: n.op for n in g.nodes}
    assert by_kind["placeholder"] is GRAPH_OPS["placeholder"] and by_kind["placeholder"].effects == {"reads_input"}
    assert by_kind["variable"].reads_state and not by_kind["variable"].pure
    assert by_kind["assign"].writes_state and by_kind["assign"] is GRAPH_OPS["assign"]
    assert get_op("mul").pure and get_op("mul").kind == "op"
    # the graph-only ops stay out of the eager registry; get_op finds them both
    assert "placeholder" not in REGISTRY and get_op("placeholder") is GRAPH_OPS["placeholder"]
    assert get_op("assign") is REGISTRY["assign"] and REGISTRY["assign"].writes_state


def test_control_flow_nodes_are_ops_too():
    x = lg.placeholder((3,), name="x")
    y = lg.cond(x.sum() > 0, lambda a: a * 2, lambda a: -a, x)
    i, z = lg.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * 2), (lg.tensor(0), y))
    g = lg.compile(z.detach(), passes=()).graph
    kinds = [n.kind for n in g.nodes]
    for k in ("cond", "while", "get", "stop_gradient"):
        assert k in kinds
        assert next(n for n in g.nodes if n.kind == k).op is GRAPH_OPS[k]
    sub = next(n for n in g.nodes if n.kind == "cond").subgraphs["true"]
    assert sub.inputs[0].kind == "arg" and sub.inputs[0].op.effects == {"reads_input"}


def test_unknown_ops_raise_on_unknown_effects():
    with pytest.raises(ValueError, match="unknown effect"):
        Op("bad", "elementwise", forward=lambda xp, a: a, infer=None, effects=("teleports",))


def test_device_is_part_of_the_aval():
    x, w, y = _program()
    g = lg.compile(y).graph
    for n in g.nodes:
        assert n.aval.device == n.device and str(n.device) == "cpu"


# ---------------------------------------------------------------- numbering

def test_nodes_are_numbered_in_their_graph_inputs_first_and_the_same_every_time():
    texts, ids = [], []
    for _ in range(2):
        x, w, y = _program()
        g = lg.compile(y, passes=()).graph
        assert [n.id for n in g.nodes] == list(range(len(g.nodes)))
        assert g.nodes[:1] == g.inputs
        texts.append(str(g))
        ids.append([(n.id, n.op_name) for n in g.nodes])
    assert texts[0] == texts[1] and ids[0] == ids[1]


def test_each_subgraph_numbers_its_own_nodes():
    x = lg.placeholder((3,), name="x")
    y = lg.cond(x.sum() > 0, lambda a: a * 2 + 1, lambda a: -a, x)
    g = lg.compile(y, passes=()).graph
    for sub in next(n for n in g.nodes if n.kind == "cond").subgraphs.values():
        assert [n.id for n in sub.nodes] == list(range(len(sub.nodes)))
        sub.verify()


def test_a_symbol_finds_its_node_in_the_graph():
    x, w, y = _program()
    g = lg.compile(y, passes=()).graph
    assert g.node_of(y).op_name == "add" and g.index(y.node) == g.node_of(y).id == len(g.nodes) - 1
    assert g.node_of(x) is g.inputs[0] and g.node_of(g.inputs[0]) is g.inputs[0]
    with pytest.raises(KeyError):
        g.node_of(lg.placeholder((1,)))


# ---------------------------------------------------------------- immutability

def test_graph_nodes_and_their_attributes_cannot_change():
    x, w, y = _program()
    g = lg.compile(y.sum(axis=0)).graph
    node = g.nodes[-1]
    assert isinstance(node, GraphNode)
    with pytest.raises(AttributeError, match="immutable"):
        node.inputs = ()
    with pytest.raises(TypeError):
        node.attrs["axis"] = 1
    # building a graph from a graph's nodes copies them: the first graph is untouched
    before = str(g)
    g2 = g.map(lambda n, ins: None)
    assert str(g2) == before and g2.nodes[1] is not g.nodes[1] and str(g) == before


def test_builder_nodes_stay_mutable_for_symbols_and_the_tracer():
    x = lg.placeholder((2,), name="x")
    s = x * 2
    s.node.name = "renamed"          # builder side: fine
    assert lg.compile(s, passes=()).graph.nodes[-1].name == "renamed"


def test_attrs_are_hashable_and_compare_by_value_including_index_arrays():
    a = Attrs({"index": (np.array([0, 2]), slice(None, 1)), "axis": 1})
    b = Attrs({"axis": 1, "index": (np.array([0, 2]), slice(None, 1))})
    c = Attrs({"index": (np.array([0, 3]), slice(None, 1)), "axis": 1})
    assert a == b and hash(a) == hash(b) and a != c
    assert len({a, b, c}) == 2
    assert Attrs({"v": 1}) != Attrs({"v": 1.0})   # 1 and 1.0 give different dtypes
    x = lg.placeholder((4, 3), name="x")
    y = x[np.array([0, 2])] + x[np.array([0, 2])]
    g = lg.compile(y, passes=()).graph
    gets = [n for n in g.nodes if n.op_name == "getitem"]
    assert len(gets) == 2 and gets[0].attrs == gets[1].attrs and hash(gets[0].attrs) == hash(gets[1].attrs)


# ---------------------------------------------------------------- helpers

def test_users_copy_and_replace_all_uses():
    a = lg.placeholder((3,), name="a")
    b = a * 2
    c = b + b
    d = b.exp()
    g = lg.compile([c, d], passes=()).graph
    mul = g.node_of(b)
    assert [u.op_name for u in g.users(mul)] == ["add", "exp"]
    assert g.users()[g.inputs[0].id] == [mul]
    copy = g.copy()
    assert str(copy) == str(g) and copy.nodes[0] is not g.nodes[0]
    neg = g.inputs[0]
    swapped = g.replace_all_uses(mul, neg)   # every use of a * 2 now reads a
    swapped.verify()
    f = lg.compile([c, d], passes=())
    run = Executable(swapped, single=False)
    x = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    got_c, got_d = run(x)
    np.testing.assert_allclose(got_c.numpy(), x + x)
    np.testing.assert_allclose(got_d.numpy(), np.exp(x), rtol=1e-6)
    np.testing.assert_allclose(f(x)[0].numpy(), 4 * x)   # the original still computes 4a


def test_rewrite_places_new_nodes_before_their_users():
    a = lg.placeholder((3,), name="a")
    y = (a + 1).exp()
    g = lg.compile(y, passes=()).graph

    def split(node, ins):   # a + 1  ->  (a * 1) + 1, with a brand-new mul node
        if node.op_name == "add":
            mul = Node(get_op("mul"), (ins[0], 1), aval=node.aval, device=node.device)
            return node.replace(inputs=(mul, 1))
        return None

    new, env, converted = rewrite(g, split)
    new.verify()
    assert [n.op_name for n in new.nodes] == ["placeholder", "mul", "add", "exp"]
    assert str(g).count("mul") == 0   # the old graph did not change


def test_verify_names_what_is_broken():
    a = lg.placeholder((3,), name="a")
    b = a * 2
    g = lg.compile(b, passes=()).graph
    assert g.verify() is g
    # a node whose aval disagrees with its op's infer rule
    bad = Node(get_op("mul"), (a.node, 2), aval=lg.ops.Aval((4,), "float32"))
    with pytest.raises(LabgradError, match="inputs give"):
        Graph([a.node, bad], [a.node], [bad]).verify()
    # a node using a node that comes after it cannot even be made into a graph
    late = Node(get_op("neg"), (a.node,), aval=a.node.aval)
    user = Node(get_op("exp"), (late,), aval=a.node.aval)
    with pytest.raises(LabgradError, match="not listed before"):
        Graph([a.node, user, late], [a.node], [user])
    # a graph whose nodes were tampered with
    broken = lg.compile(b, passes=()).graph
    object.__setattr__(broken.nodes[1], "id", 7)
    with pytest.raises(LabgradError, match="numbered 7"):
        broken.verify()


def test_graph_cost_sums_the_ops_cost_rules():
    a = lg.placeholder((1000,), name="a")
    g = lg.compile(a * 2, passes=()).graph
    assert g.cost()["bytes"] == 4000 + 4000   # reads a, writes the product (float32)
