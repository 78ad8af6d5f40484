"""``python -m fedlab.grading.server``: an exercise's data owners, in a process the grader owns.

The notebook's kernel reaches bob, alice and the others only through a socket carrying
fedlab's encoded messages (``fedlab.grading.remote``); they are in-process workers here,
so the safe codec and the operation allowlist protect them as usual. Every message is
logged *here*, its provenance followed here, and the criteria evaluated here from the
log, the stores and the notebook's claims: nothing the student's code does inside its
kernel can change a score except through the messages it sends.

The grader drives this process through its standard input and output (one JSON object a
line), which the kernel cannot reach: ``session`` (which exercise, which token; answers
the port), ``mark`` (snapshot the stores), ``grade`` (read the notebook's claims, then
grade; answers the report), ``quit``. With ``--exam NAME`` it starts one session itself
for a student's notebook (exam mode) and prints its port.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
from typing import Any

import torch

import fedlab as sy
from fedlab import events
from fedlab import messages as m
from fedlab.grading import channel, claims
from fedlab.grading.channel import StoreRead
from fedlab.grading.criteria import Exercise
from fedlab.grading.exercises import EXERCISES, get_exercise
from fedlab.grading.recorder import Recorder
from fedlab.grading.report import Report
from fedlab.log import MessageEvent, exchange
from fedlab.pointer import record_of

CLAIMS_TIMEOUT = 20.0  # seconds the kernel has to tell its variables


class Session:
    """One exercise's workers, log and connections."""

    def __init__(self, exercise: Exercise, token: str, trust_marks: bool) -> None:
        self.exercise, self.token, self.trust_marks = exercise, token, trust_marks
        self.lock = threading.RLock()
        self.workers = {}
        for name in exercise.workers:
            self.workers[name] = sy.VirtualWorker(None, id=name)
        for w in self.workers.values():
            w.add_workers(self.workers.values())
        self.recorder = Recorder(exercise.name, exercise.classify, exercise.workers)
        self.claims_sock: socket.socket | None = None
        self.claims_lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    # -- connections from the kernel ------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._hello, args=(sock,), daemon=True).start()

    def _hello(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(30)
            hello = channel.decode(channel.recv_frame(sock))
            sock.settimeout(None)
            if not (isinstance(hello, tuple) and len(hello) == 3 and hello[1] == self.token):
                channel.send_frame(sock, channel.encode(("no", "wrong token")))
                sock.close()
                return
            channel.send_frame(sock, channel.encode(("ok",)))
            if hello[2] == "claims":
                with self.claims_lock:
                    self.claims_sock = sock
                return
            self._serve(sock)
        except Exception:
            sock.close()

    def _serve(self, sock: socket.socket) -> None:
        while True:
            try:
                request = channel.decode(channel.recv_frame(sock))
            except Exception:
                sock.close()
                return
            try:
                answer = self._answer(request)
            except Exception as e:  # a malformed request gets an error, never a crash
                answer = channel.encode(m.ErrorReply(type(e).__name__, str(e)))
            try:
                channel.send_frame(sock, answer)
            except OSError:
                return

    def _answer(self, request: Any) -> bytes:
        if not isinstance(request, tuple) or not request:
            raise ValueError("not a request")
        what = request[0]
        with self.lock:
            if what == "msg" and len(request) == 3:
                return self.message(str(request[1]), request[2])
            if what == "store" and len(request) == 2:
                return channel.encode(self.store_read(str(request[1])))
            if what == "start" and len(request) == 2:
                if request[1] != self.exercise.name:
                    return channel.encode(("no", f"these workers are for {self.exercise.name!r}"))
                self.restart()
                return channel.encode(("ok", self.exercise.workers))
            if what == "mark" and len(request) == 2:
                if self.trust_marks:
                    self.recorder.mark(str(request[1]))
                return channel.encode(("ok",))
            if what == "check" and len(request) == 2:
                if not self.trust_marks:  # under fedlab grade: the grade comes at the end
                    note = "fedlab grade checks this notebook once all its cells have run"
                    return channel.encode(Report(self.exercise.name, [], note).to_dict())
                report = self.exercise.grade(claims.load_all(request[1]), self.recorder)
                return channel.encode(report.to_dict())
        raise ValueError(f"the grader's workers do not answer {what!r}")

    def _worker(self, name: str) -> sy.VirtualWorker:
        w = self.workers.get(name)
        if w is None:
            raise ValueError(f"there is no worker {name!r} in this exercise")
        return w

    def message(self, name: str, data: Any) -> bytes:
        """Deliver one encoded message from the notebook (always ``me``) to worker ``name``."""
        w = self._worker(name)
        if not isinstance(data, bytes):
            raise ValueError("a message travels as bytes")
        try:
            sender, receiver, msg = channel.request(data)
        except Exception as e:
            return channel.reply(name, m.ErrorReply(type(e).__name__, str(e)))
        if sender != "me" or receiver != name:
            # The notebook speaks for me only: a message claiming another sender is refused.
            return channel.reply(
                name, m.ErrorReply("SerdeError", "a notebook can only speak as me")
            )
        seq = next(events.bus.order)
        reply = w.recv_msg(data)
        answer = channel.request(reply)[2]
        self._publish(seq, (channel.kind(msg), "me", name, len(data), *channel.describe(msg), msg),
                      (channel.kind(answer), name, "me", len(reply), *channel.describe(answer),
                       answer))  # fmt: skip
        return reply

    def store_read(self, name: str) -> dict[int, Any]:
        """Every object of ``name`` as values (pointers as tuples): logged as a transfer."""
        w = self._worker(name)
        out: dict[int, Any] = {}
        for k, v in sorted(w.objects().items()):
            p = record_of(v)
            if isinstance(v, torch.Tensor):
                out[k] = v.detach().clone()
            elif p is not None:
                out[k] = ("pointer", p.location_id, p.id_at_location)
        self._publish(next(events.bus.order),
                      ("store read", "me", name, 0, f"every object on {name}", (), StoreRead(name)),
                      ("reply", name, "me", 0, "store", (), m.Reply(out)))  # fmt: skip
        return out

    def restart(self) -> None:
        """``start(...)`` ran (again) in the notebook: every worker starts empty."""
        for name, w in self.workers.items():
            if w.objects():
                seq = next(events.bus.order)
                w.clear_objects()
                self._publish(seq, ("clear", "me", name, 0, "start", (), m.ClearObjects("start")),
                              ("reply", name, "me", 0, "", (), m.Reply(None)))  # fmt: skip

    def _publish(self, seq: int, request: tuple, reply: tuple) -> None:
        """Log a message and its reply, each ``(kind, sender, receiver, bytes, summary, ids,
        payload)``, as the core logs its own (``seq``: the request's number)."""
        rows = (MessageEvent(*request), MessageEvent(*reply))
        events.bus.publish(exchange(*rows, seq, next(events.bus.order)))

    # -- the grader's commands ------------------------------------------------------------
    def read_claims(self) -> tuple[dict[str, Any], str]:
        """The notebook's variables, asked from its claims thread (works while it is busy)."""
        with self.claims_lock:
            sock = self.claims_sock
        if sock is None:
            return {}, "the notebook never connected (did its first cell run?)"
        try:
            sock.settimeout(CLAIMS_TIMEOUT)
            channel.send_frame(sock, channel.encode(("read", self.exercise.reads)))
            raw = channel.decode(channel.recv_frame(sock))
        except Exception as e:
            return {}, f"the notebook's variables could not be read ({type(e).__name__})"
        return claims.load_all(raw), ""

    def grade(self) -> dict[str, Any]:
        """Read the claims, then grade under the lock (no message changes the log meanwhile)."""
        found, problem = self.read_claims()
        with self.lock:
            report = self.exercise.grade(found, self.recorder)
        if problem:
            report.error = problem
        return report.to_dict()


def _serve_grader(proto: Any) -> None:
    session: Session | None = None
    for line in sys.stdin:
        try:
            cmd = json.loads(line)
            what = cmd.get("cmd")
            if what == "session":
                session = Session(get_exercise(cmd["exercise"]), cmd["token"], False)
                answer: dict[str, Any] = {"port": session.port}
            elif what == "mark" and session is not None:
                with session.lock:
                    session.recorder.mark(str(cmd.get("label", "given")))
                answer = {"ok": True}
            elif what == "grade" and session is not None:
                answer = {"report": session.grade()}
            elif what == "quit":
                return
            else:
                answer = {"error": f"unknown command {what!r}"}
        except Exception as e:
            answer = {"error": f"{type(e).__name__}: {e}"}
        proto.write(json.dumps(answer) + "\n")
        proto.flush()


def _warm_up() -> None:
    """Import and run once what grading needs, so that no later import reads a file."""
    import fedlab.planrun
    import fedlab.plans  # noqa: F401

    sy.TorchHook(torch)
    for ex in EXERCISES.values():
        ex.grade({}, None)
    Report("warm-up").to_dict()


def main(argv: list[str] | None = None) -> int:
    """Serve the grader on stdin/stdout (or, with ``--exam``, one student's notebook)."""
    parser = argparse.ArgumentParser(description="the workers of one exercise, for grading")
    parser.add_argument("--exam", help="start a session for this exercise at once")
    parser.add_argument("--token", default="")
    args = parser.parse_args(argv)
    # Our stdout is the grader's channel: everything else printed goes to stderr.
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    torch.set_num_threads(1)
    _warm_up()
    if args.exam:
        session = Session(get_exercise(args.exam), args.token, True)
        proto.write(json.dumps({"port": session.port}) + "\n")
        proto.flush()
        sys.stdin.read()  # until the notebook's kernel (our parent) goes away
        return 0
    proto.write(json.dumps({"ready": True}) + "\n")
    proto.flush()
    _serve_grader(proto)
    return 0


if __name__ == "__main__":
    sys.exit(main())
