"""``fedlab grade``: real kernels, a hang, a broken file, and the output files' shapes."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
from pathlib import Path

import nbformat
import pytest

from fedlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "submission_variants", ROOT / "tests" / "data" / "submissions" / "variants.py"
)
variants = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(variants)

TIMEOUT = 25  # seconds per notebook: the hanging one uses all of it, the others need a few


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade five submissions once, two at a time: (exit code, stdout, stderr, json, csv rows)."""
    folder = tmp_path_factory.mktemp("submissions")
    variants.write_all(folder)
    keep = {"linear-model-peek", "remote-tensors-hang", "broken", "wrong-exercise"}
    for p in folder.glob("*.ipynb"):
        if p.stem not in keep:
            p.unlink()
    # No metadata: the exercise is recognised from the file name.
    nb = variants.submission("pointer-chains")
    del nb.metadata["fedlab"]
    nbformat.write(nb, folder / "dave-pointer-chains.ipynb")
    out_json, out_csv = folder.parent / "results.json", folder.parent / "grades.csv"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["grade", str(folder), "--json", str(out_json), "--csv", str(out_csv),
                     "-j", "2", "--timeout", str(TIMEOUT)])  # fmt: skip
    with out_csv.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return code, stdout.getvalue(), stderr.getvalue(), json.loads(out_json.read_text()), rows


def _by_file(data: dict) -> dict[str, dict]:
    return {Path(s["extra_data"]["file"]).name: s for s in data["submissions"]}


def test_every_submission_is_reported_in_order(graded):
    code, _, err, data, rows = graded
    assert code == 0
    names = [Path(s["extra_data"]["file"]).name for s in data["submissions"]]
    assert names == sorted(names) and len(names) == 5
    assert [Path(r["file"]).name for r in rows] == names
    assert "5/5" in err and "dave-pointer-chains.ipynb" in err  # the bar names the notebook


def test_known_wrong_solution_in_a_kernel_loses_only_privacy(graded):
    result = _by_file(graded[3])["linear-model-peek.ipynb"]
    assert result["score"] == 4
    failed = [t["name"] for t in result["tests"] if t["score"] < t["max_score"]]
    assert failed == ["the training data and targets never left bob"]
    assert (
        "bob -> me: reply to a fetch"
        in next(t for t in result["tests"] if t["score"] == 0)["output"]
    )


def test_exercise_recognised_from_the_file_name(graded):
    result = _by_file(graded[3])["dave-pointer-chains.ipynb"]
    assert result["extra_data"]["exercise"] == "pointer-chains"
    assert result["score"] == sum(t["max_score"] for t in result["tests"]) == 5


def test_hanging_submission_times_out_and_keeps_what_it_earned(graded):
    result = _by_file(graded[3])["remote-tensors-hang.ipynb"]
    assert f"timed out after {TIMEOUT} s in cell 6" in result["output"]
    assert result["score"] == 4  # everything before the endless sleep counts
    assert "timed out" in graded[1]


def test_broken_files_are_reported_without_stopping_the_others(graded):
    by_file = _by_file(graded[3])
    assert "not a gradable notebook: NotJSONError" in by_file["broken.ipynb"]["output"]
    # The metadata is never trusted: a name that says no exercise cannot be graded.
    assert "cannot tell which exercise" in by_file["wrong-exercise.ipynb"]["output"]
    assert by_file["broken.ipynb"]["score"] == 0 and by_file["broken.ipynb"]["tests"] == []


def test_table_and_csv_shapes(graded):
    _, out, _, _, rows = graded
    assert "linear-model (6 points)" in out and "pointer-chains (5 points)" in out
    assert "  1. weights and bias live on bob (1)" in out
    peek = next(line for line in out.splitlines() if "linear-model-peek.ipynb" in line)
    assert peek.split()[1:] == ["1/1", "1/1", "2/2", "0/2", "4/6"]
    row = next(r for r in rows if r["file"].endswith("linear-model-peek.ipynb"))
    assert row["score"] == "4" and row["max_score"] == "6" and row["exercise"] == "linear-model"
    assert row["linear-model: the training data and targets never left bob"] == "0"
    assert row["pointer-chains: the data never passed through me"] == ""
    assert set(rows[0]) >= {"file", "exercise", "score", "max_score", "error"}


def test_one_submission_writes_exactly_the_gradescope_object(tmp_path):
    bad = tmp_path / "only.ipynb"
    bad.write_text("not json", encoding="utf-8")
    out = tmp_path / "results.json"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["grade", str(bad), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data) == {"score", "tests", "output", "execution_time", "extra_data"}
    assert data["score"] == 0 and data["tests"] == []
    assert data["extra_data"] == {"file": str(bad), "exercise": "unknown"}


def test_no_notebooks_is_a_usage_error(tmp_path, capsys):
    assert main(["grade", str(tmp_path)]) == 2
    assert "holds no notebook" in capsys.readouterr().err


def test_a_mistyped_path_is_an_error_before_any_grading(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "no-such-folder")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_output_paths_are_checked_before_grading(tmp_path, capsys):
    nb = tmp_path / "01-remote-tensors.ipynb"
    nbformat.write(variants.submission("remote-tensors"), nb)
    (tmp_path / "taken").mkdir()
    assert main(["grade", str(nb), "--json", str(tmp_path / "taken")]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["grade", str(nb), "--csv", str(tmp_path / "nowhere" / "g.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_table_keeps_multi_line_errors_inside_their_row():
    from fedlab.grading.cli import table
    from fedlab.grading.report import Report

    rep = Report("unknown", [], "first line\nsecond line")
    text = table([{"file": "/x/a.ipynb", "report": rep.to_dict()}])
    assert "      first line\n      second line" in text


def test_exercise_pinned_by_option_or_folder_not_by_metadata(tmp_path):
    from fedlab.grading.submissions import identify

    assert identify(tmp_path / "07-plans.ipynb") == "plans"
    assert identify(tmp_path / "linear-model" / "alice.ipynb") == "linear-model"
    assert identify(tmp_path / "07-plans.ipynb", "remote-tensors") == "remote-tensors"
    with pytest.raises(ValueError, match="cannot tell"):
        identify(tmp_path / "homework.ipynb")
