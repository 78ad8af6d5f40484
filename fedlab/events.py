"""Events that workers publish: messages on the wire and changes to object stores.

The visualisation and the grader subscribe here; the core never imports them.
Publishing costs one truth test when nobody listens. When a lone panel does, a loop
of sends makes about six events per iteration: the core publishes the frequent ones
with ``publish_message``/``_stored``/``_deleted``, which are then the panel's own
``Direct`` handlers (no event object is built); otherwise they build the event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

_now = time.perf_counter


# How a message or a stored object is summarised (set by ``fedlab.worker``): computed
# only when a subscriber reads ``summary``, so that a listening panel costs little.
describe_message: Callable[[Any], tuple[str, str, tuple[int, ...]]] | None = None
describe_object: Callable[[Any], tuple[str, str]] | None = None


class _Event:
    """Slotted, read-only-by-convention event records (cheap to make: one per message)."""

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

    ``summary`` (one line) and ``ids`` (the object ids it names) are worked out from
    ``payload``, the decoded message, when first read. ``time`` is when it was sent
    (``time.perf_counter``); a reply's ``elapsed`` is the round trip in seconds.
    """

    __slots__ = (
        "_ids",
        "_summary",
        "elapsed",
        "kind",
        "nbytes",
        "payload",
        "receiver",
        "sender",
        "time",
    )
    _compare = ("kind", "sender", "receiver", "nbytes", "summary", "ids")

    def __init__(
        self,
        kind: str,
        sender: str,
        receiver: str,
        nbytes: int,
        summary: str | None = None,
        ids: tuple[int, ...] | None = None,
        payload: Any = None,
        time: float | None = None,
        elapsed: float | None = None,
    ) -> None:
        self.kind = kind
        self.sender = sender
        self.receiver = receiver
        self.nbytes = nbytes
        self._summary = summary
        self._ids = ids
        self.payload = payload
        self.time = _now() if time is None else time
        self.elapsed = elapsed

    def _describe(self) -> None:
        if describe_message is not None and self.payload is not None:
            _, text, ids = describe_message(self.payload)
        else:
            text, ids = "", ()
        if self._summary is None:
            self._summary = text
        if self._ids is None:
            self._ids = ids

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

    def __init__(
        self,
        worker: str,
        id: int,
        kind: str | None = None,
        summary: str | None = None,
        obj: Any = None,
    ) -> None:
        self.worker = worker
        self.id = id
        self._kind = kind
        self._summary = summary
        self.obj = obj

    def _describe(self) -> None:
        kind, text = describe_object(self.obj) if describe_object else ("", "")
        if self._kind is None:
            self._kind = kind
        if self._summary is None:
            self._summary = text

    @property
    def kind(self) -> str:
        """``tensor`` or ``pointer``."""
        if self._kind is None:
            self._describe()
        return self._kind

    @property
    def summary(self) -> str:
        """dtype and shape of a tensor, or where a pointer points."""
        if self._summary is None:
            self._describe()
        return self._summary


class ObjectDeleted(_Event):
    """``worker`` dropped the object ``id`` from its store, for ``reason``."""

    __slots__ = ("id", "reason", "worker")
    _compare = ("worker", "id", "reason")

    def __init__(self, worker: str, id: int, reason: str) -> None:
        self.worker = worker
        self.id = id
        self.reason = reason


class StoreCleared(_Event):
    """``worker`` emptied its whole store (``reset`` or ``clear_objects``)."""

    __slots__ = ("ids", "reason", "worker")
    _compare = ("worker", "ids", "reason")

    def __init__(self, worker: str, ids: tuple[int, ...], reason: str) -> None:
        self.worker = worker
        self.ids = ids
        self.reason = reason


Event = MessageEvent | ObjectStored | ObjectDeleted | StoreCleared


class Direct(NamedTuple):
    """Handlers a subscriber takes events' fields with, instead of event objects."""

    message: Callable[[str, str, str, int, Any, float, float | None], None]
    stored: Callable[[str, int, Any], None]
    deleted: Callable[[str, int, str], None]


class Subscription:
    """A live subscription; ``close()`` (or leaving a ``with`` block) ends it."""

    def __init__(
        self, bus: EventBus, callback: Callable[[Event], None], direct: Direct | None = None
    ) -> None:
        self._bus = bus
        self.callback = callback
        self.direct = direct

    def close(self) -> None:
        """Stop receiving events (safe to call twice)."""
        self._bus._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """A list of callbacks that receive every event, in order."""

    def __init__(self) -> None:
        self.subscriptions: tuple[Subscription, ...] = ()
        # The callbacks alone, rebuilt on (un)subscribe: publishing is on the hot path,
        # and the core tests ``bus.callbacks`` before it even builds an event.
        self.callbacks: tuple[Callable[[Event], None], ...] = ()

    def subscribe(
        self, callback: Callable[[Event], None], *, direct: Direct | None = None
    ) -> Subscription:
        """Call ``callback(event)`` for each future event until the subscription closes.

        While it is the only one, the ``direct`` handlers (which must never raise) take
        the fields of what ``publish_message``/``_stored``/``_deleted`` publish instead.
        """
        sub = Subscription(self, callback, direct)
        self._set((*self.subscriptions, sub))
        return sub

    def _remove(self, sub: Subscription) -> None:
        self._set(tuple(s for s in self.subscriptions if s is not sub))

    def _set(self, subscriptions: tuple[Subscription, ...]) -> None:
        self.subscriptions = subscriptions
        self.callbacks = tuple(s.callback for s in subscriptions)
        if self is bus:
            _route(subscriptions[0].direct if len(subscriptions) == 1 else None)

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber; a failing subscriber never breaks the core."""
        for callback in self.callbacks:
            try:
                callback(event)
            except Exception:  # a broken widget must not break a student's training loop
                pass

    def __bool__(self) -> bool:
        return bool(self.subscriptions)


bus = EventBus()
subscribe = bus.subscribe


# The frequent events in their fields' order (the constructors also take summary/ids).
def _message(kind: str, sender: str, receiver: str, nbytes: int, payload: Any, time: float,
             elapsed: float | None = None) -> None:  # fmt: skip
    """Publish a ``MessageEvent``."""
    bus.publish(MessageEvent(kind, sender, receiver, nbytes, None, None, payload, time, elapsed))


def _stored(worker: str, id: int, obj: Any) -> None:
    """Publish an ``ObjectStored``."""
    bus.publish(ObjectStored(worker, id, None, None, obj))


def _deleted(worker: str, id: int, reason: str) -> None:
    """Publish an ``ObjectDeleted``."""
    bus.publish(ObjectDeleted(worker, id, reason))


publish_message, publish_stored, publish_deleted = _message, _stored, _deleted


def _route(direct: Direct | None) -> None:
    # Rebound module names (so call them as ``events.publish_message(...)``, never import
    # them): one call straight into a lone panel's handler, no event, no subscriber loop.
    global publish_message, publish_stored, publish_deleted
    publish_message, publish_stored, publish_deleted = direct or (_message, _stored, _deleted)
