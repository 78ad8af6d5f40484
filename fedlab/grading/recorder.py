"""The message log an exercise is graded on: a subscriber that keeps what the checks need.

``start(name)`` (the first, given cell of every exercise) empties the workers and begins
a fresh log. The log keeps, for each message, who sent it to whom, its kind, the kind
of the request it answers, and a *copy* of any tensor it carried: a student may change
a fetched tensor in place later, and the privacy checks compare the values that travelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from fedlab import events, registry


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
    """The stores of every in-process worker at a ``mark``: worker id -> {object id: summary}."""

    label: str
    stores: dict[str, dict[int, str]]


class Recorder:
    """Collects the log of one exercise from ``sy.subscribe`` events until ``close()``."""

    def __init__(self, exercise: str) -> None:
        self.exercise = exercise
        self.log: list[Entry] = []
        self.deleted: list[events.ObjectDeleted] = []
        self.cleared: list[events.StoreCleared] = []
        self.marks: dict[str, Snapshot] = {}
        # Tensors sent to a worker, by (worker, id): tells "computed there" from "sent there".
        self.sent: dict[tuple[str, int], torch.Tensor] = {}
        self._open: list[Entry] = []  # requests waiting for their reply (messages nest)
        self._sub = events.subscribe(self._on_event)

    def close(self) -> None:
        """Stop recording (the log stays readable)."""
        self._sub.close()

    @property
    def recording(self) -> bool:
        """True while this recorder receives events."""
        return self._sub in events.bus.subscriptions

    def _on_event(self, event: Any) -> None:
        if isinstance(event, events.MessageEvent):
            self._on_message(event)
        elif isinstance(event, events.ObjectDeleted):
            self.deleted.append(event)
        elif isinstance(event, events.StoreCleared):
            self.cleared.append(event)

    def _on_message(self, e: events.MessageEvent) -> None:
        payload = e.payload
        value = getattr(payload, "value", None) if e.kind in ("reply", "error") else None
        if e.kind == "send":
            value = getattr(payload, "obj", None)
        tensor = value.detach().clone() if isinstance(value, torch.Tensor) else None
        request = ""
        if e.kind in ("reply", "error") and self._open:
            opened = self._open.pop()
            request = opened.kind
            if opened.kind == "send" and opened.tensor is not None and isinstance(value, int):
                self.sent[(opened.receiver, value)] = opened.tensor
        op = getattr(payload, "op", "") if e.kind == "op" else ""
        entry = Entry(len(self.log), e.kind, e.sender, e.receiver, e.summary, request, op,
                      tensor, e.ids)  # fmt: skip
        self.log.append(entry)
        if e.kind not in ("reply", "error"):
            self._open.append(entry)

    def mark(self, label: str) -> Snapshot:
        """Remember what every in-process worker holds now, under ``label``."""
        stores = {
            w.id: {k: " ".join(events.describe(v)) for k, v in sorted(w.objects().items())}
            for w in registry.all_workers()
            if hasattr(w, "objects")
        }
        snap = Snapshot(label, stores)
        self.marks[label] = snap
        return snap


_current: Recorder | None = None


def start(exercise: str) -> Recorder:
    """Begin an exercise: empty every worker, restart ids, and record a fresh message log."""
    global _current
    if _current is not None:
        _current.close()
    registry.reset()
    _current = Recorder(exercise)
    return _current


def current() -> Recorder | None:
    """The recorder of the exercise in progress, if ``start`` ran."""
    return _current


def mark(label: str = "given") -> None:
    """Snapshot the workers' stores (the given cells call this where a check needs it)."""
    if _current is not None:
        _current.mark(label)


def stop() -> None:
    """Stop recording (for tests)."""
    global _current
    if _current is not None:
        _current.close()
    _current = None
