"""The Tensor API: creation, conversion, printing, operators, in-place updates, indexing, joining."""
from __future__ import annotations

import re

import numpy as np
import pytest

import labgrad as lg


# ---------------------------------------------------------------- creation

@pytest.mark.parametrize("make", [lg.zeros, lg.ones, lg.empty, lg.rand, lg.randn])
def test_shape_as_varargs_or_tuple(make, device):
    for t in (make(2, 3, device=device), make((2, 3), device=device), make([2, 3], device=device)):
        assert t.shape == (2, 3) and t.dtype == np.float32 and t.device == device
    assert make(device=device).shape == ()


def test_creation_values_and_dtypes(device):
    assert lg.zeros(2, device=device).tolist() == [0.0, 0.0]
    assert lg.ones(2, 2, dtype="float64", device=device).dtype == np.float64
    assert lg.full((2,), 7, device=device).tolist() == [7, 7]
    assert lg.full((2,), 7, device=device).dtype == np.int64
    assert lg.full((2,), 1.5, device=device).dtype == np.float32
    assert lg.eye(3, device=device).numpy().trace() == 3.0
    np.testing.assert_allclose(lg.linspace(0, 1, 5, device=device).numpy(), [0, 0.25, 0.5, 0.75, 1])


def test_tensor_from_data_infers_dtype():
    assert lg.tensor(1.5).dtype == np.float32
    assert lg.tensor([[1.0, 2.0]]).dtype == np.float32
    assert lg.tensor([1, 2]).dtype == np.int64
    assert lg.tensor([True]).dtype == np.bool_
    assert lg.tensor(np.zeros(2, np.float64)).dtype == np.float64     # arrays keep their dtype
    assert lg.tensor(np.zeros(2, np.int32)).dtype == np.int32
    assert lg.tensor([1, 2], dtype="float64").dtype == np.float64


def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0])
    t = lg.tensor(a)
    a[0] = 100
    assert t.tolist() == [1.0, 2.0]
    u = lg.tensor(t)
    u[0] = 5.0
    assert t.tolist() == [1.0, 2.0]
    v = lg.tensor(t.data)
    v[1] = 5.0
    assert t.tolist() == [1.0, 2.0]


def test_set_default_dtype():
    lg.set_default_dtype("float64")
    assert lg.tensor([1.0]).dtype == np.float64 and lg.zeros(1).dtype == np.float64
    with pytest.raises(lg.DTypeError, match="floating"):
        lg.set_default_dtype("int32")


def test_arange():
    assert lg.arange(4).tolist() == [0, 1, 2, 3] and lg.arange(4).dtype == np.int64
    assert lg.arange(1, 7, 2).tolist() == [1, 3, 5]
    assert lg.arange(0.0, 1.0, 0.5).dtype == np.float32
    assert lg.arange(3, dtype="float64").dtype == np.float64


def test_requires_grad_on_creation(device):
    for t in (lg.zeros(2, requires_grad=True, device=device), lg.randn(2, requires_grad=True, device=device),
              lg.tensor([1.0], requires_grad=True, device=device)):
        assert t.requires_grad and t.is_leaf and t.grad is None


def test_like_functions_copy_shape_dtype_device(device):
    x = lg.randn(2, 3, dtype="float64", device=device)
    for t in (lg.zeros_like(x), lg.ones_like(x), lg.rand_like(x), lg.randn_like(x), lg.full_like(x, 2.0)):
        assert t.shape == (2, 3) and t.dtype == np.float64 and t.device == device and not t.requires_grad
    assert lg.ones_like(x, dtype="int64").dtype == np.int64
    assert lg.zeros_like(x, requires_grad=True).requires_grad


def test_random_is_reproducible_per_seed(device):
    lg.manual_seed(3)
    a = lg.randn(5, device=device).numpy()
    lg.manual_seed(3)
    b = lg.randn(5, device=device).numpy()
    lg.manual_seed(4)
    c = lg.randn(5, device=device).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    r = lg.rand(1000, device=device).numpy()
    assert r.min() >= 0 and r.max() < 1
    n = lg.randint(0, 3, (1000,), device=device)
    assert n.dtype == np.int64 and set(np.unique(n.numpy())) == {0, 1, 2}


# ---------------------------------------------------------------- conversion

def test_item_numpy_tolist(device):
    t = lg.tensor([[1.5, 2.5]], device=device)
    assert isinstance(t.numpy(), np.ndarray) and t.numpy().shape == (1, 2)
    assert t.tolist() == [[1.5, 2.5]]
    assert lg.tensor([3.25], device=device).item() == 3.25
    assert isinstance(lg.tensor(3, device=device).item(), int)
    with pytest.raises(ValueError, match="one element"):
        t.item()
    assert float(lg.tensor(2.0)) == 2.0 and int(lg.tensor(7)) == 7
    assert np.asarray(t).shape == (1, 2)


def test_bool_of_a_tensor():
    assert bool(lg.tensor(1.0)) and not bool(lg.tensor([0.0]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(lg.tensor([1.0, 2.0]))


def test_detach_shares_memory_and_cuts_the_tape():
    x = lg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    d[0] = 10.0
    assert y.tolist()[0] == 10.0


def test_astype_and_to_dtype():
    x = lg.tensor([1.7, -2.2])
    assert x.astype("int64").tolist() == [1, -2]
    assert x.to("float64").dtype == np.float64
    assert x.astype("float32") is x
    assert x.double().dtype == np.float64 and x.long().dtype == np.int64


def test_to_same_device_is_identity(device):
    x = lg.randn(3, device=device)
    assert x.to(device) is x


def test_clone_is_a_copy():
    x = lg.tensor([1.0])
    c = x.clone()
    c[0] = 3.0
    assert x.item() == 1.0


# ---------------------------------------------------------------- printing

def test_repr_is_deterministic_and_has_no_addresses():
    lg.manual_seed(0)
    x = lg.randn(2, 3, requires_grad=True)
    text = repr(x * 2)
    lg.manual_seed(0)
    assert repr(lg.randn(2, 3, requires_grad=True) * 2) == text
    assert not re.search(r"0x[0-9a-f]{6,}", text)
    assert text.endswith("grad_fn=<mul>)")


def test_repr_forms():
    assert repr(lg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(lg.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(lg.tensor([1.0], dtype="float64")) == "tensor([1.], dtype=float64)"
    assert repr(lg.tensor([True])) == "tensor([ True])"
    assert repr(lg.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(lg.tensor([1.0], name="w")) == "tensor([1.], name='w')"
    assert repr(lg.tensor(2.5)) == "tensor(2.5)" and repr(lg.tensor(1 / 3)) == "tensor(0.3333)"
    assert str(lg.tensor([1.0])) == repr(lg.tensor([1.0]))
    assert f"{lg.tensor(2.0):.2f}" == "2.00"


# ---------------------------------------------------------------- operators

def test_reflected_operators_with_python_scalars():
    x = lg.tensor([1.0, 2.0])
    assert (2 + x).tolist() == [3.0, 4.0]
    assert (2 - x).tolist() == [1.0, 0.0]
    assert (2 * x).tolist() == [2.0, 4.0]
    assert (2 / x).tolist() == [2.0, 1.0]
    assert (2 ** x).tolist() == [2.0, 4.0]
    assert (-x).tolist() == [-1.0, -2.0] and (+x) is x and abs(-x).tolist() == [1.0, 2.0]


def test_numpy_arrays_on_either_side_give_tensors():
    x = lg.tensor([1.0, 2.0], requires_grad=True)
    a = np.array([10.0, 20.0], dtype=np.float32)
    for y in (a + x, x + a, a - x, a * x, a / x, x @ a, a @ x, a ** x):
        assert isinstance(y, lg.Tensor) and y.requires_grad
    assert (a - x).tolist() == [9.0, 18.0]
    (a * x).sum().backward()
    assert x.grad.tolist() == [10.0, 20.0]


def test_numpy_scalars_act_like_python_numbers():
    x = lg.tensor([1.0, 2.0])
    assert (x * np.float64(2)).tolist() == [2.0, 4.0] and (np.int64(1) + x).tolist() == [2.0, 3.0]


def test_matmul_operator_and_methods():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose((lg.tensor(a) @ lg.tensor(b)).numpy(), a @ b)
    np.testing.assert_allclose(lg.tensor(a).matmul(lg.tensor(b)).numpy(), a @ b)
    assert lg.tensor(a).T.shape == (3, 2) and lg.tensor(a).mT.shape == (3, 2)


def test_shape_methods():
    x = lg.arange(24).reshape(2, 3, 4)
    assert x.reshape(-1).shape == (24,) and x.reshape((4, -1)).shape == (4, 6) and x.view(6, 4).shape == (6, 4)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    assert x.transpose(0, 2).shape == (4, 3, 2) and x.permute(1, 2, 0).shape == (3, 4, 2)
    assert x.swapaxes(0, 1).shape == (3, 2, 4)
    assert x.unsqueeze(1).shape == (2, 1, 3, 4) and x.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert x[:, :1].squeeze(1).shape == (2, 4) and lg.zeros(1, 3, 1).squeeze().shape == (3,)
    assert lg.zeros(3, 1).broadcast_to(2, 3, 4).shape == (2, 3, 4) and lg.zeros(3, 1).expand(-1, 5).shape == (3, 5)
    np.testing.assert_array_equal(x.transpose(2, 0, 1).numpy(), np.arange(24).reshape(2, 3, 4).transpose(2, 0, 1))
    assert len(x) == 2 and [t.shape for t in x] == [(3, 4), (3, 4)]


def test_reduction_methods_accept_dim_alias():
    x = lg.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert x.sum(dim=0).tolist() == [4.0, 7.0] and x.mean(axis=1).tolist() == [1.5, 4.0]
    assert x.max(dim=1, keepdims=True).shape == (2, 1)
    assert x.std().item() == pytest.approx(np.std([1, 2, 3, 5]), rel=1e-6)
    with pytest.raises(TypeError, match="not both"):
        x.sum(axis=0, dim=0)


# ---------------------------------------------------------------- in-place updates

def test_inplace_on_plain_tensors():
    x = lg.tensor([1.0, 2.0])
    data = x.data
    x += 1
    x *= 4
    x -= 2
    x /= 2
    assert x.tolist() == [3.0, 5.0] and x.data is data
    x.zero_()
    assert x.tolist() == [0.0, 0.0]
    x.fill_(2.5).copy_(np.array([7.0, 8.0]))
    assert x.tolist() == [7.0, 8.0]


def test_inplace_refused_on_a_leaf_that_requires_grad():
    w = lg.tensor([1.0], requires_grad=True)
    with pytest.raises(lg.GradError, match="(?s)leaf that requires grad.*no_grad"):
        w += 1
    with pytest.raises(lg.GradError, match="no_grad"):
        w[0] = 2.0


def test_inplace_refused_on_graph_tensors():
    w = lg.tensor([1.0], requires_grad=True)
    y = w * 2
    with pytest.raises(lg.GradError, match="part of the recorded graph"):
        y *= 3
    c = lg.tensor([1.0])
    with pytest.raises(lg.GradError):
        c += w        # would silently make c depend on w


def test_inplace_allowed_inside_no_grad():
    w = lg.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with lg.no_grad():
        w -= 0.25 * w.grad
        w[1] = 0.0
    assert w.tolist() == [0.5, 0.0] and w.requires_grad and w.is_leaf


def test_inplace_cannot_change_dtype_kind_or_shape():
    i = lg.tensor([1, 2])
    with pytest.raises(lg.DTypeError, match="int64"):
        i += 0.5
    x = lg.zeros(2)
    with pytest.raises(lg.ShapeError, match="cannot change shape"):
        x += lg.ones(3, 2)


def test_modifying_a_saved_input_fails_at_backward():
    x = lg.tensor([1.0, 2.0], requires_grad=True)
    c = lg.tensor([3.0, 4.0])
    loss = (x * c).sum()
    c += 1
    with pytest.raises(lg.GradError, match="modified in place after mul used it"):
        loss.backward()


def test_modifying_a_saved_output_fails_at_backward():
    """exp saves its output for backward; changing that tensor must not give a silent wrong grad."""
    x = lg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    with lg.no_grad():
        y *= 2
    with pytest.raises(lg.GradError, match="backward of exp needs the output"):
        y.backward(lg.ones(2))


def test_modifying_after_backward_is_fine():
    x = lg.tensor([1.0, 2.0], requires_grad=True)
    c = lg.tensor([3.0, 4.0])
    (x * c).sum().backward()
    c += 1
    assert x.grad.tolist() == [3.0, 4.0]


# ---------------------------------------------------------------- indexing

def test_basic_indexing_matches_numpy(device):
    a = np.arange(60.0).reshape(3, 4, 5)
    x = lg.tensor(a, device=device)
    for index in [1, -1, (1, 2), slice(None, None, -1), (slice(1, None), slice(None, None, 2)),
                  (Ellipsis, 0), (None, 1), (slice(None), None, Ellipsis, 2), ()]:
        np.testing.assert_array_equal(x[index].numpy(), a[index], err_msg=str(index))


def test_integer_array_and_mask_indexing_match_numpy(device):
    a = np.arange(12.0).reshape(3, 4)
    x = lg.tensor(a, device=device)
    np.testing.assert_array_equal(x[[2, 0, 2]].numpy(), a[[2, 0, 2]])
    np.testing.assert_array_equal(x[lg.tensor([1, 1], device=device), 2].numpy(), a[[1, 1], 2])
    np.testing.assert_array_equal(x[[0, 2], [1, 3]].numpy(), a[[0, 2], [1, 3]])
    np.testing.assert_array_equal(x[x > 5].numpy(), a[a > 5])
    np.testing.assert_array_equal(x[np.array([True, False, True])].numpy(), a[[True, False, True]])


def test_repeated_indices_accumulate_gradient(device):
    x = lg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    x[[0, 0, 2, 0]].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


def test_mask_and_slice_gradients():
    x = lg.tensor([[1.0, -2.0], [3.0, -4.0]], requires_grad=True)
    (x[x > 0] * 2).sum().backward()
    assert x.grad.tolist() == [[2.0, 0.0], [2.0, 0.0]]
    y = lg.tensor(np.arange(6.0), requires_grad=True)
    (y[1::2] ** 2).sum().backward()
    assert y.grad.tolist() == [0.0, 2.0, 0.0, 6.0, 0.0, 10.0]


def test_float_index_is_refused():
    with pytest.raises(lg.DTypeError, match="integers or bools"):
        lg.zeros(3)[lg.tensor([0.0, 1.0])]
    with pytest.raises(lg.DTypeError, match="integers or bools"):
        lg.zeros(3)[[0.5]]


def test_setitem_writes_values():
    x = lg.zeros(2, 3)
    x[0] = 1.0
    x[1, [0, 2]] = lg.tensor([5.0, 6.0])
    assert x.tolist() == [[1.0, 1.0, 1.0], [5.0, 0.0, 6.0]]


# ---------------------------------------------------------------- joining, splitting, padding

def test_concatenate_stack_split_pad(device):
    a = lg.tensor([[1.0, 2.0]], device=device)
    b = lg.tensor([[3.0, 4.0]], device=device)
    assert lg.concatenate([a, b]).tolist() == [[1, 2], [3, 4]]
    assert lg.cat([a, b], dim=1).tolist() == [[1, 2, 3, 4]]
    with pytest.raises(TypeError, match="not both"):
        lg.cat([a, b], axis=0, dim=1)
    assert lg.stack([a, b]).shape == (2, 1, 2) and lg.stack([a, b], axis=-1).shape == (1, 2, 2)
    parts = lg.split(lg.arange(10, device=device), 5)
    assert [p.tolist() for p in parts] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    parts = lg.split(lg.arange(10, device=device).reshape(2, 5), [1, 4], axis=1)
    assert [p.shape for p in parts] == [(2, 1), (2, 4)]
    assert lg.pad(lg.ones(2, device=device), 1).tolist() == [0, 1, 1, 0]
    assert lg.pad(lg.ones(1, 1, device=device), ((1, 0), (0, 2)), value=9.0).tolist() == [[9, 9, 9], [1, 9, 9]]


def test_join_gradients_route_back():
    a = lg.tensor([1.0, 2.0], requires_grad=True)
    b = lg.tensor([3.0], requires_grad=True)
    (lg.cat([a, b]) * lg.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert a.grad.tolist() == [1.0, 2.0] and b.grad.tolist() == [3.0]
    c = lg.tensor(np.arange(6.0), requires_grad=True)
    p, q = lg.split(c, [2, 4])
    (p.sum() + 2 * q.sum()).backward()
    assert c.grad.tolist() == [1, 1, 2, 2, 2, 2]


def test_join_errors():
    with pytest.raises(lg.ShapeError, match="must match except along axis"):
        lg.cat([lg.zeros(2, 3), lg.zeros(3, 2)])
    with pytest.raises(lg.ShapeError, match="same shape"):
        lg.stack([lg.zeros(2), lg.zeros(3)])
    with pytest.raises(lg.ShapeError, match="add up to 5"):
        lg.split(lg.zeros(6), [2, 3])
    with pytest.raises(lg.ShapeError, match="cannot divide"):
        lg.split(lg.zeros(10), 3)
