"""The lessons: in sync with their sources, shaped alike, and linked from the index.

Running them is nbval's job (``pytest lessons``); these checks need no kernel.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import sysconfig
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
    assert built == notebooks


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


LESSON_SOURCES = [s for s in SOURCES if not s.stem.startswith("00")]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ANSWER = "<details><summary>Answer</summary>"
SOLUTION = re.compile(r"<details><summary>Solution</summary>\s*```python\n(.*?)```", re.S)


def _markdown(source: Path) -> str:
    cells = nbformat.read(build.target(source), as_version=4).cells
    return "\n".join(c.source for c in cells if c.cell_type == "markdown")


@pytest.mark.parametrize("source", LESSON_SOURCES, ids=lambda s: s.stem[:2])
def test_lesson_ends_with_summary_questions_and_its_exercise(source):
    text = _markdown(source)
    summary = text.split("## Summary", 1)[1].split("##", 1)[0]
    assert len(re.findall(r"^- ", summary, re.M)) == 3, "a three-line summary"
    questions = text.split("## Check yourself", 1)[1].split("## What to try next", 1)[0]
    assert 2 <= questions.count(ANSWER) <= 3, "two or three questions, each answer folded"
    assert questions.count(ANSWER) == questions.count("</details>")
    links = re.findall(r"\]\((\.\./exercises/[^)]+\.ipynb)\)", text)
    assert links and all((LESSONS / link).exists() for link in links), "link its exercise"


def _practice(nb: nbformat.NotebookNode) -> list[tuple[int, int, str]]:
    """(task cell, check cell, solution code) for every practice check of a notebook."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "practice.check(" not in cell.source:
            continue
        task = max(j for j in range(i) if nb.cells[j].cell_type == "code")
        later = [c.source for c in nb.cells[i + 1 :] if c.cell_type == "markdown"]
        solution = SOLUTION.search(later[0]) if later else None
        assert solution, f"the check in cell {i} has no folded solution right after it"
        above = [c.source for c in nb.cells[:task] if c.cell_type == "markdown"][-1]
        assert "### Your turn" in above, f"the task before cell {i} is not introduced"
        found.append((task, i, solution.group(1)))
    return found


@pytest.mark.parametrize("source", LESSON_SOURCES, ids=lambda s: s.stem[:2])
def test_every_lesson_from_3_has_practice_that_starts_unsolved(source):
    nb = nbformat.read(build.target(source), as_version=4)
    found = _practice(nb)
    assert bool(found) == (int(source.stem[:2]) >= 3)
    for _, check, _ in found:
        text = "".join(o.get("data", {}).get("text/plain", "") for o in nb.cells[check].outputs)
        assert text.endswith("Not yet: fix the ✗ and run again."), "attempt first: not solved"


PRACTICE = [s for s in LESSON_SOURCES if int(s.stem[:2]) >= 3]


@pytest.mark.slow
@pytest.mark.parametrize("source", PRACTICE, ids=lambda s: s.stem[:2])
def test_every_folded_solution_passes_its_check(source):
    """Run the lesson with each task replaced by its folded solution: every check passes."""
    from nbclient import NotebookClient

    nb = nbformat.read(build.target(source), as_version=4)
    found = _practice(nb)
    for task, _, code in found:
        nb.cells[task].source = code
    NotebookClient(nb, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(LESSONS)}}).execute()  # fmt: skip
    for _, check, _ in found:
        text = "".join(o.get("data", {}).get("text/plain", "") for o in nb.cells[check].outputs)
        assert text.endswith("Well done: every step is right."), text


def _machine_paths() -> set[str]:
    paths = {str(ROOT), sys.prefix, sys.base_prefix, "/tmp/", "site-packages"}
    paths |= {v for v in sysconfig.get_paths().values() if v}
    return {p for p in paths if len(p) > 4}


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem[:2])
def test_saved_outputs_show_no_machine_path_and_no_fedlab_frame(source):
    nb = nbformat.read(build.target(source), as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = ANSI.sub("", "\n".join(out.get("traceback", [])))
            text += out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
            for path in _machine_paths():
                assert path not in text, f"{path} in the output of:\n{cell.source}"
            if out.output_type == "error":
                assert "File " not in text and "skipping hidden" not in text, text
                assert text.count("Cell In[") >= 1


def test_notebooks_save_the_kernels_full_language_info():
    """JupyterLab then finds nothing to update when it opens a lesson: it opens unmodified."""
    from ipykernel.ipkernel import IPythonKernel

    want = dict(IPythonKernel.language_info)
    for path in sorted(LESSONS.glob("[0-9][0-9]-*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["language_info"] == want, path.name
        assert [c.id for c in nb.cells] == [f"cell-{i:02d}" for i in range(len(nb.cells))]


def test_sources_round_trip_through_jupytext():
    for source in SOURCES:
        text = source.read_text()
        assert build.canonical(text) == text, source.name
        cells = build.parse(text)
        assert [c.source for c in build.parse(build.to_source(build.notebook(source)))] == [
            c.source for c in cells
        ]
