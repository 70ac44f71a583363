"""Re-execute notebooks in place, as a fresh CPU-only install runs them (``make notebooks``).

Chapters and exercises are committed with their outputs, and CI compares them (nbval). This
runs each notebook with the ``python3`` kernel, with CuPy hidden from the kernel (so messages
about the GPU read as a student without one sees them, even on a machine that has CuPy), and
strips the per-cell execution timestamps that would otherwise change in every commit.

    python course/tools/execute.py course/*.ipynb exercises/*.ipynb
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HIDE_CUPY = '''\
import sys


class _HideCupy:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("cupy", "cupy_backends", "cupyx"):
            raise ImportError(f"No module named {name!r}")
        return None


sys.meta_path.insert(0, _HideCupy())
'''


def strip_execution_metadata(path):
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(paths):
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as hide:
        Path(hide, "sitecustomize.py").write_text(HIDE_CUPY)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [hide, os.environ.get("PYTHONPATH")])))
        for path in paths:
            print(f"executing {path}", flush=True)
            subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                            "--inplace", "--ExecutePreprocessor.kernel_name=python3",
                            "--ExecutePreprocessor.timeout=300", path], check=True, env=env)
            strip_execution_metadata(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
