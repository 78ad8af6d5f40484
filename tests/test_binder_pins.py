"""Binder's recipe (binder/) follows repo2docker's conventions and the project's own pins."""

from __future__ import annotations

import importlib.metadata as md
import os
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"

# Packages of requirements.lock that only developers use (tests, lint, the browser
# driver) and that nothing else in the lock needs. Binder installs everything else.
DEV_ONLY = {
    "coverage", "greenlet", "hypothesis", "iniconfig", "nbval", "playwright", "pluggy",
    "pytest", "pytest-timeout", "ruff", "sortedcontainers",
}  # fmt: skip
TORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def pins(path: Path) -> dict[str, str]:
    """``name -> version`` of the ``name==version`` lines of a requirements file."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not pinned with =="
            out[canonicalize_name(name)] = version
    return out


def test_binder_pins_equal_the_lock() -> None:
    """Every pin in binder/requirements.txt is the lock's, torch as its CPU build."""
    lock, binder = pins(ROOT / "requirements.lock"), pins(BINDER / "requirements.txt")
    assert binder.pop("torch") == lock["torch"] + "+cpu"
    drift = {n: (v, lock.get(n)) for n, v in binder.items() if lock.get(n) != v}
    assert not drift, f"binder/requirements.txt differs from requirements.lock: {drift}"
    missing = sorted(set(lock) - set(binder) - {"torch"} - DEV_ONLY)
    lines = "\n".join(f"{n}=={lock[n]}" for n in missing)
    assert not missing, f"add to binder/requirements.txt (or to DEV_ONLY):\n{lines}"


def test_torch_comes_from_the_cpu_index() -> None:
    """The CPU wheel index is named, so Binder never pulls torch's CUDA libraries."""
    lines = [ln.strip() for ln in (BINDER / "requirements.txt").read_text().splitlines()]
    assert TORCH_CPU_INDEX in lines
    # No local reference (-e ., ./path): repo2docker can then install the file before
    # it copies the repository, and reuse that layer when only notebooks change.
    assert not [ln for ln in lines if ln.startswith(("-e", ".", "/", "file:"))]


def _requires(name: str, extras: frozenset[str]) -> set[tuple[str, frozenset[str]]]:
    """The requirements of an installed distribution that apply with these extras."""
    out = set()
    for line in md.distribution(name).requires or []:
        req = Requirement(line)
        envs = [{"extra": e} for e in extras or {""}]
        if req.marker is None or any(req.marker.evaluate(env) for env in envs):
            out.add((canonicalize_name(req.name), frozenset(req.extras)))
    return out


def test_dev_only_packages_are_needed_by_nothing_binder_installs() -> None:
    """Leaving DEV_ONLY out of Binder breaks no dependency of fedlab or of the rest."""
    lock = pins(ROOT / "requirements.lock")
    todo = {("fedlab", frozenset({"lab", "ray"}))}
    todo |= {(n, frozenset()) for n in lock if n not in DEV_ONLY}
    needed: dict[str, frozenset[str]] = {}
    while todo:
        name, extras = todo.pop()
        if name in needed and extras <= needed[name]:
            continue
        needed[name] = needed.get(name, frozenset()) | extras
        todo |= _requires(name, needed[name])
    assert not DEV_ONLY & set(needed), "these are needed at run time, keep them on Binder"
    assert set(lock) >= DEV_ONLY, f"not in the lock any more: {DEV_ONLY - set(lock)}"


def test_layout_follows_repo2docker() -> None:
    """runtime.txt picks Python 3.11; nothing in binder/ would override requirements.txt."""
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    # repo2docker: a Dockerfile replaces every other file; environment.yml wins over
    # requirements.txt (and makes runtime.txt ignored); with a binder/ folder present,
    # configuration files in the repository's root are ignored.
    for other in ["Dockerfile", "environment.yml", "environment.yaml", ".binder"]:
        assert not (BINDER / other).exists() and not (ROOT / other).exists(), other


def test_post_build_installs_fedlab_and_stops_on_errors() -> None:
    """postBuild is an executable bash script with set -e that installs this checkout."""
    post = BINDER / "postBuild"
    text = post.read_text()
    assert text.startswith("#!/bin/bash\n") and os.access(post, os.X_OK)
    assert re.search(r"^set -e", text, re.M)
    assert re.search(r"^pip install --no-deps .*-e \.$", text, re.M)
    # Nothing may download at run time: a `start` script would run on every launch.
    assert not (BINDER / "start").exists()
