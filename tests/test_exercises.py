"""The exercise notebooks: generated from their sources, solvable, and blank when handed out."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from fedlab.grading import EXERCISES, check
from fedlab.grading.authoring import (
    MarkerError,
    exercise_name,
    render,
    solutions,
    strip_solution,
    student_version,
)

pytestmark = pytest.mark.filterwarnings("ignore:torch is already hooked")
ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "exercises" / "source").glob("*.ipynb"))
from tests.support.grading import no_leftovers, variants  # noqa: F401, E402


def test_every_exercise_has_a_source_and_a_student_notebook():
    names = {nbformat.read(p, as_version=4).metadata["fedlab"]["exercise"] for p in SOURCES}
    assert names == set(EXERCISES)
    for src in SOURCES:
        assert (ROOT / "exercises" / src.name).exists(), "run python tools/make_exercises.py"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_student_notebook_is_up_to_date(src):
    student = ROOT / "exercises" / src.name
    assert student.read_text(encoding="utf-8") == render(src), (
        f"{student.name} is out of date with its source: run python tools/make_exercises.py"
    )


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_no_solution_text_reaches_the_student(src):
    source = nbformat.read(src, as_version=4)
    student_text = (ROOT / "exercises" / src.name).read_text(encoding="utf-8")
    student = nbformat.read(ROOT / "exercises" / src.name, as_version=4)
    secret = [ln.strip() for c in source.cells for ln in solutions(c.source) if ln.strip()]
    assert secret, "every exercise has a solution to hide"
    code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    lines = {ln.strip() for ln in code.split("\n")}
    leaked = [ln for ln in secret if ln in lines]
    assert not leaked, f"solution lines in the student notebook: {leaked}"
    assert "BEGIN SOLUTION" not in student_text and "END SOLUTION" not in student_text
    assert "raise NotImplementedError()" in code
    assert student.metadata["fedlab"]["exercise"] == source.metadata["fedlab"]["exercise"]
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


def test_strip_solution_keeps_indent_and_surroundings():
    text = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\nf()"
    assert strip_solution(text) == (
        "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()\nf()"
    )
    assert solutions(text) == ["    return 1"]
    assert strip_solution("no markers\n") == "no markers\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\n### BEGIN SOLUTION\nb", "line 2: ### BEGIN SOLUTION is never closed"),
        ("### END SOLUTION", "line 1: ### END SOLUTION without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION",
         "line 2: ### BEGIN SOLUTION inside another solution (opened on line 1)"),
    ],
)  # fmt: skip
def test_unbalanced_markers_are_errors(text, message):
    with pytest.raises(MarkerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        strip_solution(text)


def test_marker_errors_name_the_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("### BEGIN SOLUTION")]
    with pytest.raises(MarkerError, match="cell 1, line 1"):
        student_version(nb, "demo")
    path = tmp_path / "07-demo.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(MarkerError, match=str(path)):
        render(path)


def test_generator_round_trip(tmp_path):
    """A solution becomes a stub; rendering the same source twice gives the same bytes."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("Explain.\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
        nbformat.v4.new_code_cell("### BEGIN SOLUTION\ny = 2\n### END SOLUTION\nprint(y)"),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="2\n")]
    path = tmp_path / "07-demo.ipynb"
    nbformat.write(nb, path)
    first = render(path)
    assert first == render(path)
    out = nbformat.reads(first, as_version=4)
    assert out.cells[0].source == "Explain.\nYOUR ANSWER HERE"
    assert out.cells[1].source == "# YOUR CODE HERE\nraise NotImplementedError()\nprint(y)"
    assert out.cells[1].outputs == [] and out.metadata["fedlab"] == {"exercise": "demo"}
    assert exercise_name(path) == "demo"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_reference_solution_earns_full_marks(src):
    nb = nbformat.read(src, as_version=4)
    ns = variants.run_in_process(nb)
    assert ns["__errors__"] == []
    report = check(nb.metadata["fedlab"]["exercise"], namespace=ns)
    assert report.score == report.max_score, repr(report)
    assert 2 <= len(report.results) <= 5


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_blank_notebook_earns_zero_with_helpful_messages(src):
    nb = nbformat.read(ROOT / "exercises" / src.name, as_version=4)
    ns = variants.run_in_process(nb)
    assert any("NotImplementedError" in e for e in ns["__errors__"])
    report = check(nb.metadata["fedlab"]["exercise"], namespace=ns)
    assert report.score == 0, repr(report)
    for r in report.results:
        assert r.message and r.hint, f"{r.name}: a failed criterion says what and hints how"
        assert "Traceback" not in r.message
