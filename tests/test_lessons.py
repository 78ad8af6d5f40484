"""The lessons: in sync with their sources, shaped alike, and linked from the index.

Running them is nbval's job (``pytest lessons``); these checks need no kernel.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_lessons", ROOT / "tools" / "build_lessons.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _builder()
SOURCES = build.sources([])


def test_every_source_has_a_notebook_and_every_notebook_a_source():
    built = {s.stem for s in SOURCES}
    notebooks = {p.stem for p in LESSONS.glob("[0-9][0-9]-*.ipynb")}
    # Lesson 13 is written directly as a notebook (it needs Ray worker processes).
    assert notebooks - built <= {"13-federated-learning-on-worker-processes"}
    assert built <= notebooks


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem[:2])
def test_notebook_matches_its_source(source):
    assert build.in_sync(source) == [], "rebuild with: .venv/bin/python tools/build_lessons.py"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem[:2])
def test_notebook_is_executed_and_quiet(source):
    nb = nbformat.read(build.target(source), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "execute it: tools/build_lessons.py"
    for c in code:
        for out in c.outputs:
            text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
            # no memory addresses (they change every run) and no stray warnings
            assert not re.search(r" at 0x[0-9a-f]+", text), c.source
            assert out.get("name") != "stderr", f"{c.source}\n{text}"
        errors = [o for o in c.outputs if o.output_type == "error"]
        assert bool(errors) == ("raises-exception" in c.metadata.get("tags", [])), c.source


@pytest.mark.parametrize("source", [s for s in SOURCES if not s.stem.startswith("00")],
                         ids=lambda s: s.stem[:2])  # fmt: skip
def test_lesson_opens_with_goals_and_ends_with_next_steps(source):
    cells = nbformat.read(build.target(source), as_version=4).cells
    assert cells[0].cell_type == "markdown" and "**What you will learn**" in cells[0].source
    assert cells[-1].cell_type == "markdown" and "## What to try next" in cells[-1].source


def test_index_links_every_lesson_and_every_link_resolves():
    index = nbformat.read(LESSONS / "00-index.ipynb", as_version=4)
    text = "\n".join(c.source for c in index.cells if c.cell_type == "markdown")
    links = set(re.findall(r"\]\(([^)]+\.ipynb)\)", text))
    lessons = {p.name for p in LESSONS.glob("[0-9][0-9]-*.ipynb")} - {"00-index.ipynb"}
    assert lessons <= links
    for source in SOURCES:
        for cell in nbformat.read(build.target(source), as_version=4).cells:
            for link in re.findall(r"\]\(([^)]+\.ipynb)\)", cell.source):
                links.add(link)
    missing = {link for link in links if not (LESSONS / link).exists()}
    assert not missing, f"links to missing lessons: {sorted(missing)}"
