"""Build the lesson notebooks from their percent-format sources, then run them to store outputs.

Each lesson is written as ``tools/lessons/NN-slug.py`` in jupytext's "percent" format,
read and written here with jupytext: ``# %%`` starts a code cell, ``# %% [markdown]`` a
markdown cell whose lines are comments, ``# %% tags=["raises-exception"]`` tags a cell
that teaches an error, and a magic is written commented, ``# %load_ext fedlab``. A source
has no header and starts with its first cell (the lesson's title). To edit a lesson in
JupyterLab, right-click its source and *Open With > Jupytext Notebook*: it
opens as a notebook and saves back to the same ``.py``.

A cell cannot hide its output with a trailing semicolon: nbval runs cells without
history, where IPython ignores it. Nor should a lesson display a pointer whose object
it later expects to be freed: Jupyter keeps every displayed value in ``Out``, nbval
only the last few in ``_``, ``__``, ``___``.

    .venv/bin/python tools/build_lessons.py            # build and execute every lesson
    .venv/bin/python tools/build_lessons.py 03 07      # only these lessons
    .venv/bin/python tools/build_lessons.py --check    # do the notebooks match the sources?

Notebooks are written with fixed cell ids (``cell-00``, ...), the kernel's full
``language_info`` (JupyterLab then opens them unmodified) and no timing metadata, so
that a rebuild of an unchanged lesson gives the same file (except the figures' PNG
bytes, which nbval does not compare). They are formatted and linted with ruff.

How a lesson is shaped (``tests/test_lessons.py`` checks the parts it can):

- **Opening**: a markdown cell ``# N. Title`` with ``**What you will learn**`` and a list.
- **Practice** (lessons 3 and later, and at each of the course's project points): a
  markdown cell headed ``### Your turn`` that states the task; the code cell right after
  it, where the student writes, left unsolved (``...`` placeholders or a comment: it
  must run without error); a check cell ``practice.check("task-name")`` (``from
  fedlab.viz import practice``), whose saved output is therefore "Not yet"; and a
  markdown cell right after the check that folds the solution,
  ``<details><summary>Solution</summary>`` then a ```` ```python ```` block. A task's
  steps are a generator registered with ``@task("task-name")`` in
  ``fedlab/viz/tasks.py``; each yields ``(passed, sentence)``. ``tests/test_lessons.py``
  runs every lesson with each task cell replaced by its folded solution and requires
  every check to pass. Tasks use their own names, so later cells never depend on them.
- **Closing**: a markdown cell with ``## Summary`` (three lines), ``## Check yourself``
  (two or three questions, each answer folded in ``<details><summary>Answer</summary>``),
  the graded exercise that practises the lesson (a link into ``../exercises/``), and
  ``## What to try next``.
- **Live view**: a lesson about movement opens the panel with ``sy.watch(..., side=True)``
  (JupyterLab's side area, pinned while the notebook scrolls) or shows a trace.
- **Errors**: a cell that teaches an error is tagged ``raises-exception``; fedlab's
  errors show the student's line and fedlab's message, never fedlab's own frames.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "tools" / "lessons"
LESSONS = ROOT / "lessons"
RUFF = Path(sys.executable).with_name("ruff")

FORMAT = "py:percent"
# Sources carry no header (no jupytext version to churn) and only cells' tags.
TEXT_METADATA = {"notebook_metadata_filter": "-all", "cell_metadata_filter": "tags,-all"}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def parse(text: str) -> list[nbformat.NotebookNode]:
    """The cells of a percent-format source, in order, with fixed ids and only their tags."""
    cells = jupytext.reads(text, fmt=FORMAT).cells
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and cell.source.split("\n")[-1].split("#")[0].rstrip().endswith(
            ";"
        ):
            # nbval runs cells without history, and then IPython ignores the semicolon.
            raise ValueError(
                f"cell {i} ends with ';', which nbval does not honour: assign or print instead"
            )
        cell.id = f"cell-{i:02d}"
        tags = cell.metadata.get("tags", [])
        cell.metadata = nbformat.NotebookNode({"tags": tags} if tags else {})
    return cells


def to_source(nb: nbformat.NotebookNode) -> str:
    """A notebook's cells as a percent-format source (the inverse of ``parse``)."""
    bare = nbformat.v4.new_notebook(cells=[_bare(c) for c in nb.cells])
    bare.metadata["jupytext"] = dict(TEXT_METADATA)
    return jupytext.writes(bare, fmt=FORMAT)


def canonical(text: str) -> str:
    """``text`` as jupytext writes it back after reading it (blank lines between cells...)."""
    nb = jupytext.reads(text, fmt=FORMAT)
    nb.metadata["jupytext"] = dict(TEXT_METADATA)
    return jupytext.writes(nb, fmt=FORMAT)


def _bare(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    tags = cell.metadata.get("tags", [])
    if cell.cell_type == "markdown":
        out = nbformat.v4.new_markdown_cell(cell.source)
    else:
        out = nbformat.v4.new_code_cell(cell.source)
    if tags:
        out.metadata["tags"] = list(tags)
    return out


def language_info() -> dict:
    """What ipykernel reports for this Python, as JupyterLab will write it on opening."""
    from ipykernel.ipkernel import IPythonKernel

    return dict(IPythonKernel.language_info)


def notebook(source: Path) -> nbformat.NotebookNode:
    """The unexecuted notebook for one lesson source."""
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(source.read_text())
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = language_info()
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
    # The kernel's own language_info, complete, so that JupyterLab finds nothing to update.
    nb.metadata["language_info"] = {**language_info(), **nb.metadata.get("language_info", {})}
    _drop_side_panels(nb)
    return time.perf_counter() - start


def _stable_widget_ids(nb: nbformat.NotebookNode, name: str) -> None:
    """Rename the widgets' random model ids by creation order, so a rebuild diffs clean.

    ipywidgets names each model with a fresh uuid; the saved state and every output that
    shows a widget refer to it, so all of them are renamed together. The lesson's name is
    part of each id, so no two lessons open in one JupyterLab share a model id.
    """
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = state.get("state", {})
    if not models:
        return
    # nbclient keeps the models in the order the kernel opened them: deterministic.
    rename = {old: hashlib.md5(f"{name}:{i}".encode()).hexdigest() for i, old in enumerate(models)}
    pattern = re.compile("|".join(map(re.escape, rename)))
    text = pattern.sub(lambda m: rename[m.group(0)], json.dumps(nb))
    nb.clear()
    nb.update(nbformat.from_dict(json.loads(text)))


def _drop_side_panels(nb: nbformat.NotebookNode) -> None:
    """Keep no side panel in the saved widget state.

    JupyterLab restores saved widgets when it opens a notebook, and a restored sidecar
    would open a stale side panel before the student runs anything.
    """
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = state.get("state", {})
    for key in [k for k, m in models.items() if "sidecar" in m.get("model_module", "")]:
        del models[key]


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
    # One spelling per lesson, ruff's and jupytext's at once (the repository lints the
    # sources too): formatted, then checked to read and write back unchanged.
    subprocess.run([str(RUFF), "format", "--quiet", str(source)], check=True)
    text = source.read_text()
    if canonical(text) != text:
        raise SystemExit(f"{source.name}: jupytext would write it differently; run it through "
                         "jupytext (jupytext --to py:percent) and rebuild")  # fmt: skip
    path = target(source)
    nbformat.write(notebook(source), path)
    _ruff(path)
    if not run:
        return 0.0
    nb = nbformat.read(path, as_version=4)
    seconds = execute(nb)
    _stable_widget_ids(nb, source.stem)
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
            and w.id == h.get("id")
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
