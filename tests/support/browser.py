"""Headless Debian chromium driven by Playwright (never a downloaded browser build)."""

from __future__ import annotations

import shutil
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
