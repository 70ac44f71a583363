"""Devices and transfers.

Most of this runs without a GPU: ``fake_cuda`` (see conftest.py) registers a second device,
``cuda:7``, whose arrays live in host memory, so transfers, device checks and gradients that
cross devices are exercised on every machine. Tests taking ``device`` run on each real device.
"""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import labgrad as lg
import labgrad.backends as backends
import labgrad.functional as F
from labgrad.backends import CPU, Device


# ---------------------------------------------------------------- devices as values

def test_device_parsing_and_printing():
    assert lg.device("cpu") == Device("cpu") and str(lg.device("cpu")) == "cpu"
    assert lg.device("cuda") == Device("cuda", 0) == "cuda:0"
    assert lg.device("GPU:1") == Device("cuda", 1)
    assert repr(lg.device("cuda:2")) == "device('cuda:2')"
    assert lg.device(Device("cpu")) == "cpu"
    assert len({lg.device("cuda:0"), Device("cuda", 0)}) == 1


@pytest.mark.parametrize("spec,match", [("tpu", "unknown device"), ("cuda:x", "a number"), ("cpu:1", "one CPU")])
def test_bad_device_strings(spec, match):
    with pytest.raises(ValueError, match=match):
        lg.device(spec)
    with pytest.raises(TypeError, match="a device is a string"):
        lg.device(0)


def test_available_devices_starts_with_cpu():
    devices = lg.available_devices()
    assert devices[0] == "cpu"
    assert all(d.type == "cuda" for d in devices[1:])
    assert len(devices) == 1 + lg.cuda.device_count()
    assert lg.cuda.is_available() == (lg.cuda.device_count() > 0)


# ---------------------------------------------------------------- backend-independent behaviour

def test_tensors_live_where_they_are_made(device):
    x = lg.randn(2, 3, device=device)
    assert x.device == device
    assert (x * 2 + 1).device == device
    assert x.sum().device == device and (x @ x.T).device == device
    assert isinstance(x.numpy(), np.ndarray)


def test_training_step_on_each_device(device):
    lg.manual_seed(0)
    w = lg.randn(4, 3, device=device, requires_grad=True)
    xb = lg.randn(8, 4, device=device)
    yb = lg.randint(0, 3, (8,), device=device)
    loss = F.cross_entropy(F.relu(xb @ w), yb)
    loss.backward()
    assert w.grad.device == device and w.grad.shape == (4, 3)
    with lg.no_grad():
        w -= 0.1 * w.grad
    assert np.isfinite(w.numpy()).all()


def test_conv_and_pool_on_each_device(device):
    x = lg.randn(2, 3, 6, 6, device=device, requires_grad=True)
    w = lg.randn(4, 3, 3, 3, device=device, requires_grad=True)
    y = F.max_pool2d(F.conv2d(x, w, padding=1), 2)
    y.sum().backward()
    assert y.device == device and x.grad.device == device and w.grad.shape == (4, 3, 3, 3)


# ---------------------------------------------------------------- transfers (fake second device)

def test_to_moves_and_copies(fake_cuda):
    x = lg.tensor([1.0, 2.0])
    y = x.to(fake_cuda)
    assert y.device == fake_cuda and y.tolist() == [1.0, 2.0]
    y[0] = 9.0
    assert x.tolist() == [1.0, 2.0], "a transfer copies"
    assert y.to("cpu").device == "cpu" and y.cpu().device == "cpu"
    assert x.cuda(7).device == "cuda:7"
    assert y.to(fake_cuda) is y


def test_gradients_flow_back_across_a_transfer(fake_cuda):
    x = lg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.to(fake_cuda)
    assert y.grad_fn is not None and y.grad_fn.op.name == "to_device"
    loss = (y * y).sum().to("cpu")
    loss.backward()
    assert x.grad.device == "cpu"
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


def test_gradcheck_across_devices(fake_cuda):
    assert lg.testing.gradcheck(lambda a: (a.to(fake_cuda).tanh() * 3).to("cpu"), [np.array([0.1, -0.4, 0.8])],
                                order=2)


def test_creation_and_random_on_the_fake_device(fake_cuda):
    for t in (lg.zeros(2, device=fake_cuda), lg.randn(2, device=fake_cuda), lg.arange(3, device=fake_cuda),
              lg.tensor([1.0], device=fake_cuda), lg.zeros_like(lg.zeros(2, device=fake_cuda))):
        assert t.device == fake_cuda
    lg.manual_seed(1)
    a = lg.randn(3, device=fake_cuda).numpy()
    lg.manual_seed(1)
    np.testing.assert_array_equal(a, lg.randn(3, device=fake_cuda).numpy())


def test_mixing_devices_is_refused(fake_cuda):
    w = lg.ones(2, requires_grad=True)
    x = lg.ones(2, device=fake_cuda)
    with pytest.raises(lg.DeviceError, match="cpu and cuda:7"):
        w * x
    with pytest.raises(lg.DeviceError, match="matmul"):
        lg.ones(2, 2) @ lg.ones(2, 2, device=fake_cuda)


def test_numpy_arrays_join_a_tensor_on_the_cpu_only(fake_cuda):
    x = lg.ones(2, device=fake_cuda)
    with pytest.raises(lg.DeviceError):
        x + np.ones(2)
    assert (lg.ones(2) + np.ones(2)).device == "cpu"


# ---------------------------------------------------------------- when CUDA is not there

@pytest.fixture
def no_cuda_registered(monkeypatch):
    """Forget any real GPU backend already created, so get_backend has to look again."""
    monkeypatch.setattr(backends, "_backends", {CPU.device: CPU})


def _fake_cupy(device_count=None, error=None):
    def count():
        if error is not None:
            raise error
        return device_count
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=count)))


def test_asking_for_cuda_without_cupy_says_how_to_install(monkeypatch, no_cuda_registered):
    monkeypatch.setitem(sys.modules, "cupy", None)        # `import cupy` now raises ImportError
    assert lg.cuda.is_available() is False
    assert lg.cuda.device_count() == 0
    assert lg.available_devices() == [Device("cpu")]
    reason = lg.cuda.unavailable_reason()
    assert "CuPy is not installed" in reason and "pip install" in reason and "gpu-cuda12" in reason
    not_installed = r"(?s)device 'cuda:0' is not available: CuPy is not installed.*pip install"
    with pytest.raises(lg.DeviceError, match=not_installed):
        lg.tensor([1.0], device="cuda")
    with pytest.raises(lg.DeviceError, match="pip install"):
        lg.ones(2).to("cuda")


def test_cupy_without_a_working_gpu(monkeypatch, no_cuda_registered):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(error=RuntimeError("no CUDA driver")))
    assert not lg.cuda.is_available()
    assert "cannot reach a GPU (RuntimeError: no CUDA driver)" in lg.cuda.unavailable_reason()
    with pytest.raises(lg.DeviceError, match="cannot reach a GPU"):
        lg.zeros(1, device="cuda")


def test_cupy_with_zero_gpus(monkeypatch, no_cuda_registered):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(device_count=0))
    assert "has no CUDA GPU" in lg.cuda.unavailable_reason()


def test_asking_for_a_gpu_index_that_does_not_exist(monkeypatch, no_cuda_registered):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(device_count=1))
    missing = r"'cuda:3' does not exist: this machine has 1 CUDA GPU\(s\), cuda:0..cuda:0"
    with pytest.raises(lg.DeviceError, match=missing):
        lg.zeros(1, device="cuda:3")


def test_only_the_backends_package_imports_cupy():
    import pathlib

    root = pathlib.Path(lg.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if "backends" not in p.parts and "import cupy" in p.read_text()]
    assert not offenders, f"cupy imported outside labgrad/backends/: {offenders}"


def test_cpu_timer_is_wall_clock():
    timer = CPU.timer()
    timer.start()
    elapsed = timer.stop()
    assert isinstance(elapsed, float) and 0 <= elapsed < 1
    CPU.synchronize()
