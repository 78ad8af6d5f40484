"""Events that workers publish: messages on the wire and changes to object stores.

The visualisation and the grader subscribe here; the core never imports them. A worker
publishes a ``MessageEvent`` for each message it sends and each reply it gets, and a
store publishes ``ObjectStored``, ``ObjectDeleted`` and ``StoreCleared``. Publishing costs
one truth test (``if bus:``) when nobody listens. Summaries are worked out only when a
subscriber reads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from fedlab.messages import PlanDef
from fedlab.messages import describe as describe_message

_now = time.perf_counter


def describe(obj: Any) -> tuple[str, str]:
    """A stored object's kind and summary: ``("tensor", "int64[5]")`` or ``("pointer", ...)``."""
    if isinstance(obj, torch.Tensor):
        return "tensor", f"{str(obj.dtype).removeprefix('torch.')}{list(obj.shape)}"
    location = getattr(obj, "location_id", None)  # a pointer (``fedlab.pointer``)
    if location is not None:
        return "pointer", f"-> {location}:{obj.id_at_location}"
    if type(obj) is PlanDef:
        return "plan", describe_message(obj)[0]
    return type(obj).__name__, ""


class _Event:
    """Slotted, read-only-by-convention records, equal when their ``_compare`` fields are."""

    __slots__ = ()
    _compare: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._compare)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f) for f in self._compare))

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._compare)
        return f"{type(self).__name__}({fields})"


class MessageEvent(_Event):
    """A message went from ``sender`` to ``receiver`` (``kind``: ``send``, ``op``, ``reply``...).

    ``payload`` is the message itself; ``summary`` (one line) and ``ids`` (the object ids
    it names) are read off it when first asked. ``time`` is when it was sent
    (``time.perf_counter``); a reply's ``elapsed`` is the round trip in seconds.
    """

    __slots__ = ("_ids", "_summary", "elapsed", "kind", "nbytes", "payload", "receiver",
                 "sender", "time")  # fmt: skip
    _compare = ("kind", "sender", "receiver", "nbytes", "summary", "ids")

    def __init__(self, kind: str, sender: str, receiver: str, nbytes: int,
                 summary: str | None = None, ids: tuple[int, ...] | None = None,
                 payload: Any = None, time: float | None = None,
                 elapsed: float | None = None) -> None:  # fmt: skip
        self.kind, self.sender, self.receiver, self.nbytes = kind, sender, receiver, nbytes
        self._summary, self._ids, self.payload = summary, ids, payload
        self.time = _now() if time is None else time
        self.elapsed = elapsed

    def _describe(self) -> None:
        text, ids = describe_message(self.payload)
        self._summary = text if self._summary is None else self._summary
        self._ids = ids if self._ids is None else self._ids

    @property
    def summary(self) -> str:
        """A one-line description, e.g. ``add`` or ``float32[2, 3]``."""
        if self._summary is None:
            self._describe()
        return self._summary

    @property
    def ids(self) -> tuple[int, ...]:
        """The object ids the message names."""
        if self._ids is None:
            self._describe()
        return self._ids


class ObjectStored(_Event):
    """``worker`` stored an object under ``id`` (``kind`` is ``tensor`` or ``pointer``)."""

    __slots__ = ("_kind", "_summary", "id", "obj", "worker")
    _compare = ("worker", "id", "kind", "summary")

    def __init__(self, worker: str, id: int, kind: str | None = None,
                 summary: str | None = None, obj: Any = None) -> None:  # fmt: skip
        self.worker, self.id, self.obj = worker, id, obj
        self._kind, self._summary = kind, summary

    @property
    def kind(self) -> str:
        """``tensor`` or ``pointer``."""
        if self._kind is None:
            self._kind = describe(self.obj)[0]
        return self._kind

    @property
    def summary(self) -> str:
        """dtype and shape of a tensor, or where a pointer points."""
        if self._summary is None:
            self._summary = describe(self.obj)[1]
        return self._summary


class ObjectDeleted(_Event):
    """``worker`` dropped the object ``id`` from its store, for ``reason``."""

    __slots__ = ("id", "reason", "worker")
    _compare = ("worker", "id", "reason")

    def __init__(self, worker: str, id: int, reason: str) -> None:
        self.worker, self.id, self.reason = worker, id, reason


class StoreCleared(_Event):
    """``worker`` emptied its whole store (``reset`` or ``clear_objects``)."""

    __slots__ = ("ids", "reason", "worker")
    _compare = ("worker", "ids", "reason")

    def __init__(self, worker: str, ids: tuple[int, ...], reason: str) -> None:
        self.worker, self.ids, self.reason = worker, ids, reason


Event = MessageEvent | ObjectStored | ObjectDeleted | StoreCleared


class Subscription:
    """A live subscription; ``close()`` (or leaving a ``with`` block) ends it."""

    def __init__(self, bus: EventBus, callback: Callable[[Event], None]) -> None:
        self._bus = bus
        self.callback = callback

    def close(self) -> None:
        """Stop receiving events (safe to call twice)."""
        self._bus.subscriptions = tuple(s for s in self._bus.subscriptions if s is not self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """The subscribers; each receives every event, in order. False while nobody listens."""

    def __init__(self) -> None:
        self.subscriptions: tuple[Subscription, ...] = ()

    def subscribe(self, callback: Callable[[Event], None]) -> Subscription:
        """Call ``callback(event)`` for each future event until the subscription closes."""
        sub = Subscription(self, callback)
        self.subscriptions = (*self.subscriptions, sub)
        return sub

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber; a failing subscriber never breaks the core."""
        for sub in self.subscriptions:
            try:
                sub.callback(event)
            except Exception:  # a broken widget must not break a student's training loop
                pass

    def __bool__(self) -> bool:
        return bool(self.subscriptions)


bus = EventBus()
subscribe = bus.subscribe
