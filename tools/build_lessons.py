"""Build the lesson notebooks from their Python sources, then run them to store the outputs.

Each lesson is written as ``tools/lessons/NN-slug.py`` in the "percent" format that
editors and jupytext understand: ``# %%`` starts a code cell, ``# %% [markdown]`` a
markdown cell whose lines are comments, and ``# %% tags=["raises-exception"]`` tags a
cell that teaches an error; a magic is written commented, ``# %load_ext fedlab``.
Lines before the first marker (a docstring) are for the source file only. A cell cannot
hide its output with a trailing semicolon: nbval runs cells without history, where
IPython ignores it. Nor should a
lesson display a pointer whose object it later expects to be freed: Jupyter keeps every
displayed value in ``Out``, nbval only the last few in ``_``, ``__``, ``___``.

    .venv/bin/python tools/build_lessons.py            # build and execute every lesson
    .venv/bin/python tools/build_lessons.py 03 07      # only these lessons
    .venv/bin/python tools/build_lessons.py --check    # do the notebooks match the sources?

Notebooks are written with deterministic cell ids and no timing metadata, so that a
rebuild of an unchanged lesson gives the same file (except the figures' PNG bytes,
which nbval does not compare).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "tools" / "lessons"
LESSONS = ROOT / "lessons"
RUFF = Path(sys.executable).with_name("ruff")

_MARKER = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")

_MAGIC = re.compile(r"^# %(?!%)\w")

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def parse(text: str) -> list[nbformat.NotebookNode]:
    """The cells of a percent-format source, in order."""
    cells: list[tuple[bool, list[str], list[str]]] = []
    for line in text.splitlines():
        match = _MARKER.match(line)
        if match:
            tags = json.loads(match["tags"]) if match["tags"] else []
            cells.append((bool(match["md"]), tags, []))
        elif cells:
            cells[-1][2].append(line)
    out = []
    for i, (is_md, tags, lines) in enumerate(cells):
        if is_md:
            lines = [_uncomment(line) for line in lines]
        else:
            # IPython magics are commented in the source (``# %load_ext fedlab``), as in jupytext.
            lines = [line[2:] if _MAGIC.match(line) else line for line in lines]
        if not is_md and lines and lines[-1].split("#")[0].rstrip().endswith(";"):
            # nbval runs cells without history, and then IPython ignores the semicolon.
            raise ValueError(
                f"cell {i} ends with ';', which nbval does not honour: assign or print instead"
            )
        source = "\n".join(lines).strip("\n")
        cell = nbformat.v4.new_markdown_cell(source) if is_md else nbformat.v4.new_code_cell(source)
        cell.id = f"cell-{i:02d}"
        if tags:
            cell.metadata["tags"] = tags
        out.append(cell)
    return out


def _uncomment(line: str) -> str:
    if line in ("", "#"):
        return ""
    if not line.startswith("# "):
        raise ValueError(f"a markdown line must start with '# ': {line!r}")
    return line[2:]


def notebook(source: Path) -> nbformat.NotebookNode:
    """The unexecuted notebook for one lesson source."""
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(source.read_text())
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 300) -> float:
    """Run the notebook in a fresh kernel (in lessons/), storing outputs; returns seconds."""
    from nbclient import NotebookClient

    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(LESSONS)}},
    )
    client.execute()
    # Keep the metadata that nbval and Binder need, drop what changes between machines.
    nb.metadata["language_info"] = {"name": "python"}
    return time.perf_counter() - start


def target(source: Path) -> Path:
    """The notebook a source builds."""
    return LESSONS / f"{source.stem}.ipynb"


def sources(selected: list[str]) -> list[Path]:
    """The lesson sources, all or those whose names start with one of ``selected``."""
    found = sorted(SOURCES.glob("[0-9][0-9]-*.py"))
    if selected:
        found = [s for s in found if any(s.stem.startswith(p) for p in selected)]
        if not found:
            raise SystemExit(f"no lesson source matches {' '.join(selected)}")
    return found


def _ruff(path: Path) -> None:
    # The repository lints notebooks too: format them as ruff would, then check.
    subprocess.run([str(RUFF), "format", "--quiet", str(path)], check=True)
    subprocess.run([str(RUFF), "check", "--quiet", str(path)], check=True)


def build(source: Path, run: bool = True) -> float:
    """Write one lesson's notebook (formatted, and executed if ``run``); returns seconds."""
    path = target(source)
    nbformat.write(notebook(source), path)
    _ruff(path)
    if not run:
        return 0.0
    nb = nbformat.read(path, as_version=4)
    seconds = execute(nb)
    nbformat.write(nb, path)
    return seconds


def in_sync(source: Path) -> list[str]:
    """Differences between a source and its committed notebook (cell kinds, sources, tags)."""
    path = target(source)
    if not path.exists():
        return [f"{path.name} is missing"]
    want = notebook(source).cells
    have = nbformat.read(path, as_version=4).cells
    problems = []
    if len(want) != len(have):
        problems.append(f"{path.name}: {len(have)} cells, the source has {len(want)}")
    for i, (w, h) in enumerate(zip(want, have)):
        same = (
            w.cell_type == h.cell_type
            and _norm(w.source) == _norm(h.source)
            and w.metadata.get("tags", []) == h.metadata.get("tags", [])
        )
        if not same:
            problems.append(f"{path.name}: cell {i} differs from the source")
    return problems


def _norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def main(argv: list[str] | None = None) -> int:
    """Build (and run) the lessons named on the command line, or all of them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers or name prefixes, e.g. 03")
    parser.add_argument("--no-execute", action="store_true", help="write notebooks, no outputs")
    parser.add_argument("--check", action="store_true", help="compare notebooks with sources")
    args = parser.parse_args(argv)
    chosen = sources(args.lessons)
    if args.check:
        problems = [p for s in chosen for p in in_sync(s)]
        print("\n".join(problems) or f"{len(chosen)} lessons match their sources")
        return 1 if problems else 0
    total = 0.0
    for source in chosen:
        seconds = build(source, run=not args.no_execute)
        total += seconds
        print(f"{target(source).relative_to(ROOT)}  {seconds:5.1f} s")
    print(f"{len(chosen)} lessons, {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
