"""Worker processes on Ray: faults give clear errors in bounded time, nothing is left behind.

The core's behaviour on Ray is tested by the core tests themselves (the ``workers``
fixture runs them on every transport); here are what only real processes can do:
die, hang, be started from the command line, and leave orphans.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import torch

import fedlab as sy
from fedlab.exceptions import FedlabError, WorkerDiedError, WorkerNotFoundError

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@pytest.fixture(scope="module")
def ray_runtime():
    """The session's Ray runtime (started by the first Ray test), or a visible skip."""
    pytest.importorskip("ray", reason='Ray is not installed (pip install "fedlab[ray]")')
    from fedlab.transport import ray as transport

    try:
        return transport.ensure_runtime()
    except Exception as e:
        pytest.skip(f"Ray could not start here: {type(e).__name__}: {e}")


def _worker_cli(*args: str) -> list[str]:
    return [PYTHON, "-m", "fedlab.cli", "worker", *args]


def test_a_killed_worker_is_a_clear_error_and_can_be_respawned(ray_runtime):
    from fedlab.transport import ray as transport

    dan, erin = transport.spawn_workers("dan", "erin", timeout=5.0)
    try:
        x = torch.tensor([1.0, 2.0]).send(dan)
        y = torch.tensor([3.0]).send(erin)
        pid, _ = dan.ping()
        # A stuck process: the call gives up after the worker's timeout, naming it.
        os.kill(pid, signal.SIGSTOP)
        start = time.monotonic()
        with pytest.raises(WorkerDiedError, match="dan did not answer within 5 s"):
            x + x
        assert time.monotonic() - start < 15
        # A killed process: reported as dead, quickly, by name; erin is untouched.
        psutil.Process(pid).kill()
        start = time.monotonic()
        with pytest.raises(WorkerDiedError, match="worker process dan has died"):
            (x * 2).get()
        assert time.monotonic() - start < 15
        assert isinstance(WorkerDiedError("x"), FedlabError)
        assert list(erin._objects) == [1]
        assert torch.equal(y.get(), torch.tensor([3.0]))
        del x  # its delete goes to a dead worker: silently nothing to free
        # Re-spawned: the same Python object, a fresh process with an empty store.
        again = transport.spawn_workers("dan")
        assert again is dan and dan._objects == {}
        assert dan.ping()[0] != pid
        assert torch.equal((torch.tensor([2]).send(dan) * 3).get(), torch.tensor([6]))
    finally:
        transport.shutdown_workers("dan", "erin")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_unknown_and_taken_names_are_clear_errors(ray_runtime, me):
    from fedlab.transport import ray as transport
    from fedlab.transport.errors import WorkerExistsError

    start = time.monotonic()
    with pytest.raises(WorkerNotFoundError, match="no worker called 'nobody' in the Ray"):
        sy.connect("nobody")
    assert time.monotonic() - start < 10
    sy.VirtualWorker(me.hook, id="frank")
    with pytest.raises(WorkerExistsError, match="already an in-process worker"):
        transport.spawn_workers("frank")
    ghost = transport.create_actor("ghost")
    try:
        with pytest.raises(WorkerExistsError, match="'ghost' already runs in the Ray cluster"):
            transport.create_actor("ghost")
    finally:
        ray_runtime.kill(ghost)


def test_a_cluster_that_does_not_answer_is_a_clear_error():
    start = time.monotonic()
    out = subprocess.run(_worker_cli("--id", "x", "--address", "127.0.0.1:9"),
                         capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert out.returncode == 1
    assert "no Ray cluster answers at 127.0.0.1:9" in out.stderr
    assert time.monotonic() - start < 120


def test_fedlab_worker_serves_its_data_and_stops_cleanly(ray_runtime, tmp_path, me):
    data = {"data": torch.tensor([[1.0, 1.0], [0.0, 1.0]]), "target": torch.tensor([[1.0], [1.0]])}
    torch.save(data, tmp_path / "gina.pt")
    address = ray_runtime.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        _worker_cli("--id", "gina", "--data", str(tmp_path / "gina.pt"), "--address", address),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "is ready" in line or not line:
                break
        assert "worker gina is ready" in lines[-1], "".join(lines) + proc.stderr.read()
        assert "data: (2, 2) torch.float32 -> gina:1" in lines[0]
        gina = sy.connect("gina")
        pid, node = gina.ping()
        assert node == ray_runtime.get_runtime_context().get_node_id()  # pinned here
        data = gina.data()
        assert list(data) == ["data", "target"]
        assert torch.equal(data["data"].sum(0).get(), torch.tensor([1.0, 2.0]))
        del data
        assert sorted(gina._objects) == [1, 2]  # the owner's data stays
        sy.reset()
        assert sorted(gina._objects) == [1, 2]  # and comes back under the same ids
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        with pytest.raises(WorkerDiedError, match="gina"):
            gina.ping(timeout=10)
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        if proc.poll() is None:
            proc.kill()
        from fedlab import registry

        registry._workers.pop("gina", None)


SPAWN_AND_EXIT = textwrap.dedent(
    """
    import torch, fedlab as sy, psutil
    hook = sy.TorchHook(torch)
    bob, alice = sy.spawn_workers("bob", "alice")
    x = torch.tensor([1, 2]).send(bob)
    pids = [w.ping()[0] for w in (bob, alice)]
    me = psutil.Process()
    print(" ".join(map(str, pids + [c.pid for c in me.children(recursive=True)])), flush=True)
    """
)


def test_exiting_the_notebook_process_leaves_no_worker_processes(tmp_path):
    pytest.importorskip("ray")
    script = tmp_path / "spawn.py"
    script.write_text(SPAWN_AND_EXIT)
    out = subprocess.run([PYTHON, str(script)], capture_output=True, text=True, timeout=240,
                         cwd=ROOT)  # fmt: skip
    if out.returncode != 0 and "timed out during startup" in out.stderr:
        pytest.skip("Ray could not start in time on this machine")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # nothing from Ray reaches the notebook's output
    pids = [int(p) for p in out.stdout.split()]
    deadline = time.monotonic() + 30
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]  # fmt: skip
        time.sleep(0.5)
    assert alive == [], [psutil.Process(p).cmdline()[:3] for p in alive]
