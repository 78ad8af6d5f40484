"""Adversarial submissions (issue 21): each graded by ``fedlab grade`` to exactly its score.

One run grades them all (one at a time, as an instructor would with ``-j 1``): forgeries
score 0, partial forgeries and privacy leaks keep exactly what the real work earns, result
cheats lose the criteria they faked, and honest work hidden behind a hang, wrong metadata
or a hostile neighbour keeps full marks.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import pytest

from fedlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "submission_attacks", ROOT / "tests" / "data" / "submissions" / "attacks.py"
)
attacks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(attacks)

pytestmark = pytest.mark.slow
TIMEOUT = 20  # seconds per notebook: the hanging one uses all of it


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade every attack once: (exit status, expected, results by file, originals' bytes)."""
    base = tmp_path_factory.mktemp("attacks")
    folder, out = base / "submissions", base / "results.json"
    expected = attacks.write_all(folder, out)
    before = {p: p.read_bytes() for p in folder.rglob("*.ipynb")}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["grade", str(folder), "--json", str(out), "--timeout", str(TIMEOUT)])
    data = json.loads(out.read_text())
    by_file = {
        Path(s["extra_data"]["file"]).relative_to(folder).as_posix(): s for s in data["submissions"]
    }
    return code, expected, by_file, before


def test_every_attack_scores_exactly_what_it_earned(graded):
    code, expected, by_file, _ = graded
    assert code == 0
    assert set(by_file) == set(expected)
    got = {f: (s["score"], sum(t["max_score"] for t in s["tests"])) for f, s in by_file.items()}
    assert got == expected


def test_no_notebook_could_rewrite_another(graded):
    """The rewriting notebook ran in a confined copy: every original is as it was."""
    before = graded[3]
    for path, data in before.items():
        assert path.read_bytes() == data, f"{path} was changed"


def test_a_hang_is_graded_on_the_work_done_before_it(graded):
    result = graded[2]["01-remote-tensors-hang.ipynb"]
    assert "timed out after 20 s in cell 6" in result["output"]
    assert result["score"] == 4


def test_leaks_name_the_message(graded):
    by_file = graded[2]
    for name, words in (
        ("02-linear-model-times-two.ipynb", "derived from bob's data reached me"),
        ("02-linear-model-objects.ipynb", "store read"),
        ("07-plans-flip.ipynb", "derived from bob's x reached me"),
        ("06-trusted-aggregator-difference.ipynb", "reached me"),
    ):
        outputs = " ".join(t["output"] for t in by_file[name]["tests"] if t["score"] == 0)
        assert words in outputs, (name, outputs)


def test_result_cheats_are_told_what_is_missing(graded):
    by_file = graded[2]
    key = " ".join(t["output"] for t in by_file["07-plans-answer-key.ipynb"]["tests"])
    assert "is not what came home from bob's w_ptr" in key
    one = " ".join(t["output"] for t in by_file["07-plans-one-call-per-worker.ipynb"]["tests"])
    assert "took 1 training step on bob, not 5" in one
