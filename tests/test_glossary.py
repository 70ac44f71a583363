"""One glossary for the course: every chapter's glossary table is part of course/GLOSSARY.md,
word for word, and GLOSSARY.md says which chapters use each term."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

COURSE = Path(__file__).resolve().parent.parent / "course"
CHAPTERS = sorted(COURSE.glob("[0-9][0-9]-*.ipynb"))
ROW = re.compile(r"^\|\s*(.+?)\s*\|\s*(.+?)\s*\|(?:\s*(.*?)\s*\|)?\s*$")


def _rows(text):
    """``{english: (korean, chapters)}`` from the first markdown table after a glossary heading."""
    rows = {}
    for line in text.splitlines():
        m = ROW.match(line)
        if not m or set(m.group(1)) <= set("-: ") or m.group(1) == "English":
            continue
        rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


def _chapter_glossary(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and "## Glossary" in text:
            return _rows(text[text.index("## Glossary"):])
    return None


GLOSSARY = _rows((COURSE / "GLOSSARY.md").read_text(encoding="utf-8"))


def test_the_glossary_has_the_terms_the_course_needs():
    assert len(GLOSSARY) >= 40
    korean = {k for k, _ in GLOSSARY.values()}
    for term in ("계산 그래프", "자동 미분", "역전파", "수치 미분", "정적 계산 그래프", "동적 계산 그래프",
                 "그래프 모드", "이거 모드", "연산자 융합"):
        assert any(term in k for k in korean), term
    assert not any("그래프 분할" in k for e, (k, _) in GLOSSARY.items() if "graph break" in e)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_each_chapter_glossary_agrees_with_the_course_glossary(path):
    rows = _chapter_glossary(path)
    assert rows, f"{path.name} has no '## Glossary' table"
    number = path.name[:2]
    for english, (korean, _) in rows.items():
        assert english in GLOSSARY, f"{path.name}: '{english}' is not in course/GLOSSARY.md"
        assert GLOSSARY[english][0] == korean, (
            f"{path.name}: '{english}' is '{korean}' here but '{GLOSSARY[english][0]}' in GLOSSARY.md")
        assert number in (GLOSSARY[english][1] or ""), (
            f"GLOSSARY.md does not list chapter {number} for '{english}'")
