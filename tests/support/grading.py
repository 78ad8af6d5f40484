"""Shared by the grading and exercise tests: the known-wrong submission variants."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from fedlab import registry
from fedlab.grading import recorder

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "submission_variants", ROOT / "tests" / "data" / "submissions" / "variants.py"
)
variants = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(variants)


@pytest.fixture(autouse=True)
def no_leftovers():
    """Stop recording and forget workers an exercise created (secure_worker), after each test."""
    before = set(registry._workers)
    yield
    recorder.stop()
    for name in set(registry._workers) - before:
        registry._workers.pop(name)
