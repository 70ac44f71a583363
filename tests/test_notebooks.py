"""Notebook hygiene, and the nbval setup that re-runs them.

`make test` runs nbval on every chapter (course/) and every exercise's solution version
(exercises/): each notebook is executed afresh and its outputs are compared with the committed
ones, after .nbval-sanitize.cfg masks what legitimately changes between runs. Here we check what
that comparison relies on: that the committed outputs come from one clean top-to-bottom run, hold
nothing machine-specific, link to notebooks that exist, and that the sanitizer masks exactly the
run-to-run noise and nothing else.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

REPO = Path(__file__).resolve().parents[1]
SANITIZER = REPO / ".nbval-sanitize.cfg"
CHAPTERS = sorted((REPO / "course").glob("*.ipynb"))
EXERCISES = sorted((REPO / "exercises").glob("*.ipynb"))
NOTEBOOKS = CHAPTERS + EXERCISES
each_notebook = pytest.mark.parametrize(
    "path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.stem}" for p in NOTEBOOKS])


def source(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def texts(output):
    """Every text an output carries: stream text, error, and each mime type's data."""
    if output["output_type"] == "stream":
        text = output["text"]
        yield "stream", text if isinstance(text, str) else "".join(text)
    elif output["output_type"] == "error":
        yield "error", f"{output['ename']}: {output['evalue']}"
    else:
        for mime, data in output.get("data", {}).items():
            if mime in ("image/png", "image/jpeg"):
                continue  # base64
            if isinstance(data, list):
                data = "".join(data)
            yield mime, data if isinstance(data, str) else json.dumps(data)


def ignores_output(cell):
    """Cells whose outputs nbval does not compare (tag or comment marker)."""
    tags = cell.get("metadata", {}).get("tags", [])
    return ("nbval-ignore-output" in tags or "nbval-skip" in tags
            or re.search(r"^#\s*NBVAL_(IGNORE_OUTPUT|SKIP)", source(cell), re.M) is not None)


def may_raise(cell):
    tags = cell.get("metadata", {}).get("tags", [])
    return "raises-exception" in tags or re.search(r"^#\s*NBVAL_RAISES_EXCEPTION", source(cell), re.M)


# ---------------------------------------------------------------- the sanitizer

def sanitize(text):
    """What nbval does with --nbval-sanitize-with: each rule in file order, as re.sub."""
    for regex, replace in get_sanitize_patterns(SANITIZER.read_text(encoding="utf-8")):
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize("raw, clean", [
    ("<Foo object at 0x7f3a2b1c4d50>", "<Foo object at 0xADDRESS>"),
    ("forward took 1.23 ms, backward 850 µs", "forward took DURATION, backward DURATION"),
    ("12.5 ms ± 310 µs per loop", "DURATION per loop"),
    ("CPU times: user 3.2 s, sys: 12ns", "CPU times: user DURATION, sys: DURATION"),
    ("Wall time: 2 sec", "Wall time: DURATION"),
    ("100%|██████████| 10/10 [00:01<00:00, 9.51it/s]", "100%|██████████| 10/10 [ELAPSED]"),
    ("fused kernel: 12.3 GB/s, 4.5 GFLOP/s", "fused kernel: RATE, RATE"),
    ("numpy 1.26.4 / labgrad 0.1.0.dev3+g1234abc", "numpy VERSION / labgrad VERSION"),
    ("saved to /tmp/tmpab12cd/ckpt.npz.", "saved to TMPPATH."),
    ('File "/tmp/ipykernel_4242/3391.py", line 3', 'File "TMPPATH", line 3'),
    ("/work/x/.venv/lib/python3.11/site-packages/numpy/core.py", "SITE-PACKAGES/numpy/core.py"),
    ("started 2025-01-31 12:34:56.789 (pid 4242)", "started TIMESTAMP (pid=PID)"),
])
def test_sanitizer_masks_run_to_run_noise(raw, clean):
    assert sanitize(raw) == clean


@pytest.mark.parametrize("text", [
    "tensor([1., 2., 3.], requires_grad=True)",
    "shape (2, 3), dtype float32, device cpu",
    "✓ Part 3: backward of mul",
    "x.grad = 0.25 after 10 steps; s = 3",
    "Linear(in_features=64, out_features=10)",
    "3.14159 2.5e-08 -0.0",
    "python 3.11",
    '<path fill="none" stroke="#1a7f37" d="M27,-71.7C27,-63.98 27,-54.71 27,-46.11"/>',
    '<g id="node3" class="node"><title>mul_1</title></g>',
])
def test_sanitizer_leaves_real_content_alone(text):
    assert sanitize(text) == text


def test_make_test_runs_nbval_on_chapters_and_exercises():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(["make", "-n", "test", "VENV=.venv-dry-run"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    pytest_line = next(line for line in dry.splitlines() if " -m pytest " in line)
    args = pytest_line.split()
    for needed in ("tests", "course", "exercises", "--nbval", "--nbval-current-env",
                   "--dist", "loadscope"):
        assert needed in args, f"`make test` runs without {needed}: {pytest_line}"
    assert args[args.index("--nbval-sanitize-with") + 1] == ".nbval-sanitize.cfg"
    assert args[args.index("-n") + 1] == "2"


# ---------------------------------------------------------------- the notebooks

def test_chapters_are_numbered_once_each():
    assert CHAPTERS, "course/ has no chapters"
    numbers = []
    for path in CHAPTERS:
        m = re.fullmatch(r"(\d\d)-[a-z0-9-]+\.ipynb", path.name)
        assert m, f"{path.name}: chapters are named NN-words-with-dashes.ipynb"
        numbers.append(m.group(1))
    assert len(numbers) == len(set(numbers)), f"two chapters share a number: {numbers}"


@each_notebook
def test_notebook_is_valid_and_uses_the_python3_kernel(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", \
        f"{path.name}: set the kernel to python3 (nbval and nbgrader run that kernel)"


@each_notebook
def test_outputs_come_from_one_clean_run(path):
    """Execution counts 1, 2, 3, ... in cell order: saved after "Restart Kernel and Run All"."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and source(c).strip()]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: execution counts {counts}; run Kernel > Restart Kernel and Run All Cells, "
        f"then save, so the committed outputs are what a fresh run gives")


@each_notebook
def test_committed_outputs_have_no_errors_addresses_or_local_paths(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for output in cell.get("outputs", []):
            if output["output_type"] == "error" and not may_raise(cell):
                problems.append(f"cell {index} raised {output['ename']}: {output['evalue']}")
            if ignores_output(cell):
                continue
            for mime, text in texts(output):
                if re.search(r"\bat 0x[0-9a-fA-F]{6,}", text):
                    problems.append(f"cell {index} ({mime}) shows a memory address; give the "
                                    f"object a stable repr")
                if str(REPO) in text:
                    problems.append(f"cell {index} ({mime}) shows this checkout's path {REPO}")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


_LINK = re.compile(r"\]\(([^)\s]+?\.ipynb)(#[^)]*)?\)")


@each_notebook
def test_links_to_other_notebooks_resolve(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    broken = [m.group(1) for c in nb["cells"] if c["cell_type"] == "markdown"
              for m in _LINK.finditer(source(c))
              if "://" not in m.group(1) and not (path.parent / m.group(1)).resolve().is_file()]
    assert not broken, f"{path.name} links to notebooks that do not exist: {broken}"


@each_notebook
def test_code_uses_public_names_only(path):
    """Chapters and exercises teach the public API: no ``lg._private`` or ``viz._private``."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    private = [f"cell {i}: {m.group(0)}" for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
               for m in re.finditer(r"\b(lg|labgrad|viz)(\.[A-Za-z]\w*)*\._[A-Za-z]\w*", source(c))]
    assert not private, f"{path.name} reaches into private names: {private}"
