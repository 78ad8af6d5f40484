"""The notebook's side of exam mode: workers that live in a process the grader owns.

Under ``fedlab grade`` (and in exam mode, ``start(name, exam=True)``) bob, alice and the
others run in ``fedlab.grading.server``. The notebook holds ``RemoteWorker`` handles whose
``recv_msg`` carries fedlab's encoded bytes there over a socket, so pointers, autograd,
plans and garbage collection work exactly as with in-process workers; the server keeps
the message log and grades from it. Reading ``bob._objects`` is a message too (logged).

A second connection answers the grader's requests for the notebook's variables (its
*claims*, ``fedlab.grading.claims``), from a thread, so that a notebook stuck in a loop
is still graded on what it did before.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import threading
from typing import Any

from fedlab import messages as m
from fedlab import registry, serde, worker
from fedlab.exceptions import FedlabError, WorkerDiedError
from fedlab.grading import channel, claims

ENV = "FEDLAB_EXAM"  # host:port:token of the grader's server, set by ``fedlab grade``


class RemoteWorker(worker.BaseWorker):
    """A worker that lives in the grader's process; use it like a ``VirtualWorker``."""

    def __init__(self, hook: Any = None, id: str = "me", session: Session | None = None) -> None:
        super().__init__(hook, id)  # (its own store stays empty: the objects are there)
        self.session = session or getattr(self, "session", None)
        registry._workers[self.id] = self

    def recv_msg(self, data: bytes) -> bytes:
        """Carry an encoded message to the worker's process; return its encoded reply."""
        return self.session.message(self.id, bytes(data))

    @property
    def _objects(self) -> dict[int, Any]:
        """What the worker holds: a store read, which is a message (and logged as one)."""
        return self.session.store(self.id)

    def clear_objects(self) -> RemoteWorker:
        """Empty the worker's store of what this notebook holds there; returns the worker."""
        registry.local_worker().send_msg(m.ClearObjects("clear_objects"), self)
        return self

    def _reset(self) -> None:
        with contextlib.suppress(WorkerDiedError):  # (a closed session has nothing to reset)
            self.clear_objects()

    def __repr__(self) -> str:
        return f"<RemoteWorker id:{self.id} (in the grader's process)>"


class Session:
    """One connection to the grader's server: messages out, replies back; claims on request."""

    def __init__(self, address: str, token: str, exercise: str, reads: tuple[str, ...]) -> None:
        host, port = address.rsplit(":", 1)
        self.address, self.token, self.exercise, self.reads = (
            (host, int(port)),
            token,
            exercise,
            reads,
        )
        self.lock = threading.RLock()
        self._local = threading.local()
        self._pending: list[tuple[str, bytes]] = []  # deletes from GC during a call
        self.sock = self._connect("traffic")
        reply = channel.call(self.sock, ("start", exercise))
        if not (isinstance(reply, tuple) and reply[:1] == ("ok",)):
            raise FedlabError(f"the grader's workers refused this exercise: {reply}")
        self.workers: tuple[str, ...] = tuple(reply[1])
        self._claims = self._connect("claims")
        threading.Thread(target=self._serve_claims, name="fedlab-claims", daemon=True).start()

    def _connect(self, role: str) -> socket.socket:
        try:
            sock = socket.create_connection(self.address, timeout=60)
        except OSError as e:
            raise WorkerDiedError(
                f"cannot reach the grader's workers at {self.address}: {e}"
            ) from None
        sock.settimeout(None)
        reply = channel.call(sock, ("hello", self.token, role))
        if reply != ("ok",):
            raise FedlabError(f"the grader's workers refused the connection: {reply}")
        return sock

    def _call(self, request: Any) -> bytes:
        depth = getattr(self._local, "depth", 0)
        if depth:
            raise RuntimeError("nested call")  # (only deletes nest, and they are deferred)
        self._local.depth = 1
        try:
            with self.lock:
                try:
                    channel.send_frame(self.sock, channel.encode(request))
                    answer = channel.recv_frame(self.sock)
                except (OSError, ConnectionError) as e:
                    raise WorkerDiedError(
                        f"the grader's workers are gone ({e}); nothing more can be sent"
                    ) from None
        finally:
            self._local.depth = 0
        self._flush()
        return answer

    def _flush(self) -> None:
        while self._pending and not getattr(self._local, "depth", 0):
            wid, data = self._pending.pop(0)
            self._call(("msg", wid, data))

    def message(self, worker_id: str, data: bytes) -> bytes:
        """Send one encoded message to ``worker_id``; its encoded reply."""
        if getattr(self._local, "depth", 0):
            # A pointer died (garbage collection) while this thread waits for a reply: the
            # delete goes right after it, on the same connection, in order.
            self._pending.append((worker_id, data))
            return bytes(serde.encode(worker_id, "me", m.Reply(None)))
        return self._call(("msg", worker_id, data))

    def store(self, worker_id: str) -> dict[int, Any]:
        """Every object on ``worker_id`` (a logged store read)."""
        values = channel.decode(self._call(("store", worker_id)))
        return dict(values) if isinstance(values, dict) else {}

    def mark(self, label: str) -> None:
        """Ask the server to remember the stores now (exam mode; the grader marks itself)."""
        self._call(("mark", label))

    def check(self, ns: dict[str, Any]) -> Any:
        """The report of the exercise, graded by the server from this notebook's claims."""
        from fedlab.grading.report import Report

        raw = channel.decode(self._call(("check", claims.read(ns, self.reads))))
        return Report.from_dict(_plain(raw))

    def _serve_claims(self) -> None:
        sock = self._claims
        while True:
            try:
                request = channel.decode(channel.recv_frame(sock))
            except Exception:
                return
            names = request[1] if isinstance(request, tuple) and len(request) == 2 else ()
            try:
                from IPython import get_ipython

                shell = get_ipython()
                ns = shell.user_ns if shell is not None else {}
                payload = channel.encode(claims.read(ns, tuple(names)))
            except Exception:
                payload = channel.encode({})
            try:
                channel.send_frame(sock, payload)
            except OSError:
                return

    def close(self) -> None:
        """Close both connections."""
        for s in (self.sock, self._claims):
            with contextlib.suppress(OSError):
                s.close()


def _plain(value: Any) -> Any:
    """Tuples back to lists (a report travels as plain data)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_session: Session | None = None
_server: subprocess.Popen | None = None


def current() -> Session | None:
    """The exam-mode session of this notebook, if any."""
    return _session


def _spawn_server(exercise: str) -> str:
    """Start a private server for exam mode (a student's own); returns host:port:token."""
    global _server
    token = secrets.token_hex(16)
    cmd = [sys.executable, "-m", "fedlab.grading.server", "--exam", exercise, "--token", token]
    _server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    atexit.register(_stop_server)
    line = _server.stdout.readline()
    import json

    info = json.loads(line) if line else {}
    if "port" not in info:
        raise WorkerDiedError("the exam-mode workers did not start")
    return f"127.0.0.1:{info['port']}:{token}"


def _stop_server() -> None:
    global _server
    if _server is not None and _server.poll() is None:
        _server.kill()
        _server.wait()
    _server = None


def begin(exercise: str, reads: tuple[str, ...], exam: bool) -> tuple[RemoteWorker, ...]:
    """Connect to the grader's server (or start one in exam mode); the exercise's workers."""
    global _session
    address = os.environ.get(ENV, "")
    if not address:
        if _server is not None:
            _stop_server()
        address = _spawn_server(exercise)
    host, port, token = address.rsplit(":", 2)
    if _session is not None:
        _session.close()
    _session = Session(f"{host}:{port}", token, exercise, reads)
    return tuple(RemoteWorker(None, id=w, session=_session) for w in _session.workers)
