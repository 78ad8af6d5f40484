"""Grade one submission: its cells run in a confined kernel, its workers in a server we own.

For each submission the grader

1. copies the submission's folder to a fresh temporary folder (other submissions left
   out) and runs the kernel there, with ``PYTHONSAFEPATH=1`` (a ``fedlab/`` folder beside
   the notebook shadows nothing) and, where Linux allows, a Landlock sandbox
   (``fedlab.grading.sandbox``): the kernel writes nowhere else;
2. takes a fresh server (``fedlab.grading.server``, started ahead of time by ``Pool``)
   that holds the exercise's workers; the kernel reaches them only by messages;
3. runs the notebook's cells, given cells restored from the source, a cell that raises
   recorded and the next ones run (as nbgrader does); when the time is up, the grade is
   taken *before* the kernel is stopped, so a hang keeps the work done before it;
4. asks the server for the report, over a pipe only the grader holds: nothing the
   notebook prints, to any stream, is read as a result.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fedlab.grading import submissions
from fedlab.grading.exercises import EXERCISES
from fedlab.grading.report import Report
from fedlab.grading.submissions import Submission

GRADE_TIMEOUT = 60.0  # seconds for the server to read the claims and grade
START_TIMEOUT = 120.0  # seconds for a server to start (importing torch on a busy machine)
KERNEL = "fedlab-grading"


class Server:
    """One ``fedlab.grading.server`` process; its stdin/stdout are the grader's channel."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONSAFEPATH": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fedlab.grading.server"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )  # fmt: skip
        self.ready = threading.Event()
        self.failed = ""
        threading.Thread(target=self._wait_ready, daemon=True).start()

    def _wait_ready(self) -> None:
        line = self.proc.stdout.readline()
        if not line.strip().startswith('{"ready"'):
            self.failed = "the grader's worker process did not start"
        self.ready.set()

    def command(self, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one command; its answer (an ``error`` key on failure or timeout)."""
        if not self.ready.wait(START_TIMEOUT) or self.failed:
            return {"error": self.failed or "the grader's worker process did not start"}
        answer: list[str] = []

        def ask() -> None:
            try:
                self.proc.stdin.write(json.dumps(cmd) + "\n")
                self.proc.stdin.flush()
                answer.append(self.proc.stdout.readline())
            except (OSError, ValueError):
                pass

        t = threading.Thread(target=ask, daemon=True)
        t.start()
        t.join(timeout)
        if not answer or not answer[0]:
            return {"error": "the grader's worker process did not answer"}
        return json.loads(answer[0])

    def close(self) -> None:
        """Stop the process."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                f.close()


class Pool:
    """Servers started ahead of time: each grades one submission, the next one is warm."""

    def __init__(self, size: int) -> None:
        self.lock = threading.Lock()
        self.spare = [Server() for _ in range(max(1, size))]

    def take(self) -> Server:
        """A started server (and another one starting in its place)."""
        with self.lock:
            server = self.spare.pop(0)
            self.spare.append(Server())
        return server

    def close(self) -> None:
        """Stop the spare servers."""
        with self.lock:
            for s in self.spare:
                s.close()
            self.spare = []


def _kernelspec(folder: Path) -> Path:
    """A kernelspec running ``fedlab.grading.kernel`` with this Python."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "fedlab.grading.kernel", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "fedlab grading", "language": "python"}
    ), encoding="utf-8")  # fmt: skip
    return folder / "kernels"


def _copy_folder(sub: Submission, others: set[Path], dest: Path) -> Path:
    """Copy the submission's folder to ``dest`` (other submissions left out); the notebook path."""
    root = sub.path.parent

    def ignore(folder: str, names: list[str]) -> list[str]:
        skip = []
        for n in names:
            p = (Path(folder) / n).resolve()
            if p in others or n in (".ipynb_checkpoints", "__pycache__"):
                skip.append(n)
        return skip

    with contextlib.suppress(OSError):
        shutil.copytree(root, dest, ignore=ignore, symlinks=True, dirs_exist_ok=True)
    notebook = dest / sub.path.name
    notebook.write_bytes(sub.data)
    return notebook


def _errors(cell: Any, index: int) -> list[str]:
    return [
        f"cell {index} raised {o.get('ename', 'an error')}: "
        + " ".join(str(o.get("evalue", "")).split())[:200]
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]


def failed(path: Path, exercise: str | None, error: str, seconds: float = 0.0) -> dict[str, Any]:
    """The result of a submission that could not be graded (every criterion fails)."""
    known = exercise in EXERCISES
    report = EXERCISES[exercise].grade({}, None) if known else Report("unknown", [])
    report.error = error
    return {"file": str(path), "report": report.to_dict(), "seconds": round(seconds, 1)}


class Grader:
    """Grades submissions one at a time per thread, with servers from a shared ``Pool``."""

    def __init__(self, jobs: int = 1, sandbox: bool = True, source: Path | None = None) -> None:
        from fedlab.grading.sandbox import available

        self.jobs = jobs
        self.pool = Pool(jobs)
        self.home = Path(tempfile.mkdtemp(prefix="fedlab-grade-"))
        self.kernels = _kernelspec(self.home)
        self.sandbox = sandbox and available() >= 1
        self.source = source or submissions.SOURCES
        self.others: set[Path] = set()

    def close(self) -> None:
        """Stop the servers and remove the temporary folders."""
        self.pool.close()
        shutil.rmtree(self.home, ignore_errors=True)

    def grade(self, sub: Submission, timeout: float) -> dict[str, Any]:
        """Run and grade one submission; never raises for a student's mistake."""
        started = time.monotonic()
        try:
            import nbformat

            nb = nbformat.reads(sub.data.decode("utf-8"), as_version=4)
            nbformat.validate(nb)
            if sub.exercise is None:
                return failed(sub.path, None, f"not a gradable notebook: {sub.problem}")
            nb, given = submissions.restore(nb, submissions.source(sub.exercise, self.source))
        except Exception as e:
            error = f"not a gradable notebook: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
            return {**failed(sub.path, None, error), "seconds": 0.0}
        server = self.pool.take()
        work = Path(tempfile.mkdtemp(prefix="submission-", dir=self.home))
        try:
            report, problems = self._run(sub, nb, set(given), server, work, timeout)
        finally:
            server.close()
            shutil.rmtree(work, ignore_errors=True)
            if self.jobs == 1:  # nothing else runs now: whatever is left is an orphan
                with self.pool.lock:
                    sweep({s.proc.pid for s in self.pool.spare})
        report.error = "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else "")
        seconds = round(time.monotonic() - started, 1)
        return {"file": str(sub.path), "report": report.to_dict(), "seconds": seconds}

    def _run(self, sub: Submission, nb: Any, given: set[str], server: Server, work: Path,
             timeout: float) -> tuple[Report, list[str]]:  # fmt: skip
        from jupyter_client import AsyncKernelManager as KernelManager
        from jupyter_client.kernelspec import KernelSpecManager
        from nbclient import NotebookClient
        from nbclient.exceptions import CellTimeoutError

        folder = work / "notebook"
        folder.mkdir()
        _copy_folder(sub, self.others - {sub.path.resolve()}, folder)
        token = secrets.token_hex(16)
        session = server.command({"cmd": "session", "exercise": sub.exercise, "token": token},
                                 START_TIMEOUT)  # fmt: skip
        if "port" not in session:
            return EXERCISES[sub.exercise].grade({}, None), [session.get("error", "no server")]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FEDLAB_", "JPY_"))}
        env.update(
            PYTHONSAFEPATH="1", FEDLAB_EXAM=f"127.0.0.1:{session['port']}:{token}",
            IPYTHONDIR=str(folder / ".ipython"), MPLCONFIGDIR=str(folder / ".matplotlib"),
            TMPDIR=str(folder), HOME=str(folder), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
        )  # fmt: skip
        if self.sandbox:
            env["FEDLAB_SANDBOX"] = str(folder)
        km = KernelManager(
            kernel_name=KERNEL,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self.kernels)]),
        )
        client = NotebookClient(
            nb, km=km, timeout=int(timeout), allow_errors=True, interrupt_on_timeout=False,
            shutdown_kernel="immediate", resources={"metadata": {"path": str(folder)}},
        )  # fmt: skip
        problems: list[str] = []
        graded: dict[str, Any] | None = None
        log = (work / "kernel.log").open("wb")
        try:
            with client.setup_kernel(env=env, cwd=str(folder), stdout=log, stderr=log):
                deadline = time.monotonic() + timeout  # the kernel's start is not the student's
                for index, cell in enumerate(list(nb.cells)):
                    if cell.cell_type != "code" or (cell.get("id") in given and _is_check(cell)):
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        problems.append(
                            f"timed out after {timeout:g} s: cells from {index} on never ran"
                        )
                        break
                    client.timeout = max(1, math.ceil(left))
                    try:
                        client.execute_cell(cell, index)
                    except CellTimeoutError:
                        problems.append(f"timed out after {timeout:g} s in cell {index} (graded "
                                        "on what the notebook did until then)")  # fmt: skip
                        break
                    problems.extend(_errors(cell, index))
                    if cell.get("id") in given and "mark(" in cell.source:
                        server.command({"cmd": "mark", "label": "given"}, GRADE_TIMEOUT)
                # Graded while the kernel still runs: a cell stuck in a loop is still there.
                graded = server.command({"cmd": "grade"}, GRADE_TIMEOUT)
                _stop(km)
        except Exception as e:  # the kernel died, or could not start
            problems.append(
                f"the kernel failed: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
            )
        finally:
            log.close()
        if graded is None:
            graded = server.command({"cmd": "grade"}, GRADE_TIMEOUT)
        if "report" not in graded:
            problems.append(graded.get("error", "the grader's worker process failed"))
            return EXERCISES[sub.exercise].grade({}, None), problems
        report = Report.from_dict(graded["report"])
        if report.error:
            problems.append(report.error)
        return report, problems


def _is_check(cell: Any) -> bool:
    return cell.source.strip().startswith("sy.check(")


def _stop(km: Any) -> None:
    """Kill the kernel and every process of its session (detached ones included, see ``sweep``)."""
    pid = getattr(getattr(km, "provisioner", None), "pid", None)
    with contextlib.suppress(Exception):
        if pid:
            os.killpg(os.getpgid(pid), signal.SIGKILL)


_theirs: set[int] = set()  # children this process had before grading: never swept


def become_subreaper(on: bool = True) -> None:
    """Orphans of kernels (double-forked, ``setsid``) become our children, to be swept."""
    import ctypes

    if on:
        _theirs.update(_children())
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(36, int(on), 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _children() -> set[int]:
    me, found = os.getpid(), set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.add(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def sweep(keep: set[int]) -> None:
    """Kill our child processes that are not in ``keep`` (orphans a kernel left running).

    Children this process had before grading started are not the grader's: they stay.
    """
    for pid in _children() - keep - _theirs:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
