"""Student notebooks from source notebooks: solutions between markers become a stub.

The convention is nbgrader's: in a source notebook, the reference solution sits between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines. The student version replaces it
by ``# YOUR CODE HERE`` and ``raise NotImplementedError()`` (in markdown, by
``YOUR ANSWER HERE``), clears outputs and records the exercise's name in the metadata.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)


class MarkerError(ValueError):
    """A source notebook's solution markers are unbalanced (unterminated, nested, stray)."""


def strip_solution(text: str, stub: tuple[str, ...] = CODE_STUB, where: str = "") -> str:
    """``text`` with every marked solution replaced by ``stub`` (at the marker's indent)."""
    out: list[str] = []
    begin_line = 0
    for number, line in enumerate(text.split("\n"), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if begin_line:
                raise MarkerError(
                    f"{where}line {number}: {BEGIN} inside another solution "
                    f"(opened on line {begin_line}); markers cannot nest"
                )
            begin_line = number
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in stub)
        elif marker == END:
            if not begin_line:
                raise MarkerError(f"{where}line {number}: {END} without a {BEGIN} before it")
            begin_line = 0
        elif not begin_line:
            out.append(line)
    if begin_line:
        raise MarkerError(f"{where}line {begin_line}: {BEGIN} is never closed by {END}")
    return "\n".join(out)


def solutions(text: str) -> list[str]:
    """The lines between markers in ``text`` (what must never reach a student)."""
    inside, found = False, []
    for line in text.split("\n"):
        marker = line.strip()
        if marker in (BEGIN, END):
            inside = marker == BEGIN
        elif inside:
            found.append(line)
    return found


def exercise_name(path: Path) -> str:
    """The exercise a file name names: ``02-linear-model.ipynb`` -> ``linear-model``."""
    stem = Path(path).stem
    head, _, rest = stem.partition("-")
    return rest if head.isdigit() and rest else stem


def student_version(nb: Any, name: str, where: str = "") -> Any:
    """A student copy of the source notebook ``nb`` (an nbformat NotebookNode)."""
    out = copy.deepcopy(nb)
    for index, cell in enumerate(out.cells):
        here = f"{where}cell {index}, "
        stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
        cell.source = strip_solution(cell.source, stub, here)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    out.metadata["fedlab"] = {"exercise": name}
    return out


def render(src: Path) -> str:
    """The text of the student notebook generated from the source notebook at ``src``."""
    import nbformat  # lazy: only authors and the grader need it

    nb = nbformat.read(src, as_version=4)
    name = nb.metadata.get("fedlab", {}).get("exercise") or exercise_name(src)
    return nbformat.writes(student_version(nb, name, f"{src}, ")) + "\n"


def generate(src: Path, dest_dir: Path) -> Path:
    """Write the student version of ``src`` into ``dest_dir`` (same file name); returns its path."""
    dest = Path(dest_dir) / Path(src).name
    dest.write_text(render(src), encoding="utf-8")
    return dest
