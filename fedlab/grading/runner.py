"""Grade one submission in a fresh kernel: run its cells, then the exercise's checks.

``python -m fedlab.grading.runner NOTEBOOK --timeout S`` prints one JSON line (the
result) and never fails on a student's mistake: a cell that raises is recorded and the
next cells still run (as in nbgrader); a cell still running when the notebook's time is up
is interrupted, and the checks then grade what the notebook did until then.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from fedlab.grading.authoring import exercise_name
from fedlab.grading.exercises import EXERCISES
from fedlab.grading.report import Report

MARKER = "FEDLAB-GRADING-RESULT "
CHECK_TIMEOUT = 60  # seconds for the checks themselves, after the student's cells


def emit(name: str) -> None:
    """Print the check of ``name`` as one marked JSON line (run inside the grading kernel)."""
    from fedlab.grading.check import check

    print(MARKER + json.dumps(check(name).to_dict()))


def identify(nb: Any, path: Path) -> str:
    """The exercise a submission answers: its metadata, else its file name."""
    meta = nb.metadata.get("fedlab", {}) if hasattr(nb, "metadata") else {}
    name = meta.get("exercise") if isinstance(meta, dict) else None
    if name:
        if name not in EXERCISES:
            raise ValueError(f"the notebook says it answers {name!r}, which is not an exercise")
        return name
    guess = exercise_name(path)
    for known in EXERCISES:
        if known == guess or known in Path(path).stem:
            return known
    raise ValueError("cannot tell which exercise this is (no fedlab metadata, unknown file name)")


def load(path: Path) -> tuple[Any, str]:
    """Read and validate a submission and tell its exercise (raises on any problem)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb, identify(nb, path)


def unreadable(path: Path, error: Exception) -> dict[str, Any]:
    """The result of a file that is not a gradable notebook."""
    report = Report("unknown", [], f"not a gradable notebook: {type(error).__name__}: {error}")
    return {"file": str(path), "report": report.to_dict(), "seconds": 0.0}


def _errors(cell: Any, index: int) -> list[str]:
    return [
        f"cell {index} raised {o.get('ename', 'an error')}: {str(o.get('evalue', ''))[:200]}"
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]


def grade_notebook(path: Path, timeout: float) -> dict[str, Any]:
    """Execute the notebook at ``path`` and grade it; returns the result as plain data."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    started = time.monotonic()
    try:
        nb, name = load(path)
    except Exception as e:
        return unreadable(path, e)
    problems: list[str] = []
    client = NotebookClient(
        nb, timeout=int(timeout), kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, error_on_timeout={"ename": "Timeout", "evalue": "interrupted"},
        shutdown_kernel="immediate",  # the kernel is thrown away: no need to wait for it
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )  # fmt: skip
    check_cell = nbformat.v4.new_code_cell(
        f"from fedlab.grading.runner import emit as _fedlab_emit\n_fedlab_emit({name!r})"
    )
    payload = None
    try:
        with client.setup_kernel():
            deadline = time.monotonic() + timeout  # the kernel's start-up is not the student's
            for index, cell in enumerate(list(nb.cells)):
                if cell.cell_type != "code":
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    problems.append(
                        f"timed out after {timeout:g} s: cells from {index} on never ran"
                    )
                    break
                client.timeout = max(1, math.ceil(left))  # ceil: an interrupt means time is up
                client.execute_cell(cell, index)
                if time.monotonic() >= deadline:  # nbclient interrupted the cell
                    problems.append(f"timed out after {timeout:g} s in cell {index} (interrupted)")
                    break
                problems.extend(_errors(cell, index))
            client.timeout = CHECK_TIMEOUT
            nb.cells.append(check_cell)  # nbclient keeps outputs by the cell's index
            client.execute_cell(check_cell, len(nb.cells) - 1)
        for o in check_cell.outputs:
            for line in str(o.get("text", "")).splitlines():
                if line.startswith(MARKER):
                    payload = json.loads(line[len(MARKER) :])
        problems.extend(_errors(check_cell, len(nb.cells) - 1))
    except Exception as e:  # the kernel died, or could not start
        problems.append(f"the kernel failed: {type(e).__name__}: {e}")
    if payload is not None:
        report = Report.from_dict(payload)
    else:
        report = EXERCISES[name].grade({}, None)  # every criterion fails, with its hint
        problems.append("the checks could not run in the kernel")
    report.error = "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else "")
    seconds = round(time.monotonic() - started, 1)
    return {"file": str(path), "report": report.to_dict(), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    """Grade one notebook and print its result as one JSON line."""
    parser = argparse.ArgumentParser(description="grade one fedlab exercise notebook")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    print(json.dumps(grade_notebook(args.notebook, args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
