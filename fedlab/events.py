"""Events that workers publish: messages on the wire and changes to object stores.

The visualisation and the grader subscribe here; the core never imports them. A worker
publishes one ``Exchange`` for each message it sends, once the reply is back, and a store
publishes ``ObjectStored``, ``ObjectDeleted`` and ``StoreCleared``. Publishing costs one
truth test (``if bus:``) when nobody listens. Summaries are worked out only when a
subscriber reads them. Events carry the objects they are about (``obj``, ``payload``):
a subscriber that keeps an event keeps those alive, and a kept pointer deletes nothing.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import torch

from fedlab.messages import PlanDef, RunOp

_now = time.perf_counter


def describe(obj: Any) -> tuple[str, str]:
    """A stored object's kind and summary: ``("tensor", "int64[5]")`` or ``("pointer", ...)``."""
    if isinstance(obj, torch.Tensor):
        return "tensor", f"{str(obj.dtype).removeprefix('torch.')}{list(obj.shape)}"
    location = getattr(obj, "location_id", None)  # a pointer (``fedlab.pointer``)
    if location is not None:
        return "pointer", f"-> {location}:{obj.id_at_location}"
    if type(obj) is PlanDef:
        return "plan", f"plan {obj.name} ({sum(type(s) is RunOp for s in obj.steps)} ops)"
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


class Exchange(_Event):
    """``sender`` sent a message to ``receiver`` and got its reply: published once it is back.

    The request is ``kind``, ``nbytes`` and ``payload``; the reply is ``reply`` (a ``Reply``
    or an ``ErrorReply``) of ``reply_nbytes`` bytes, ``elapsed`` seconds after ``time``. What
    the receiver did meanwhile was published before it; ``seq`` and ``end``, drawn from
    ``bus.order`` as the request left and the reply came, put each message back in the
    order it travelled (``fedlab.log.messages``, which also fills in ``rows``).
    """

    __slots__ = ("elapsed", "end", "kind", "nbytes", "payload", "receiver", "reply",
                 "reply_nbytes", "rows", "sender", "seq", "time")  # fmt: skip
    _compare = ("kind", "sender", "receiver", "nbytes", "reply_nbytes")

    def __init__(self, kind: str, sender: str, receiver: str, nbytes: int, payload: Any,
                 reply: Any, reply_nbytes: int, time: float, elapsed: float, seq: int,
                 end: int, rows: Any = None) -> None:  # fmt: skip
        self.kind, self.sender, self.receiver, self.nbytes = kind, sender, receiver, nbytes
        self.payload, self.reply, self.reply_nbytes = payload, reply, reply_nbytes
        self.time, self.elapsed, self.seq, self.end, self.rows = time, elapsed, seq, end, rows


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
    """``worker`` dropped the object ``id`` (``obj``, in its last moment) for ``reason``."""

    __slots__ = ("id", "obj", "reason", "worker")
    _compare = ("worker", "id", "reason")

    def __init__(self, worker: str, id: int, reason: str, obj: Any = None) -> None:
        self.worker, self.id, self.reason, self.obj = worker, id, reason, obj


class StoreCleared(_Event):
    """``worker`` emptied its store (``reset``, ``clear_objects``): ``objs`` were under ``ids``."""

    __slots__ = ("ids", "objs", "reason", "worker")
    _compare = ("worker", "ids", "reason")

    def __init__(self, worker: str, ids: tuple[int, ...], reason: str, objs: Any = ()) -> None:
        self.worker, self.ids, self.reason, self.objs = worker, ids, reason, objs


Event = Exchange | ObjectStored | ObjectDeleted | StoreCleared


class Subscription:
    """A live subscription; ``close()`` (or leaving a ``with`` block) ends it."""

    def __init__(self, bus: EventBus, callback: Callable[[Event], None], safe: bool) -> None:
        self._bus, self.callback, self.safe = bus, callback, safe

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
        self.order = itertools.count(1)  # numbers messages (``Exchange.seq``, ``.end``)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The live subscriptions, in order."""
        return self._subscriptions

    @subscriptions.setter
    def subscriptions(self, subs: tuple[Subscription, ...]) -> None:
        self._subscriptions = subs = tuple(subs)
        # ``publish(event)``: a lone subscriber that catches its own errors is called
        # directly (a watched loop publishes thousands of events; this is the panel's case).
        self.publish = subs[0].callback if len(subs) == 1 and subs[0].safe else self._deliver

    def subscribe(self, callback: Callable[[Event], None], safe: bool = False) -> Subscription:
        """Call ``callback(event)`` for each future event until the subscription closes.

        ``safe``: the callback never raises (else each call is guarded for it).
        """
        sub = Subscription(self, callback, safe)
        self.subscriptions = (*self.subscriptions, sub)
        return sub

    def _deliver(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber; a failing subscriber never breaks the core."""
        for sub in self.subscriptions:
            try:
                sub.callback(event)
            except Exception:  # a broken widget must not break a student's training loop
                pass

    def __bool__(self) -> bool:
        return bool(self._subscriptions)


bus = EventBus()
subscribe = bus.subscribe
