"""Checkpoints: ``lg.save(obj, path)`` and ``lg.load(path)``, as a plain ``.npz`` file.

What can be saved: nested dicts (string or integer keys), lists and tuples of Tensors, NumPy
arrays, numbers, strings, booleans and ``None`` — that is, models' and optimizers'
``state_dict()``s. Arrays are stored as ``.npy`` members; everything else (the nesting, the
numbers) is JSON stored in one more member. Two promises:

* **Loading never unpickles.** ``np.load(..., allow_pickle=False)`` reads only raw arrays, so a
  checkpoint from a stranger cannot run code on your machine (a pickle can).
* **Saving is atomic.** The file is written under a temporary name in the same directory,
  flushed to disk, then renamed over the target in one step, so a crash leaves either the old
  checkpoint or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from numbers import Number

import numpy as np

from ..errors import CheckpointError
from ..tensor import Tensor

FORMAT = "labgrad-checkpoint"
VERSION = 1
STRUCTURE_KEY = "__labgrad_structure__"
ZIP_MAGIC = b"PK\x03\x04"


def _current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()   # what open() would give a new file


def save(obj, path):
    """Write ``obj`` (e.g. ``{"model": model.state_dict(), "opt": opt.state_dict()}``) to ``path``.

    The path is used exactly as given (no ``.npz`` is appended).
    """
    arrays = {}
    root = _encode(obj, arrays, "obj")
    meta = json.dumps({"format": FORMAT, "version": VERSION, "root": root})
    arrays[STRUCTURE_KEY] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), _FILE_MODE)   # mkstemp makes it private (0600)
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def load(path, device=None):
    """Read a checkpoint written by ``save``: the same nesting, with Tensors (on the CPU, or on
    ``device``) where Tensors were saved and NumPy arrays where arrays were."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != ZIP_MAGIC:
        what = ("a pickle, which labgrad never loads because unpickling can run arbitrary code"
                if magic[:1] == b"\x80" else
                "a single .npy array (read it with np.load)" if magic == b"\x93NUM" else
                f"not an .npz archive (it starts with the bytes {magic!r})")
        raise CheckpointError(f"{path} is not a labgrad checkpoint: it is {what}. "
                              f"Checkpoints are written by lg.save.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if STRUCTURE_KEY not in npz.files:
                raise CheckpointError(f"{path} is an .npz file but not a labgrad checkpoint (it has no "
                                      f"{STRUCTURE_KEY!r} entry; members: {', '.join(npz.files[:8])}). "
                                      f"Read it with np.load, or save with lg.save.")
            meta = json.loads(_member(npz, STRUCTURE_KEY, path).tobytes().decode("utf-8"))
            if meta.get("format") != FORMAT:
                raise CheckpointError(f"{path}: unknown format {meta.get('format')!r}")
            if meta.get("version", 0) > VERSION:
                raise CheckpointError(f"{path} was written by a newer labgrad (checkpoint version "
                                      f"{meta['version']}, this one reads up to {VERSION}); upgrade labgrad")
            return _decode(meta["root"], lambda name: _member(npz, name, path), device)
    except CheckpointError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise CheckpointError(f"{path} contains arrays of pickled Python objects; labgrad refuses "
                                  f"to load them because unpickling can run arbitrary code. Only "
                                  f"checkpoints written by lg.save (plain arrays + JSON) load.") from None
        raise CheckpointError(f"{path} is not a readable labgrad checkpoint: {e}") from None
    except (OSError, zipfile.BadZipFile, KeyError, EOFError, json.JSONDecodeError,
            UnicodeDecodeError, TypeError) as e:
        raise CheckpointError(f"{path} is not a readable labgrad checkpoint (corrupt or truncated, "
                              f"or another kind of file): {type(e).__name__}: {e}") from None


def _encode(obj, arrays, where):
    """A JSON description of ``obj``; arrays go into ``arrays`` under names like ``a3``."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, Tensor):
        return {"tensor": _store(obj.numpy(), arrays, where)}
    if isinstance(obj, np.ndarray):
        return {"ndarray": _store(obj, arrays, where)}
    if isinstance(obj, np.generic):
        return {"scalar": _store(np.asarray(obj), arrays, where)}
    if isinstance(obj, Number):
        if isinstance(obj, (int, float)):
            return obj
        raise CheckpointError(f"cannot save {where}: a {type(obj).__name__} number; convert it to "
                              f"float or int")
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise CheckpointError(f"cannot save {where}: dict keys must be strings or ints, "
                                      f"got {k!r} ({type(k).__name__})")
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]")])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    hint = (" Save its state_dict() instead: lg.save(model.state_dict(), path)."
            if hasattr(obj, "state_dict") else "")
    raise CheckpointError(f"cannot save {where}: objects of type {type(obj).__name__} are not "
                          f"supported (only dicts, lists, tuples, Tensors, NumPy arrays, numbers, "
                          f"strings and None).{hint}")


def _store(array, arrays, where):
    if array.dtype.hasobject:
        raise CheckpointError(f"cannot save {where}: a NumPy array of Python objects (dtype=object) "
                              f"would need pickle; convert it to a numeric dtype")
    name = f"a{len(arrays)}"
    arrays[name] = array
    return name


def _member(npz, name, path):
    """One array of the archive (NumPy hands back raw bytes for a member that is not .npy)."""
    value = npz[name]
    if not isinstance(value, np.ndarray):
        raise CheckpointError(f"{path}: member {name!r} is not a NumPy array; the file is corrupt "
                              f"or was not written by lg.save")
    return value


def _decode(node, array, device):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if not isinstance(node, dict) or len(node) != 1:
        raise CheckpointError(f"malformed checkpoint structure: {node!r:.80}")
    (kind, value), = node.items()
    if kind == "dict":
        return {k: _decode(v, array, device) for k, v in value}
    if kind == "list":
        return [_decode(v, array, device) for v in value]
    if kind == "tuple":
        return tuple(_decode(v, array, device) for v in value)
    if kind == "tensor":
        return Tensor(array(value), device=device)
    if kind == "ndarray":
        return array(value)
    if kind == "scalar":
        return array(value)[()]
    raise CheckpointError(f"malformed checkpoint structure: unknown entry kind {kind!r}")


def _fsync_directory(directory):
    """Make the rename itself durable (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
