"""Lesson 15's practice: the folded solution passes the check cell, and other answers get
friendly feedback instead (the lesson notebook itself is validated by nbval)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from pathlib import Path

import matplotlib
import pytest

LESSON = Path(__file__).resolve().parents[1] / "lessons" / "15-federated-datasets.ipynb"


def _cells() -> tuple[list[str], str]:
    """The lesson's code cells (those that teach an error left out) and the solution."""
    nb = json.loads(LESSON.read_text())
    code = [
        "".join(c["source"])
        for c in nb["cells"]
        if c["cell_type"] == "code" and "raises-exception" not in c["metadata"].get("tags", [])
    ]
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    solution = re.search(r"<summary>Solution</summary>\s*```python\n(.*?)```", markdown, re.S)
    return code, solution[1]


def _run(attempt: str | None, monkeypatch) -> str:
    """Run the lesson with ``attempt`` in place of the practice cell; the check's words."""
    matplotlib.use("Agg")
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    code, _ = _cells()
    ns: dict = {"__name__": "__lesson__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.warns(UserWarning, match="already hooked"):
        for cell in code:
            if cell.startswith("test_loader = ...") and attempt is not None:
                cell = attempt
            checking = "practice.check(" in cell
            if checking:
                cell = cell.replace('practice.check("', 'print(practice.check("') + ")"
                out.truncate(0)
                out.seek(0)
            exec(compile(cell, "<lesson cell>", "exec"), ns)
            if checking:
                return out.getvalue().strip()
    raise AssertionError("the lesson has no practice check")


@pytest.mark.slow
def test_the_solution_passes_the_check(monkeypatch):
    _, solution = _cells()
    words = _run(solution, monkeypatch)
    assert re.search(r"✓ \d+ of 150 right, the same count as here", words)
    assert words.endswith("Well done: every step is right.")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "feedback"),
    [
        (None, "`test_loader` is still `...`"),
        (("batch_size=50", "batch_size=40"), "✗ batches of 50"),
        (("correct += count.get().item()", "correct += count.get().item() + 1"), "you counted"),
        (("correct += count.get().item()", "correct += count.get()"), "✗ `correct` is a plain"),
        (("(bob, alice, carol)", "(alice, bob, carol)"), "✗ the test set is on bob, alice"),
        (("del data, target, count", "model.send(carol)"), "✗ the model is back here"),
    ],
)
def test_other_answers_get_friendly_feedback(monkeypatch, change, feedback):
    _, solution = _cells()
    attempt = None if change is None else solution.replace(*change)
    assert attempt is None or attempt != solution
    assert feedback in _run(attempt, monkeypatch)
