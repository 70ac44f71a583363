"""Shared fixtures: the ``device`` fixture, a fake second device, Hypothesis profiles.

Backend-independent tests take ``device`` and run once per available device: always ``cpu``,
plus every CUDA GPU CuPy can see. Without a GPU, a single ``cuda`` case is reported as skipped
with the reason, so a test log always says why the GPU was not exercised.
The fake second device (``fake_cuda``, NumPy arrays that say ``cuda:7``) is in ``device`` too,
so device placement is exercised everywhere on a machine without a GPU;
``LABGRAD_TEST_FAKE_DEVICE=0 pytest`` leaves it out.
"""
from __future__ import annotations

import importlib
import os
import pkgutil

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import labgrad as lg
from labgrad.context import context
from labgrad.backends import numpy_backend
import labgrad.backends as backends_module


def _import_every_labgrad_module():
    """Import all of labgrad, so every op is in the registry in every test process (the
    completeness tests iterate it). Failures are kept for ``test_every_labgrad_module_imports``."""
    failures = {}
    for info in pkgutil.walk_packages(lg.__path__, "labgrad."):
        try:
            importlib.import_module(info.name)
        except Exception as e:  # reported by a test, not as a collection crash
            failures[info.name] = f"{type(e).__name__}: {e}"
    return failures


IMPORT_FAILURES = _import_every_labgrad_module()
FAKE_DEVICE = "cuda:7"  # an index no real machine here has, so it never shadows a real GPU

# Under CI (CI=true) the examples are derandomized, so a run is reproducible and a red CI is
# never a coin toss; elsewhere each run explores new random graphs and shapes.
settings.register_profile("ci", max_examples=50, deadline=None, derandomize=bool(os.environ.get("CI")),
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=8, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def labgrad_import_failures():
    """Modules of labgrad that failed to import while collecting (name -> error)."""
    return IMPORT_FAILURES


def _device_params():
    params = [pytest.param("cpu", id="cpu")]
    if os.environ.get("LABGRAD_TEST_FAKE_DEVICE", "1") != "0":   # every device test also on the fake cuda:7
        params.append(pytest.param(FAKE_DEVICE, id=f"fake-{FAKE_DEVICE}"))
    gpus = [str(d) for d in lg.available_devices() if d.type == "cuda"]
    if gpus:
        params += [pytest.param(d, id=d, marks=pytest.mark.gpu) for d in gpus]
    else:
        reason = f"no CUDA device: {lg.cuda.unavailable_reason()}"
        params.append(pytest.param("cuda", id="cuda", marks=[pytest.mark.gpu, pytest.mark.skip(reason=reason)]))
    return params


@pytest.fixture(params=_device_params())
def device(request):
    """Each available device in turn, as a string ("cpu", "cuda:0", ...)."""
    if request.param == FAKE_DEVICE:
        request.getfixturevalue("fake_cuda")
    return request.param


@pytest.fixture(autouse=True)
def _isolated_engine_state():
    """Every test starts seeded, with grad mode on and float32 default, and cannot leak changes."""
    lg.manual_seed(0)
    default_dtype = lg.get_default_dtype()
    with context.setting(grad_enabled=True, scope=None, tracer=None, frame=None, raw_arrays=None, hooks=()):
        yield
        assert context.tracer is None and not context.hooks and context.raw_arrays is None, \
            f"a test left interpreter state behind: {context!r}"
    lg.set_default_dtype(default_dtype)


class FakeDeviceBackend(numpy_backend.NumpyBackend):
    """A second 'device' made of host memory: lets CPU-only machines exercise device code paths.

    Arrays moved onto it are copied, as a real transfer would, so sharing bugs show up.
    """

    def __init__(self, device):
        super().__init__()
        self.device = device

    def asarray(self, data, dtype=None):
        return np.array(super().asarray(data, dtype=dtype), copy=True)


@pytest.fixture
def fake_cuda(monkeypatch):
    """Register ``cuda:7`` as a fake device for this test; returns its name."""
    dev = lg.device(FAKE_DEVICE)
    table = dict(backends_module._backends)
    table[dev] = FakeDeviceBackend(dev)
    monkeypatch.setattr(backends_module, "_backends", table)
    return FAKE_DEVICE


@pytest.fixture
def jitted_step():
    """A small MLP training step under ``lg.jit``, traced once: ``(step, x, t)``."""
    lg.manual_seed(0)
    model = lg.nn.Sequential(lg.nn.Linear(4, 8), lg.nn.ReLU(), lg.nn.Linear(8, 2))
    opt = lg.optim.SGD(model.parameters(), lr=0.1)

    @lg.jit
    def step(x, t):
        opt.zero_grad()
        loss = lg.functional.cross_entropy(model(x), t)
        loss.backward()
        opt.step()
        return loss

    x, t = lg.randn(5, 4), lg.tensor([0, 1, 0, 1, 1])
    step(x, t)
    return step, x, t
