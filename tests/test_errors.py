"""Errors teach: what went wrong (op, shapes, dtypes, devices), where in *your* code, what to do."""
from __future__ import annotations

import os

import pytest

import labgrad as lg
import labgrad.functional as F

THIS_FILE = os.path.basename(__file__)


def _raise(fn, error):
    """Call ``fn`` (a one-line function defined in this file); return the message and fn's line."""
    with pytest.raises(error) as info:
        fn()
    return str(info.value), fn.__code__.co_firstlineno + 1


def _points_at_the_user_line(message, line, source):
    assert f"at {THIS_FILE}, line {line}" in message, message
    assert source in message, message
    assert "labgrad/" not in message.split(" at ")[-1], "the location must be the user's line, not labgrad's"


def test_error_classes_are_also_builtin_errors():
    assert issubclass(lg.ShapeError, ValueError) and issubclass(lg.ShapeError, lg.LabgradError)
    assert issubclass(lg.DTypeError, TypeError) and issubclass(lg.DTypeError, lg.LabgradError)
    assert issubclass(lg.DeviceError, RuntimeError) and issubclass(lg.GradError, RuntimeError)
    assert issubclass(lg.TraceError, lg.LabgradError) and issubclass(lg.CheckpointError, lg.LabgradError)


def test_broadcast_error_names_op_shapes_line_and_fix():
    def bad():
        return lg.ones(2, 3) * lg.ones(4)
    message, line = _raise(bad, lg.ShapeError)
    assert message.startswith("mul: cannot broadcast shapes (2, 3) and (4,)")
    assert "at axis -1 the sizes are 3 and 4" in message
    assert "x[:, None]" in message or "reshape" in message, "the message should suggest a fix"
    _points_at_the_user_line(message, line, "return lg.ones(2, 3) * lg.ones(4)")


def test_broadcast_error_inside_a_tracked_computation():
    x = lg.ones(3, requires_grad=True)

    def bad():
        return x.exp() + lg.ones(2, 1, 4)
    message, line = _raise(bad, lg.ShapeError)
    assert "add: cannot broadcast shapes (3,) and (2, 1, 4)" in message
    _points_at_the_user_line(message, line, "x.exp() + lg.ones(2, 1, 4)")


def test_matmul_error_explains_which_axes():
    def bad():
        return lg.ones(2, 3) @ lg.ones(2, 5)
    message, line = _raise(bad, lg.ShapeError)
    assert "matmul: shapes (2, 3) and (2, 5) do not line up" in message
    assert "last axis of the left operand (3)" in message
    assert "second-to-last axis of the right one (2)" in message
    assert "transpose" in message
    _points_at_the_user_line(message, line, "lg.ones(2, 3) @ lg.ones(2, 5)")


def test_matmul_with_a_vector_says_only_axis():
    message, _ = _raise(lambda: lg.ones(2, 3) @ lg.ones(4), lg.ShapeError)
    assert "the only axis of the right one (4)" in message


def test_matmul_refuses_scalars_and_suggests_mul():
    message, _ = _raise(lambda: lg.tensor(2.0) @ lg.ones(2), lg.ShapeError)
    assert "use * to scale" in message


def test_reshape_size_mismatch():
    def bad():
        return lg.ones(2, 3).reshape(4, 2)
    message, line = _raise(bad, lg.ShapeError)
    assert "cannot reshape (2, 3) (6 elements) to (4, 2) (8 elements)" in message
    _points_at_the_user_line(message, line, ".reshape(4, 2)")

    def bad_inferred():
        return lg.ones(2, 3).reshape(4, -1)
    message, line = _raise(bad_inferred, lg.ShapeError)
    assert "6 is not a multiple of 4" in message
    _points_at_the_user_line(message, line, ".reshape(4, -1)")
    message, _ = _raise(lambda: lg.ones(6).reshape(-1, -1), lg.ShapeError)
    assert "only one size can be -1" in message


def test_axis_out_of_range():
    message, _ = _raise(lambda: lg.ones(2, 3).sum(axis=2), lg.ShapeError)
    assert "axis 2 is out of range" in message and "-2..1" in message


def test_dtype_error_names_the_op_and_dtypes():
    def bad():
        return lg.tensor([True]) - lg.tensor([False])
    message, line = _raise(bad, lg.DTypeError)
    assert "sub" in message and "bool" in message
    _points_at_the_user_line(message, line, "lg.tensor([True]) - lg.tensor([False])")


def test_cross_entropy_wants_integer_targets():
    def bad():
        return F.cross_entropy(lg.ones(2, 3), lg.tensor([0.0, 1.0]))
    message, line = _raise(bad, lg.DTypeError)
    assert "targets must be integer class indices" in message and "astype('int64')" in message
    _points_at_the_user_line(message, line, "F.cross_entropy(")


def test_unsupported_input_type():
    message, _ = _raise(lambda: lg.ones(2) + "1", TypeError)
    assert "add: cannot use an input of type str" in message


def test_conv2d_argument_errors():
    def channels():
        return F.conv2d(lg.ones(1, 3, 5, 5), lg.ones(4, 2, 3, 3))
    message, line = _raise(channels, lg.ShapeError)
    assert "the input has 3 channels" in message and "expects 2" in message and "NCHW" in message
    _points_at_the_user_line(message, line, "F.conv2d(lg.ones(1, 3, 5, 5), lg.ones(4, 2, 3, 3))")

    message, _ = _raise(lambda: F.conv2d(lg.ones(3, 5, 5), lg.ones(4, 3, 3, 3)), lg.ShapeError)
    assert "(N, C, H, W)" in message and "x[None]" in message
    message, _ = _raise(lambda: F.conv2d(lg.ones(1, 3, 5, 5), lg.ones(4, 3, 3)), lg.ShapeError)
    assert "(C_out, C_in, kh, kw)" in message
    message, _ = _raise(lambda: F.conv2d(lg.ones(1, 3, 5, 5), lg.ones(4, 3, 3, 3), lg.ones(3)), lg.ShapeError)
    assert "bias must have shape (4,)" in message

    def too_big():
        return F.conv2d(lg.ones(1, 1, 4, 4), lg.ones(1, 1, 7, 3), padding=1)
    message, line = _raise(too_big, lg.ShapeError)
    assert "kernel is bigger than the padded input along the height" in message and "4 + 2*1" in message
    _points_at_the_user_line(message, line, "padding=1")


def test_pool_argument_errors():
    message, _ = _raise(lambda: F.max_pool2d(lg.ones(1, 1, 4, 4), 2, padding=2), lg.ShapeError)
    assert "more than half the kernel" in message
    message, _ = _raise(lambda: F.avg_pool2d(lg.ones(4, 4), 2), lg.ShapeError)
    assert "(N, C, H, W)" in message
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        F.max_pool2d(lg.ones(1, 1, 4, 4), 2, stride=0)
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1 or a pair"):
        F.avg_pool2d(lg.ones(1, 1, 4, 4), (2, 2, 2))


def test_unfold_called_directly_explains_a_kernel_that_does_not_fit():
    def bad():
        return lg.ops.get_op("unfold")(lg.ones(1, 1, 3, 3), kernel_size=(4, 1), stride=(1, 1),
                                       padding=(0, 0), dilation=(1, 1))
    message, line = _raise(bad, lg.ShapeError)
    assert "unfold: the kernel is bigger than the padded input" in message
    _points_at_the_user_line(message, line, "return lg.ops.get_op(\"unfold\")")


def test_device_mismatch_names_the_op_and_both_devices(fake_cuda):
    a = lg.ones(2)
    b = lg.ones(2, device=fake_cuda)

    def bad():
        return a * b
    message, line = _raise(bad, lg.DeviceError)
    assert message.startswith("mul: inputs are on different devices: cpu and cuda:7")
    assert "float32[2] on cpu" in message and "float32[2] on cuda:7" in message
    assert "y = y.to('cpu')" in message
    _points_at_the_user_line(message, line, "return a * b")


def test_index_errors_say_which_op():
    message, _ = _raise(lambda: lg.ones(2, 3)[5], lg.LabgradError)
    assert "getitem" in message and "out of bounds" in message


def test_errors_do_not_print_addresses():
    for fn in (lambda: lg.ones(2) + lg.ones(3), lambda: lg.ones(2).reshape(3),
               lambda: (lg.ones(1) * 2).backward()):
        with pytest.raises(lg.LabgradError) as info:
            fn()
        assert "0x" not in str(info.value) and "object at" not in str(info.value)


def test_errors_from_a_notebook_cell_name_the_cell_line_not_the_kernels_temp_file():
    from labgrad.errors import format_location

    text = format_location(("/tmp/ipykernel_4242/2771283491.py", 3, "y = a + b"))
    assert text == "\n  at line 3 of this cell:\n    y = a + b"
    assert "2771283491" not in text
    assert format_location(("/home/me/model.py", 12, "h = x @ w")) == "\n  at model.py, line 12:\n    h = x @ w"
