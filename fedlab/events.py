"""Events that workers publish: messages on the wire and changes to object stores.

The visualisation and the grader subscribe here; the core never imports them.
Publishing costs one truth test when nobody listens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MessageEvent:
    """A message went from ``sender`` to ``receiver`` (``kind``: ``send``, ``op``, ``reply``...)."""

    kind: str
    sender: str
    receiver: str
    nbytes: int
    summary: str
    ids: tuple[int, ...] = ()
    payload: Any = field(default=None, compare=False, repr=False)
    time: float = field(default_factory=time.perf_counter, compare=False, repr=False)
    elapsed: float | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ObjectStored:
    """``worker`` stored an object under ``id`` (``kind`` is ``tensor`` or ``pointer``)."""

    worker: str
    id: int
    kind: str
    summary: str
    obj: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ObjectDeleted:
    """``worker`` dropped the object ``id`` from its store, for ``reason``."""

    worker: str
    id: int
    reason: str


@dataclass(frozen=True)
class StoreCleared:
    """``worker`` emptied its whole store (``reset`` or ``clear_objects``)."""

    worker: str
    ids: tuple[int, ...]
    reason: str


Event = MessageEvent | ObjectStored | ObjectDeleted | StoreCleared


class Subscription:
    """A live subscription; ``close()`` (or leaving a ``with`` block) ends it."""

    def __init__(self, bus: EventBus, callback: Callable[[Event], None]) -> None:
        self._bus = bus
        self.callback = callback

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

    def subscribe(self, callback: Callable[[Event], None]) -> Subscription:
        """Call ``callback(event)`` for each future event until the subscription closes."""
        sub = Subscription(self, callback)
        self.subscriptions = (*self.subscriptions, sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        self.subscriptions = tuple(s for s in self.subscriptions if s is not sub)

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
