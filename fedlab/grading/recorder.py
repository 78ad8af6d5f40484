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
        self.log: list[Entry] = []
        self.deleted: list[events.ObjectDeleted] = []
        self.cleared: list[events.StoreCleared] = []
        self.marks: dict[str, Snapshot] = {}
        self.tracker = Tracker(private)
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
        """Take one event (a message, a deletion, a cleared store)."""
        if isinstance(event, events.MessageEvent):
            self.message(event.kind, event.sender, event.receiver, event.payload, event.summary,
                         tuple(event.ids))  # fmt: skip
        elif isinstance(event, events.ObjectDeleted):
            self.deleted.append(event)
        elif isinstance(event, events.StoreCleared):
            self.cleared.append(event)

    def message(self, kind: str, sender: str, receiver: str, payload: Any,
                summary: str = "", ids: tuple[int, ...] = ()) -> Entry:  # fmt: skip
        """Log one message (a request, or the reply to the innermost open request)."""
        index = len(self.log)
        value = getattr(payload, "value", None) if kind in ("reply", "error") else None
        if kind == "send":
            value = getattr(payload, "obj", None)
        tensor = value.detach().clone() if isinstance(value, torch.Tensor) else None
        request = ""
        if kind in ("reply", "error"):
            request = self._open.pop().kind if self._open else ""
            self.tracker.reply(index, getattr(payload, "value", None), kind == "error")
        else:
            self.tracker.request(index, sender, receiver, payload)
        op = str(getattr(payload, "op", "")) if kind == "op" else ""
        entry = Entry(index, kind, sender, receiver, summary, request, op, tensor, ids)
        self.log.append(entry)
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
