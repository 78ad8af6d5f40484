"""What a worker process sends back: the encoded reply, and the events it caused.

A reply from a worker process is one value encoded by ``serde`` (no pickle): fedlab's
encoded reply (exactly what an in-process worker returns) and the worker's events as
plain rows, so that the notebook can republish them on ``fedlab.events.bus`` and the
live views show remote stores too. A malformed frame is a ``SerdeError``.

Inside a worker process, the events a message causes are collected per handling thread
(``collect``) while its caller listens; ``listening()`` tells a thread whether to ask the
workers it calls for their events.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from fedlab import events, serde
from fedlab import messages as m
from fedlab.exceptions import SerdeError
from fedlab.log import MessageEvent, exchange, rows
from fedlab.pointer import record_of

_local = threading.local()
in_worker_process = False  # set once by the worker process's actor, before any message


def listening() -> bool:
    """Whether this thread's messages should bring their events back."""
    return getattr(_local, "sink", None) is not None if in_worker_process else bool(events.bus)


def collect(sink: list | None) -> None:
    """Collect this thread's events into ``sink`` (None: stop)."""
    _local.sink = sink


def collector(event: events.Event) -> None:
    """The worker process's subscriber: each event goes to its thread's sink, if any."""
    sink = getattr(_local, "sink", None)
    if sink is not None:
        sink.append(event)


def frame(reply: bytes, evs: list[events.Event]) -> bytes:
    """The reply and the events, as one encoded value."""
    return serde.encode_value([reply, [_row(e) for e in evs]])


def unframe(data: bytes) -> tuple[bytes, list[events.Event]]:
    """What ``frame`` made: the reply bytes and the events, checked."""
    value = serde.decode_value(data)
    if type(value) is not list or len(value) != 2 or type(value[0]) is not bytes:
        raise SerdeError("a worker process answered with a malformed frame")
    reply, rows = value
    if type(rows) is not list:
        raise SerdeError("a worker process answered with malformed events")
    return reply, [_event(r) for r in rows]


def _travelling(obj: Any) -> Any:
    """An object as it can travel inside an event: a tensor, a pointer reference, or None."""
    p = record_of(obj)
    if p is not None:
        return p.as_ref()
    return obj if type(obj) is torch.Tensor else None


def _message(e: MessageEvent) -> list:
    payload = e.payload
    try:
        serde.encode_value(payload)
    except SerdeError:
        payload = None
    return [e.kind, e.sender, e.receiver, e.nbytes, e.summary, list(e.ids), payload, e.elapsed]


def _row(e: events.Event) -> list:
    if isinstance(e, events.Exchange):
        return ["x", *[_message(r) for r in rows(e)], e.seq, e.end]
    if isinstance(e, events.ObjectStored):
        return ["s", e.worker, e.id, e.kind, e.summary, _travelling(e.obj)]
    if isinstance(e, events.ObjectDeleted):
        return ["d", e.worker, e.id, e.reason]
    return ["c", e.worker, list(e.ids), e.reason]


_MESSAGE = (str, str, str, int, str, list, object, (float, type(None)))
_SHAPES = {
    "x": (list, list, int, int),
    "s": (str, int, str, str, object),
    "d": (str, int, str),
    "c": (str, list, str),
}


def _check(row: list, shape: tuple) -> None:
    if len(row) != len(shape) or not all(
        isinstance(v, t) and type(v) is not bool for v, t in zip(row, shape)
    ):
        raise SerdeError("a worker process sent a malformed event")


def _event(row: Any) -> events.Event:
    shape = _SHAPES.get(row[0]) if type(row) is list and row and type(row[0]) is str else None
    if shape is None:
        raise SerdeError("a worker process sent a malformed event")
    _check(row[1:], shape)
    tag, *rest = row
    if tag == "x":
        *pair, seq, end = rest
        now, messages = events._now(), []
        for r in pair:
            _check(r, _MESSAGE)
            kind, sender, receiver, nbytes, text, ids, payload, elapsed = r
            if not all(type(i) is int for i in ids) or (
                not hasattr(payload, "kind") and payload is not None
            ):
                raise SerdeError("a worker process sent a malformed event")
            back = now + (elapsed or 0.0)  # (a reply's time: when it came back)
            messages.append(MessageEvent(kind, sender, receiver, nbytes, text, tuple(ids),
                                         payload, back, elapsed))  # fmt: skip
        return exchange(*messages, seq, end)
    if tag == "s":
        worker_id, obj_id, kind, text, obj = rest
        if not (obj is None or type(obj) in (torch.Tensor, m.PointerRef)):
            raise SerdeError("a worker process sent a malformed event")
        return events.ObjectStored(worker_id, obj_id, kind, text, obj)
    if tag == "d":
        return events.ObjectDeleted(*rest)
    worker_id, ids, reason = rest
    if not all(type(i) is int for i in ids):
        raise SerdeError("a worker process sent a malformed event")
    return events.StoreCleared(worker_id, tuple(ids), reason)


def publish(evs: list[events.Event]) -> None:
    """Republish a worker process's events here, in their order, its messages numbered here."""
    if events.bus:
        numbers = sorted(n for e in evs if type(e) is events.Exchange for n in (e.seq, e.end))
        here = {n: next(events.bus.order) for n in numbers}  # (the order they travelled in)
        for e in evs:
            if type(e) is events.Exchange:
                e.seq, e.end = here[e.seq], here[e.end]
            events.bus.publish(e)
