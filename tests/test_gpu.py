"""GPU checks (CuPy): run only where CUDA is available, and skipped with the reason elsewhere.

Backend-independent tests already run on the GPU through the ``device`` fixture; this file adds
what only makes sense with a real GPU: values against the CPU backend, gradients checked on the
device, transfers in both directions, and device timers.
"""
from __future__ import annotations

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad.backends import get_backend
from labgrad.testing import gradcheck

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not lg.cuda.is_available(), reason=f"no CUDA device: {lg.cuda.unavailable_reason()}"),
]

_rng = np.random.default_rng(5)


def randn(*shape):
    return _rng.standard_normal(shape).astype(np.float32)


SAME_ON_BOTH = {
    "elementwise chain": (lambda a, b: ((a * b + 1).tanh() - a.sigmoid() / (b.abs() + 1)).exp(), randn(4, 5), randn(5)),
    "reductions": (lambda a: a.sum(axis=0) + a.max(axis=0) - a.var(axis=0) + a.logsumexp(axis=0), randn(6, 3)),
    "matmul batched": (lambda a, b: a @ b, randn(2, 3, 4), randn(4, 5)),
    "softmax": (lambda a: a.softmax(axis=1) + a.log_softmax(axis=1), randn(3, 7)),
    "cross entropy": (lambda z: F.cross_entropy(z, lg.tensor([0, 2, 1], device=z.device)), randn(3, 4)),
    "indexing": (lambda a: a[[2, 0, 2]] + a[1:, ::2].sum() + a[a > 0].sum(), randn(3, 4)),
    "joins": (lambda a, b: lg.cat([a, b], axis=0) + lg.pad(lg.stack([a, b])[0], 0)[:1], randn(2, 3), randn(2, 3)),
    "conv2d": (lambda x, w: F.conv2d(x, w, stride=2, padding=1), randn(2, 3, 9, 8), randn(4, 3, 3, 3)),
    "pools": (lambda x: F.max_pool2d(x, 3, 2, 1) + F.avg_pool2d(x, 3, 2, 1), randn(2, 3, 9, 8)),
}


@pytest.mark.parametrize("name", sorted(SAME_ON_BOTH))
def test_gpu_forward_matches_cpu(name):
    fn, *arrays = SAME_ON_BOTH[name]
    on_cpu = fn(*[lg.tensor(a) for a in arrays])
    on_gpu = fn(*[lg.tensor(a, device="cuda") for a in arrays])
    assert on_gpu.device == "cuda:0" and type(on_gpu.data).__module__.startswith("cupy")
    assert on_gpu.dtype == on_cpu.dtype and on_gpu.shape == on_cpu.shape
    np.testing.assert_allclose(on_gpu.numpy(), on_cpu.numpy(), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name", sorted(SAME_ON_BOTH))
def test_gpu_gradients_match_cpu(name):
    fn, *arrays = SAME_ON_BOTH[name]
    grads = []
    for device in ("cpu", "cuda"):
        xs = [lg.tensor(a, dtype="float64", device=device, requires_grad=True) for a in arrays]
        out = fn(*xs)
        (out * lg.tensor(np.linspace(-1, 1, out.size).reshape(out.shape), device=device)).sum().backward()
        assert all(x.grad.device == device for x in xs)
        grads.append([x.grad.numpy() for x in xs])
    for g_cpu, g_gpu in zip(*grads):
        np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fn,shapes", [
    (lambda a, b: (a @ b).tanh(), [(2, 3), (3, 2)]),
    (lambda a: a.softmax(axis=-1), [(2, 3)]),
    (lambda a: a[[0, 0, 1]] ** 2, [(2, 3)]),
    (lambda x, w: F.conv2d(x, w, padding=1), [(1, 2, 3, 3), (2, 2, 2, 2)]),
    (lambda x: F.max_pool2d(x, 2, 1), [(1, 1, 3, 3)]),
])
def test_gradcheck_on_the_gpu(fn, shapes):
    inputs = [lg.tensor(np.random.default_rng(0).standard_normal(s), device="cuda") for s in shapes]
    assert gradcheck(fn, inputs, order=2)


def test_transfers_both_ways_carry_gradients():
    x = lg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda:0" and type(y.data).__module__.startswith("cupy")
    z = (y * y).sum().cpu()
    assert z.device == "cpu" and z.item() == 14.0
    z.backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 4.0, 6.0]
    g = lg.tensor([1.0], device="cuda", requires_grad=True)
    (g.cpu() * 3).sum().backward()
    assert g.grad.device == "cuda:0" and g.grad.tolist() == [3.0]


def test_mixing_cpu_and_gpu_is_refused():
    with pytest.raises(lg.DeviceError, match="cpu and cuda:0"):
        lg.ones(2) + lg.ones(2, device="cuda")


def test_random_on_the_gpu_is_seeded():
    lg.manual_seed(2)
    a = lg.randn(4, device="cuda").numpy()
    lg.manual_seed(2)
    np.testing.assert_array_equal(a, lg.randn(4, device="cuda").numpy())
    lg.manual_seed(2)
    y = F.dropout(lg.ones(1000, device="cuda"), 0.5)
    assert y.device == "cuda:0" and 400 < int((y.numpy() != 0).sum()) < 600


def test_device_timer_measures_gpu_work():
    backend = get_backend("cuda")
    x = lg.randn(512, 512, device="cuda")
    timer = backend.timer()
    timer.start()
    for _ in range(10):
        x = x @ x * 1e-3
    elapsed = timer.stop()
    assert isinstance(elapsed, float) and 0 < elapsed < 10
    lg.cuda.synchronize()


def test_compiled_code_on_the_gpu_is_profiled_per_kernel_with_device_time():
    a = lg.placeholder((1 << 16,), name="a", device="cuda")
    b = lg.placeholder((1 << 16,), name="b", device="cuda")
    f = lg.compile(((a * b + 1).tanh() * 2).sum())
    x = lg.randn(1 << 16, device="cuda")
    f(x, x)
    with lg.profiler.profile() as prof:
        f(x, x)
    kernels = [e for e in prof.events if e.category == "kernel"]
    assert kernels and all(e.device == "cuda:0" and e.dur > 0 for e in kernels)
    assert any(e.name.startswith("fused_") for e in kernels)
