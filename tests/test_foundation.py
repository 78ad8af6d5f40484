"""The foundation: `make lab` serves JupyterLab, the package imports light, the pins agree."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.lab import LAB_FLAGS, ROOT, free_port, running


@pytest.mark.slow
def test_make_lab_serves_the_lessons(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    port = free_port()
    cmd = ["make", "--no-print-directory", "lab", f"PORT={port}", f"LAB_ARGS={' '.join(LAB_FLAGS)}"]
    with running(cmd, port, tmp_path / "lab.log", timeout=180) as base:
        with urllib.request.urlopen(f"{base}/lab", timeout=10) as r:
            page = r.read().decode()
        assert "JupyterLab" in page
        # The lessons are what the server opens.
        with urllib.request.urlopen(f"{base}/api/contents/lessons", timeout=10) as r:
            assert r.status == 200


def test_import_fedlab_is_light():
    code = (
        "import sys, fedlab, torch; fedlab.TorchHook(torch);"
        "heavy = [m for m in ('IPython', 'ipywidgets', 'ray', 'matplotlib') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_torch_is_pinned_to_the_cpu_build():
    lock = (ROOT / "requirements.lock").read_text()
    assert re.search(r"^torch==2\.13\.0$", lock, re.M)
    import torch

    assert torch.__version__.split("+")[0] == "2.13.0"


def test_every_locked_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=<>~!]+", line), line


def test_the_code_stays_small():
    """A line budget, checked in CI: one concept per file, and a core one can read in a day.

    The core (``fedlab/*.py``: workers, pointers, dispatch, the codec, what a worker runs)
    has 3000 lines and no file over 400 (files elsewhere: 450). Plans (``fedlab/plans``:
    tracing a function into a plan, sent plans, state) are a layer above it, built on its
    public API, with a budget of their own. A speed-up that needs more lines needs a
    simpler design instead.
    """
    package = ROOT / "fedlab"
    sizes = {p: len(p.read_text().splitlines()) for p in package.rglob("*.py")}
    core = sum(n for p, n in sizes.items() if p.parent == package)
    assert core <= 3000, f"the core (fedlab/*.py) has {core} lines; the budget is 3000"
    plans = sum(n for p, n in sizes.items() if p.parent == package / "plans")
    assert plans <= 600, f"fedlab/plans has {plans} lines; its budget is 600"
    limit = {package: 400, package / "plans": 400}  # (the layers above: 450)
    too_long = {
        str(p.relative_to(ROOT)): n for p, n in sizes.items() if n > limit.get(p.parent, 450)
    }
    assert not too_long, f"files over their limit of lines: {too_long}; split them by concept"


def _imports(path: Path, modules: set[str], name: str) -> set[str]:
    """The fedlab modules ``path`` imports, at any depth (not those only for type checking)."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if "TYPE_CHECKING" in ast.unparse(node.test):
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            for a in node.names:
                whole = f"{node.module}.{a.name}"
                found.add(whole if whole in modules else node.module or "")

    Visitor().visit(ast.parse(path.read_text()))
    return {m for m in found if m in modules and m not in (name, "fedlab")}


def test_imports_point_down_with_no_circle():
    """Each module imports only modules below it: the import graph has no cycle."""
    files = {}
    for p in (ROOT / "fedlab").rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        files[name] = p
    graph = {n: _imports(p, set(files), n) for n, p in files.items() if n != "fedlab"}
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("an import circle: " + " -> ".join([*path, node]))
        if node not in done:
            for nxt in sorted(graph.get(node, ())):
                visit(nxt, [*path, node])
            done.add(node)

    for node in sorted(graph):
        visit(node, [])
