"""The message log an exercise is graded on, and the provenance of every object in it.

``start(name)`` (the first, given cell of every exercise) makes the exercise's workers and
begins a fresh log. In a lesson the workers live in the notebook's process and the log is
fed by ``fedlab.events``; under ``fedlab grade`` (and in exam mode) they live in a process
the grader owns (``fedlab.grading.server``), which keeps the log there. The log keeps, for
each message, who sent it to whom, its kind, the kind of the request it answers and a
*copy* of any tensor it carried, and feeds a ``provenance.Tracker``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from fedlab import events, registry
from fedlab.grading import channel
from fedlab.grading.provenance import Tracker
from fedlab.log import MessageEvent, rows


@dataclass(frozen=True)
class Entry:
    """One message of the log: ``kind`` (``fetch``, ``reply``...) and the tensor it carried."""

    index: int
    kind: str
    sender: str
    receiver: str
    summary: str
    request: str  # for a reply or error: the kind of the request it answers
    op: str = ""  # for an ``op`` request: the operation's name
    tensor: torch.Tensor | None = field(default=None, compare=False, repr=False)
    ids: tuple[int, ...] = ()

    def describe(self) -> str:
        """A short sentence for reports, e.g. ``bob -> me: reply to a fetch (float32[4, 2])``."""
        what = f"reply to a {self.request}" if self.kind in ("reply", "error") else self.kind
        return f"message {self.index}, {self.sender} -> {self.receiver}: {what} ({self.summary})"


@dataclass
class Snapshot:
    """The stores of the exercise's workers at a ``mark``: worker id -> {object id: summary}."""

    label: str
    stores: dict[str, dict[int, str]]


class Recorder:
    """Collects the log of one exercise, from events, until ``close()``."""

    def __init__(
        self,
        exercise: str,
        private: Callable[[str, torch.Tensor], str | None] | None = None,
        workers: tuple[str, ...] = (),
        subscribe: bool = True,
    ) -> None:
        self.exercise = exercise
        self.workers = workers
        self._log: list[Entry] = []
        self.deleted: list[events.ObjectDeleted] = []
        self.cleared: list[events.StoreCleared] = []
        self.marks: dict[str, Snapshot] = {}
        self.tracker = Tracker(private)
        # An exchange is published once its reply is back, after the exchanges nested in
        # it (bob sending alice the data of a move); the core numbers every request and
        # reply in the order they travelled. Each message waits here, by number, until
        # those before it are logged: the log reads requests, then what they caused.
        self._waiting: dict[int, MessageEvent] = {}
        self._next: int | None = None  # the number of the next message to log
        self._open: list[Entry] = []  # requests waiting for their reply (messages nest)
        self._sub = events.subscribe(self.feed) if subscribe else None

    def close(self) -> None:
        """Stop recording (the log stays readable)."""
        if self._sub is not None:
            self._sub.close()

    @property
    def recording(self) -> bool:
        """True while this recorder receives events."""
        return self._sub is None or self._sub in events.bus.subscriptions

    def feed(self, event: Any) -> None:
        """Take one event (a message and its reply, a deletion, a cleared store)."""
        # (Without the objects: a deleted pointer kept here would not cascade its delete.)
        if isinstance(event, events.Exchange):
            self.exchange(event)
        elif isinstance(event, events.ObjectDeleted):
            self.deleted.append(events.ObjectDeleted(event.worker, event.id, event.reason))
        elif isinstance(event, events.StoreCleared):
            self.cleared.append(events.StoreCleared(event.worker, event.ids, event.reason))

    def exchange(self, e: events.Exchange) -> None:
        """Take a message and its reply; log each once every message before it is logged."""
        self._waiting[e.seq], self._waiting[e.end] = rows(e)
        if self._next is None:
            self._next = e.seq
        while self._next in self._waiting:
            self.message(self._waiting.pop(self._next))
            self._next += 1

    @property
    def log(self) -> list[Entry]:
        """The messages, in the order they travelled (any still waiting are logged now)."""
        # (Only a message that failed on its way, a worker process dying, leaves a gap.)
        for n in sorted(self._waiting):
            self.message(self._waiting.pop(n))
            self._next = n + 1
        return self._log

    def message(self, msg: MessageEvent) -> Entry:
        """Log one message (a request, or the reply to the innermost open request)."""
        index, kind, payload = len(self._log), msg.kind, msg.payload
        value = getattr(payload, "value", None) if kind in ("reply", "error") else None
        if kind == "send":
            value = getattr(payload, "obj", None)
        tensor = value.detach().clone() if isinstance(value, torch.Tensor) else None
        request = ""
        if kind in ("reply", "error"):
            request = self._open.pop().kind if self._open else ""
            self.tracker.reply(index, getattr(payload, "value", None), kind == "error")
        else:
            self.tracker.request(index, msg.sender, msg.receiver, payload)
        op = str(getattr(payload, "op", "")) if kind == "op" else ""
        entry = Entry(index, kind, msg.sender, msg.receiver, msg.summary, request, op, tensor,
                      tuple(msg.ids))  # fmt: skip
        self._log.append(entry)
        if kind not in ("reply", "error"):
            self._open.append(entry)
        return entry

    def mark(self, label: str) -> Snapshot:
        """Remember what the exercise's workers hold now, under ``label``."""
        stores = {}
        for w in registry.all_workers():
            in_process = not (hasattr(w, "session") or hasattr(w, "actor"))
            if (not self.workers or w.id in self.workers) and in_process:
                stores[w.id] = {
                    k: " ".join(events.describe(v)) for k, v in sorted(w.objects().items())
                }
        snap = Snapshot(label, stores)
        self.marks[label] = snap
        return snap


def kind_of(msg: Any) -> str:
    """The log's kind for a message object."""
    return channel.kind(msg)


_current: Recorder | None = None


def begin(exercise: str, private: Callable | None, workers: tuple[str, ...]) -> Recorder:
    """A fresh recorder for ``exercise`` in this process (the previous one stops)."""
    global _current
    if _current is not None:
        _current.close()
    _current = Recorder(exercise, private, workers)
    return _current


def current() -> Recorder | None:
    """The recorder of the exercise in progress here, if ``start`` ran in-process."""
    return _current


def stop() -> None:
    """Stop recording (for tests)."""
    global _current
    if _current is not None:
        _current.close()
    _current = None
