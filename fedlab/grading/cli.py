"""``fedlab grade SUBMISSIONS...``: grade many notebooks, each in a fresh kernel, in parallel.

Each submission runs in its own process (``python -m fedlab.grading.runner``), so a
submission that hangs, crashes or is not even JSON never stops the others. The
results print as a table per exercise; ``--json`` writes Gradescope's results format
and ``--csv`` one row per submission.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from fedlab.grading.exercises import EXERCISES
from fedlab.grading.report import Report
from fedlab.grading.runner import load, unreadable

GRACE = 120  # seconds on top of --timeout for the kernel's start and the checks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fedlab grade``."""
    parser.add_argument("submissions", nargs="+", type=Path,
                        help="notebooks, or folders searched for *.ipynb")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write Gradescope-format results here")
    parser.add_argument("--csv", type=Path, help="write one row per submission here")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="grade N notebooks at once")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds each notebook's cells may run (default 120)")  # fmt: skip


def find_notebooks(paths: list[Path]) -> list[Path]:
    """The notebooks named, with folders expanded (checkpoints skipped), in a stable order."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        else:
            found.append(p)
    return list(dict.fromkeys(found))


def grade_one(path: Path, timeout: float) -> dict[str, Any]:
    """Grade one notebook in a child process; a crash or hang becomes a reported error."""
    try:
        load(path)  # a file that is not a notebook of a known exercise needs no kernel
    except Exception as e:
        return unreadable(path, e)
    cmd = [sys.executable, "-m", "fedlab.grading.runner", str(path), "--timeout", str(timeout)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + GRACE)
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines:
            return json.loads(lines[-1])
        error = f"the grader crashed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    except subprocess.TimeoutExpired:
        error = f"killed after {timeout + GRACE:g} s"
    except Exception as e:
        error = f"the grader failed: {type(e).__name__}: {e}"
    return {"file": str(path), "report": Report("unknown", [], error).to_dict(), "seconds": 0.0}


class Progress:
    """A one-line progress bar on stderr (plain text: no extra dependency)."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.tty = sys.stderr.isatty()

    def step(self, label: str) -> None:
        """Count one finished submission."""
        self.done += 1
        filled = round(20 * self.done / self.total)
        line = f"grading [{'#' * filled}{'.' * (20 - filled)}] {self.done}/{self.total} {label}"
        print(("\r" + line[:100].ljust(100)) if self.tty else line, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)  # fmt: skip
        if self.tty and self.done == self.total:
            print(file=sys.stderr)


def labels(files: list[str]) -> dict[str, str]:
    """How each file is named in the table: its path below the folder all files share.

    Instructors often keep one folder per student (``alice/01-x.ipynb``, ``bob/01-x.ipynb``),
    so the bare file names would collide.
    """
    paths = [Path(f).resolve() for f in files]
    if len(paths) == 1:
        return {files[0]: paths[0].name}
    common = Path(os.path.commonpath([p.parent for p in paths]))
    return {f: p.relative_to(common).as_posix() for f, p in zip(files, paths)}


def table(results: list[dict[str, Any]]) -> str:
    """The results as text: one table per exercise, criteria numbered, errors under rows."""
    out: list[str] = []
    groups: dict[str, list[tuple[str, Report]]] = {}
    for r in results:
        report = Report.from_dict(r["report"])
        groups.setdefault(report.exercise, []).append((r["file"], report))
    label = labels([r["file"] for r in results])
    width = max(len(v) for v in label.values()) + 2
    for name, rows in groups.items():
        ex = EXERCISES.get(name)
        criteria = ex.criteria if ex else ()
        total = sum(c.points for c in criteria)
        out.append(f"{name} ({total} points)" if ex else "submissions that could not be graded")
        out += [f"  {i}. {c.name} ({c.points})" for i, c in enumerate(criteria, 1)]
        head = "".join(f"{i:>6}" for i in range(1, len(criteria) + 1))
        out.append(f"  {'file':<{width}}{head}{'total':>8}")
        for file, rep in rows:
            cells = "".join(f"{f'{x.score}/{x.points}':>6}" for x in rep.results)
            out.append(f"  {label[file]:<{width}}{cells}{f'{rep.score}/{rep.max_score}':>8}")
            if rep.error:
                out.append(f"      {rep.error}")
        out.append("")
    return "\n".join(out)


def gradescope(result: dict[str, Any]) -> dict[str, Any]:
    """One submission in Gradescope's ``results.json`` format (file and exercise in extra_data)."""
    report = Report.from_dict(result["report"])
    out = report.gradescope()
    out["execution_time"] = result.get("seconds", 0)
    out["extra_data"] = {"file": result["file"], "exercise": report.exercise}
    return out


def write_json(path: Path, results: list[dict[str, Any]]) -> None:
    """One submission: exactly Gradescope's object. Several: ``{"submissions": [object...]}``."""
    objects = [gradescope(r) for r in results]
    data = objects[0] if len(objects) == 1 else {"submissions": objects}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_csv(path: Path, results: list[dict[str, Any]]) -> None:
    """One row per submission; a column per criterion of every exercise that appears."""
    reports = [(r["file"], Report.from_dict(r["report"])) for r in results]
    columns: list[str] = []
    for _, rep in reports:
        for x in rep.results:
            key = f"{rep.exercise}: {x.name}"
            if key not in columns:
                columns.append(key)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "exercise", "score", "max_score", *columns, "error"])
        for file, rep in reports:
            scores = {f"{rep.exercise}: {x.name}": x.score for x in rep.results}
            row = [file, rep.exercise, rep.score, rep.max_score]
            writer.writerow(row + [scores.get(c, "") for c in columns] + [rep.error])


def run(args: argparse.Namespace) -> int:
    """Grade every submission, print the table, write the files asked for."""
    notebooks = find_notebooks(args.submissions)
    if not notebooks:
        print("fedlab grade: no notebooks found in the paths given", file=sys.stderr)
        return 2
    progress = Progress(len(notebooks))
    results: dict[Path, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(grade_one, nb, args.timeout): nb for nb in notebooks}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            progress.step(futures[future].name)
    ordered = [results[nb] for nb in notebooks]
    print(table(ordered))
    if args.json:
        write_json(args.json, ordered)
    if args.csv:
        write_csv(args.csv, ordered)
    return 0
