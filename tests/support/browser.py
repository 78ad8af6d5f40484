"""Headless Debian chromium driven by Playwright (never a downloaded browser build)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def require_chromium() -> str:
    """The chromium binary, or skip the test with a visible reason."""
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed in this environment")
    return CHROMIUM


def launch(playwright):
    """A headless chromium browser from Debian's package."""
    return playwright.chromium.launch(executable_path=require_chromium(), headless=True, args=FLAGS)


@contextlib.contextmanager
def scratch_notebook(out: Path, name: str, cells: list[str]) -> Iterator[Path]:
    """A notebook of ``cells`` in a fresh folder under ``out`` (inside the served repo)."""
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="nb-", dir=out))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = folder / name
    nbformat.write(nb, path)
    try:
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
