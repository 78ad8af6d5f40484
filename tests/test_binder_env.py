"""Binder's environment, built here from binder/ alone, runs every lesson.

repo2docker builds the image in three steps: pip installs binder/requirements.txt,
then, from the repository's root, it runs binder/postBuild, then it starts JupyterLab.
``binder_python()`` repeats the first two in a fresh virtual environment, cached under
.venv/ by a hash of the files that define it, so `make test` builds it once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
LESSONS = sorted((ROOT / "lessons").glob("[0-9]*.ipynb"))
CACHE = ROOT / ".venv"
TORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def env_hash() -> str:
    """A hash of everything that decides what the Binder environment contains."""
    h = hashlib.sha256()
    for f in sorted(p for p in BINDER.iterdir() if p.is_file()):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    # postBuild installs the project as pyproject.toml describes it (metadata, entry
    # points); its [tool.*] settings (ruff, pytest) do not change the environment.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    used = {k: project.get(k) for k in ("project", "build-system")}
    h.update(json.dumps(used, sort_keys=True).encode())
    return h.hexdigest()[:16]


def local_requirements() -> str:
    """binder/requirements.txt as this machine can install it.

    PyTorch's CPU index is not reachable here, so the index line goes and the
    ``torch==2.13.0+cpu`` pin becomes ``torch==2.13.0``, which pip satisfies with the
    same CPU build (torch-2.13.0+cpu) from the local wheel folder in pip's config
    (find-links /opt/wheels). Every other line is installed exactly as Binder would.
    """
    text = (BINDER / "requirements.txt").read_text()
    assert TORCH_CPU_INDEX in text and "torch==2.13.0+cpu" in text
    return text.replace(TORCH_CPU_INDEX, "").replace("torch==2.13.0+cpu", "torch==2.13.0")


def _run(cmd: list[str], log: Path, **kw) -> None:
    """Run a build step, appending its output to ``log``; fail with the log's tail."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False, **kw)
    if code.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{cmd[0]} ... failed (exit {code.returncode}); see {log}\n{tail}")


def venv_env(venv: Path) -> dict[str, str]:
    """The environment of a shell whose PATH starts with the venv, as in Binder's image."""
    env = dict(os.environ)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env.pop("PYTHONPATH", None)
    return env


def build(venv: Path, log: Path) -> None:
    """Build the Binder environment at ``venv`` the way repo2docker does."""
    shutil.rmtree(venv, ignore_errors=True)
    log.write_text(f"building {venv}\n")
    _run([sys.executable, "-m", "venv", str(venv)], log)
    reqs = venv / "requirements-local.txt"
    reqs.write_text(local_requirements())
    # pip's cache stays on (unlike repo2docker's --no-cache-dir) so a rebuild is quick.
    _run([str(venv / "bin/python"), "-m", "pip", "install", "-r", str(reqs)], log)
    # repo2docker: `chmod +x binder/postBuild && ./binder/postBuild` from the repo root.
    _run(["./binder/postBuild"], log, cwd=ROOT, env=venv_env(venv))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock so two test processes never build the same venv at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def binder_python() -> Path:
    """The python of the (cached) Binder environment, building it first if needed."""
    key = env_hash()
    venv = CACHE / f"binder-env-{key}"
    stamp = venv / ".built"
    with _locked(CACHE / "binder-env.lock"):
        if not stamp.exists():
            for old in CACHE.glob("binder-env-*"):  # other recipes' envs: free the disk
                if old.is_dir() and old != venv:
                    shutil.rmtree(old, ignore_errors=True)
            start = time.monotonic()
            build(venv, CACHE / "binder-env-build.log")
            stamp.write_text(f"built in {time.monotonic() - start:.0f}s\n")
    return venv / "bin/python"


@pytest.fixture(scope="module")
def binder_py() -> Path:
    """The Binder environment's python (module-scoped: built or found once)."""
    return binder_python()


# What the student's kernel must offer, checked in the Binder environment itself.
PROBE = """
import json, pathlib, sys, fedlab, ipywidgets, jupyterlab, torch
share = pathlib.Path(sys.prefix, "share/jupyter")
ext = share / "labextensions/@jupyter-widgets/jupyterlab-manager"
settings = json.loads((share / "lab/settings/overrides.json").read_text())
print(json.dumps({
    "prefix": sys.prefix, "fedlab": fedlab.__file__, "torch": torch.__version__,
    "cuda": torch.version.cuda, "ipywidgets": ipywidgets.__version__,
    "jupyterlab": jupyterlab.__version__, "widgets_extension": ext.is_dir(),
    "lab_settings": settings,
}))
"""


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first run builds the environment
def test_binder_environment_builds_from_its_files(binder_py: Path) -> None:
    """fedlab comes from this checkout, torch is the CPU build, widgets need no extra step."""
    out = subprocess.run(
        [str(binder_py), "-c", PROBE], capture_output=True, text=True, check=True, cwd="/"
    )
    info = json.loads(out.stdout)
    assert Path(info["prefix"]) == binder_py.parent.parent
    assert Path(info["fedlab"]).is_relative_to(ROOT / "fedlab")
    assert info["torch"].startswith("2.13.0") and info["cuda"] is None
    assert info["ipywidgets"].startswith("8.")
    assert info["widgets_extension"], "ipywidgets 8 ships its JupyterLab extension prebuilt"
    news = info["lab_settings"]["@jupyterlab/apputils-extension:notification"]
    assert news == {"fetchNews": "false", "checkForUpdates": False}  # nothing fetched online


# Run in the Binder environment: execute one notebook the way a student's "Run All"
# does, with the notebook's folder as the working directory. nbclient stops at the
# first error, except in cells tagged `raises-exception` (the lessons' error demos).
RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3",
               resources={"metadata": {"path": sys.argv[2]}}).execute()
print("ran", len(nb.cells), "cells")
"""


def isolated_jupyter_env(venv: Path, home: Path) -> dict[str, str]:
    """A Binder-like environment whose Jupyter sees only the venv's kernels and settings."""
    env = venv_env(venv)
    for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                     ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")]:  # fmt: skip
        env[var] = str(home / sub)
    env.pop("JUPYTER_PATH", None)
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.name)
def test_lesson_runs_on_binder(binder_py: Path, lesson: Path, tmp_path: Path) -> None:
    """Every lesson runs top to bottom in the environment Binder builds."""
    env = isolated_jupyter_env(binder_py.parent.parent, tmp_path)
    out = subprocess.run(
        [str(binder_py), "-c", RUN_NOTEBOOK, str(lesson), str(lesson.parent)],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    assert out.returncode == 0, f"{lesson.name} failed on Binder:\n{out.stderr[-4000:]}"
