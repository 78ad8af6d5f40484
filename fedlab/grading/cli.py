"""``fedlab grade SUBMISSIONS...``: grade many notebooks, each in its own confined kernel.

Every path is checked, every notebook read and every output file checked before the first
notebook runs: a missing path, a folder without notebooks, or an output path that cannot
be written is an error (exit status 2) that costs no grading time. Each submission then
runs in its own kernel with its workers in a process the grader owns
(``fedlab.grading.runner``); a submission that hangs, crashes or is not even JSON never
stops the others. The results print as a table per exercise; ``--json`` writes
Gradescope's results format and ``--csv`` one row per submission.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from fedlab.grading.exercises import EXERCISES
from fedlab.grading.report import Report
from fedlab.grading.submissions import InputError, Submission, read_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fedlab grade``."""
    parser.add_argument("submissions", nargs="+", type=Path,
                        help="notebooks, or folders searched for *.ipynb")  # fmt: skip
    parser.add_argument("--exercise", help="grade every notebook as this exercise (default: "
                        "from the file or folder name, never from the notebook)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write Gradescope-format results here")
    parser.add_argument("--csv", type=Path, help="write one row per submission here")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="grade N notebooks at once")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds each notebook's cells may run (default 120)")  # fmt: skip
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="do not confine kernels with Landlock (for systems without it)",
    )


def check_output(path: Path | None) -> None:
    """Fail now, not after grading, if ``path`` cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a file name for the results")
    if not path.parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{path}: cannot write there")


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


def _indent(text: str, prefix: str) -> list[str]:
    """``text`` as lines under a table row, each line indented (errors may be multi-line)."""
    return [prefix + line for line in text.splitlines() if line.strip()]


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
                out += _indent(rep.error, "      ")
        out.append("")
    return "\n".join(out)


def gradescope(result: dict[str, Any]) -> dict[str, Any]:
    """One submission in Gradescope's ``results.json`` format (file and exercise in extra_data)."""
    report = Report.from_dict(result["report"])
    out = report.gradescope()
    out["execution_time"] = result.get("seconds", 0)
    out["extra_data"] = {"file": result["file"], "exercise": report.exercise}
    return out


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it (all or nothing)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: Path, results: list[dict[str, Any]]) -> None:
    """One submission: exactly Gradescope's object. Several: ``{"submissions": [object...]}``."""
    objects = [gradescope(r) for r in results]
    data = objects[0] if len(objects) == 1 else {"submissions": objects}
    _write(path, json.dumps(data, indent=2) + "\n")


def write_csv(path: Path, results: list[dict[str, Any]]) -> None:
    """One row per submission; a column per criterion of every exercise that appears."""
    import io

    reports = [(r["file"], Report.from_dict(r["report"])) for r in results]
    columns: list[str] = []
    for _, rep in reports:
        for x in rep.results:
            key = f"{rep.exercise}: {x.name}"
            if key not in columns:
                columns.append(key)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "exercise", "score", "max_score", *columns, "error"])
    for file, rep in reports:
        scores = {f"{rep.exercise}: {x.name}": x.score for x in rep.results}
        row = [file, rep.exercise, rep.score, rep.max_score]
        writer.writerow(row + [scores.get(c, "") for c in columns] + [rep.error])
    _write(path, buf.getvalue())


def _progress(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="grading", unit="notebook", file=sys.stderr, dynamic_ncols=True,
                bar_format="{desc} {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} "
                "[{elapsed}<{remaining}] {postfix}")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Grade every submission, print the table, write the files asked for."""
    from fedlab.grading import runner

    try:
        subs = read_all(args.submissions, args.exercise)
        check_output(args.json)
        check_output(args.csv)
    except InputError as e:
        print(f"fedlab grade: {e}", file=sys.stderr)
        return 2
    label = labels([str(s.path) for s in subs])
    grader = runner.Grader(max(1, args.jobs), sandbox=not args.no_sandbox)
    grader.others = {s.path.resolve() for s in subs}
    runner.become_subreaper()
    results: dict[Path, dict[str, Any]] = {}
    bar = _progress(len(subs))
    running: dict[Submission, float] = {}

    def one(sub: Submission) -> dict[str, Any]:
        running[sub] = time.monotonic()
        bar.set_postfix_str(", ".join(label[str(s.path)] for s in running), refresh=True)
        try:
            return grader.grade(sub, args.timeout)
        finally:
            running.pop(sub, None)

    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(one, s): s for s in subs}
            for future in as_completed(futures):
                sub = futures[future]
                try:
                    results[sub.path] = future.result()
                except Exception as e:  # a bug of ours must not lose the other results
                    error = f"the grader failed: {type(e).__name__}: {e}"
                    results[sub.path] = runner.failed(sub.path, sub.exercise, error)
                bar.update(1)
                bar.set_postfix_str(", ".join(label[str(s.path)] for s in running) or "done")
    finally:
        bar.close()
        grader.close()
        runner.sweep(set())
        runner.become_subreaper(False)
    ordered = [results[s.path] for s in subs]
    print(table(ordered))
    code = 0
    for path, write in ((args.json, write_json), (args.csv, write_csv)):
        if path is None:
            continue
        try:
            write(path, ordered)
        except OSError as e:
            print(f"fedlab grade: could not write {path}: {e}", file=sys.stderr)
            code = 1
    return code
