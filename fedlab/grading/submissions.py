"""Submissions as the grader sees them: found, read once, pinned to an exercise, restored.

Everything is read into memory before any notebook runs, so a notebook that rewrites
files (another student's submission) changes nothing that is graded. The exercise is
pinned by ``--exercise``, else by the file name (``02-linear-model.ipynb``) or a folder
name (``linear-model/alice.ipynb``), never by the notebook's own metadata. The given
cells (every code cell of the source notebook without solution markers) are put back
from the source, matched by cell id, as nbgrader restores its locked cells.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedlab.grading.authoring import BEGIN, exercise_name
from fedlab.grading.exercises import EXERCISES

SOURCES = Path(__file__).resolve().parents[2] / "exercises" / "source"


class InputError(ValueError):
    """A path given to ``fedlab grade`` that cannot be graded (missing, empty...)."""


@dataclass(eq=False)
class Submission:
    """One notebook to grade: where it was, its bytes, and the exercise it answers."""

    path: Path
    data: bytes
    exercise: str | None  # None: not identified (``problem`` says why)
    problem: str = ""


def find(paths: list[Path]) -> list[Path]:
    """The notebooks named, folders searched (checkpoints skipped), in a stable order."""
    found: list[Path] = []
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_dir():
            inside = sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
            if not inside:
                raise InputError(f"{p}: the folder holds no notebook (*.ipynb)")
            found += inside
        else:
            found.append(p)
    return list(dict.fromkeys(found))


def identify(path: Path, pinned: str | None = None) -> str:
    """The exercise ``path`` answers: ``pinned``, else its file name, else a folder's name."""
    if pinned:
        if pinned not in EXERCISES:
            raise InputError(
                f"--exercise {pinned}: there is no such exercise ({', '.join(EXERCISES)})"
            )
        return pinned
    guess = exercise_name(path)
    for known in EXERCISES:
        if known == guess or known in Path(path).stem:
            return known
    for folder in Path(path).parents:
        for known in EXERCISES:
            if known == exercise_name(Path(folder.name)) or known == folder.name:
                return known
    raise ValueError(
        "cannot tell which exercise this is from its file or folder name: name it like "
        "02-linear-model.ipynb, put it in a folder named after the exercise, or pass --exercise"
    )


def read_all(paths: list[Path], pinned: str | None = None) -> list[Submission]:
    """Read every notebook's bytes now (before any runs) and pin its exercise."""
    out = []
    for path in find(paths):
        data = path.read_bytes()
        try:
            out.append(Submission(path, data, identify(path, pinned)))
        except InputError:
            raise
        except ValueError as e:
            out.append(Submission(path, data, None, str(e)))
    return out


def source(exercise: str, folder: Path = SOURCES) -> Any:
    """The source notebook of ``exercise`` (read fresh: the caller may change it)."""
    import nbformat

    for p in sorted(Path(folder).glob("*.ipynb")):
        nb = nbformat.read(p, as_version=4)
        if nb.metadata.get("fedlab", {}).get("exercise") == exercise:
            return nb
    raise FileNotFoundError(f"no source notebook for {exercise!r} in {folder}")


def given_ids(src: Any) -> list[str]:
    """The ids of the source's given code cells (those without solution markers)."""
    return [c.get("id") for c in src.cells if c.cell_type == "code" and BEGIN not in c.source]


def restore(nb: Any, src: Any) -> tuple[Any, list[str]]:
    """``nb`` with its given cells as in ``src``; also the ids of the cells put back."""
    out = copy.deepcopy(nb)
    given = {c.get("id"): c for c in src.cells if c.cell_type == "code" and BEGIN not in c.source}
    order = [c.get("id") for c in src.cells]
    seen = set()
    for cell in out.cells:
        ref = given.get(cell.get("id"))
        if ref is not None and cell.get("id") not in seen:
            seen.add(cell.get("id"))
            cell.cell_type, cell.source = "code", ref.source
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    for cid, ref in given.items():
        if cid in seen:
            continue
        # A given cell the student deleted goes back after the cell that precedes it.
        before = order[: order.index(cid)]
        at = 0
        for i, cell in enumerate(out.cells):
            if cell.get("id") in before:
                at = i + 1
        out.cells.insert(at, copy.deepcopy(ref))
    return out, sorted(given)
