"""Flower's own environment, made on demand: benchmarks/.flower-venv (gitignored).

Flower is never a dependency of fedlab. The first ``make bench`` creates a venv with
``python -m venv`` and installs ``flower-requirements.txt`` into it (torch first, so
that pip takes the same local CPU wheel fedlab uses); later runs reuse it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".flower-venv"
REQUIREMENTS = HERE / "flower-requirements.txt"


def python() -> Path:
    """The Flower environment's interpreter."""
    return VENV / "bin" / "python"


def _stamp() -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    return VENV / f".installed-{digest}"


def ensure(log=print) -> Path:
    """Create or update the Flower environment if needed; return its interpreter."""
    if _stamp().exists():
        return python()
    log(f"installing Flower into {VENV} (first run only; a few minutes)")
    if not python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    torch_pin = [line for line in REQUIREMENTS.read_text().split() if line.startswith("torch==")]
    subprocess.run([*pip, *torch_pin], check=True)
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    for old in VENV.glob(".installed-*"):
        old.unlink()
    _stamp().touch()
    return python()
