"""lg.save / lg.load: round trips, atomic writes, and never unpickling."""
import os
import pickle
import zipfile

import numpy as np
import pytest

import labgrad as lg
import labgrad.functional as F
from labgrad import nn, optim
from labgrad.errors import CheckpointError
from labgrad.io import checkpoint


def test_nested_round_trip_keeps_types_and_values(tmp_path):
    obj = {
        "weights": lg.tensor([[1.5, -2.0]]),
        "ints": lg.tensor([1, 2, 3]),
        "mask": lg.tensor([True, False]),
        "scalar_tensor": lg.tensor(3.25, dtype="float64"),
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "np_scalar": np.float32(0.5),
        "numbers": [1, 2.5, float("inf"), True, None],
        "pair": (0.9, 0.999),
        "name": "digits-mlp",
        "by_index": {0: {"step": 3}, 7: "seven"},
        "empty": {},
    }
    path = tmp_path / "ckpt.npz"
    lg.save(obj, path)
    back = lg.load(path)
    assert list(back) == list(obj)
    assert isinstance(back["weights"], lg.Tensor) and back["weights"].dtype == np.float32
    assert back["weights"].tolist() == [[1.5, -2.0]]
    assert back["ints"].dtype == np.int64 and back["mask"].dtype == np.bool_
    assert back["scalar_tensor"].shape == () and back["scalar_tensor"].item() == 3.25
    assert isinstance(back["array"], np.ndarray) and back["array"].dtype == np.int16
    np.testing.assert_array_equal(back["array"], obj["array"])
    assert type(back["np_scalar"]) is np.float32 and back["np_scalar"] == 0.5
    assert back["numbers"] == [1, 2.5, float("inf"), True, None]
    assert type(back["numbers"][0]) is int and type(back["numbers"][3]) is bool
    assert back["pair"] == (0.9, 0.999) and isinstance(back["pair"], tuple)
    assert back["name"] == "digits-mlp"
    assert back["by_index"] == {0: {"step": 3}, 7: "seven"}
    assert back["empty"] == {}


def test_the_file_is_an_ordinary_npz_with_arrays_and_json(tmp_path):
    path = tmp_path / "ckpt.npz"
    lg.save({"w": lg.ones(2, 3)}, path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = [k for k in npz.files if k != checkpoint.STRUCTURE_KEY]
        assert len(arrays) == 1 and npz[arrays[0]].shape == (2, 3)
    assert not any(name.startswith(".") for name in os.listdir(tmp_path))   # no temp file left


def test_model_and_optimizer_with_momentum_round_trip(tmp_path):
    def make():
        lg.manual_seed(0)
        m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        return m, optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((5, 4)).astype(np.float32), rng.integers(0, 3, 5)) for _ in range(6)]

    def train(m, opt, data):
        for x, t in data:
            loss = F.cross_entropy(m(lg.tensor(x)), lg.tensor(t))
            opt.zero_grad()
            loss.backward()
            opt.step()

    reference, ref_opt = make()
    train(reference, ref_opt, batches)

    m, opt = make()
    train(m, opt, batches[:3])
    path = tmp_path / "run.npz"
    lg.save({"model": m.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, path)
    del m, opt

    m2, opt2 = make()
    saved = lg.load(path)
    assert saved["epoch"] == 3
    buf = saved["optimizer"]["state"][0]["momentum_buffer"]
    assert isinstance(buf, lg.Tensor) and buf.numpy().any()
    m2.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["optimizer"])
    train(m2, opt2, batches[3:])
    for p, q in zip(reference.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_save_replaces_atomically_and_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    lg.save({"version": 1, "w": lg.ones(3)}, path)

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("power cut")
    monkeypatch.setattr(checkpoint.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        lg.save({"version": 2, "w": lg.zeros(3)}, path)
    monkeypatch.undo()
    assert lg.load(path)["version"] == 1
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_saved_files_get_normal_permissions(tmp_path):
    path = tmp_path / "ckpt.npz"
    lg.save({"a": 1}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


class _Exploit:
    """Unpickling this calls ``_mark`` — what a malicious checkpoint would do with os.system."""

    ran = []

    def __reduce__(self):
        return (_mark, ("unpickled!",))


def _mark(message):
    _Exploit.ran.append(message)
    return message


def test_an_npz_holding_pickled_objects_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil.npz"
    meta = '{"format": "labgrad-checkpoint", "version": 1, "root": {"ndarray": "a0"}}'
    np.savez(path, a0=np.array([_Exploit()], dtype=object),
             **{checkpoint.STRUCTURE_KEY: np.frombuffer(meta.encode(), dtype=np.uint8)})
    _Exploit.ran.clear()
    with pytest.raises(CheckpointError, match="pickled"):
        lg.load(path)
    assert _Exploit.ran == []


def test_a_pickle_file_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"w": _Exploit()}))
    _Exploit.ran.clear()
    with pytest.raises(CheckpointError, match="pickle"):
        lg.load(path)
    assert _Exploit.ran == []


def test_foreign_and_corrupt_files_raise_checkpoint_errors(tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.ones(3))
    with pytest.raises(CheckpointError, match="not a labgrad checkpoint"):
        lg.load(foreign)

    good = tmp_path / "good.npz"
    lg.save({"w": lg.ones(100)}, good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt or truncated|not a readable"):
        lg.load(truncated)

    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not an .npz archive"):
        lg.load(text)

    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(2))
    with pytest.raises(CheckpointError, match="single .npy array"):
        lg.load(npy)

    with pytest.raises(FileNotFoundError):
        lg.load(tmp_path / "missing.npz")


def test_a_member_that_is_not_an_array_is_caught(tmp_path):
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(checkpoint.STRUCTURE_KEY + ".npy", b"not an npy header")
    with pytest.raises(CheckpointError):
        lg.load(path)


def test_unsupported_objects_are_refused_with_a_hint(tmp_path):
    with pytest.raises(CheckpointError, match=r"Save its state_dict\(\) instead"):
        lg.save(nn.Linear(2, 2), tmp_path / "m.npz")
    with pytest.raises(CheckpointError, match="dtype=object"):
        lg.save({"bad": np.array([{}], dtype=object)}, tmp_path / "o.npz")
    with pytest.raises(CheckpointError, match=r"obj\['k'\]\[1\]"):
        lg.save({"k": [1, {2, 3}]}, tmp_path / "s.npz")
    with pytest.raises(CheckpointError, match="dict keys"):
        lg.save({(1, 2): 3}, tmp_path / "t.npz")
    assert not list(tmp_path.iterdir())


def test_load_to_a_device(tmp_path):
    path = tmp_path / "ckpt.npz"
    lg.save({"w": lg.ones(2)}, path)
    assert lg.load(path, device="cpu")["w"].device == lg.device("cpu")
    if not lg.cuda.is_available():
        with pytest.raises(lg.DeviceError):
            lg.load(path, device="cuda")


def test_tensors_from_a_device_round_trip(tmp_path, device):
    w = lg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    path = tmp_path / "ckpt.npz"
    lg.save({"w": w}, path)
    on_cpu, back = lg.load(path)["w"], lg.load(path, device=device)["w"]
    assert on_cpu.device == lg.device("cpu") and back.device == lg.device(device)
    assert back.tolist() == on_cpu.tolist() == [[1.0, 2.0], [3.0, 4.0]]
