"""What a worker process sends back: the encoded reply, and the events it caused.

A reply from a worker process is one bytes value: a 4-byte length, fedlab's encoded
reply (exactly what an in-process worker returns), then the worker's events encoded
with the same safe codec (``serde``: no pickle) so that the notebook can republish
them on ``fedlab.events.bus`` and the live views show remote stores too.
"""

from __future__ import annotations

import struct
from typing import Any

import torch

from fedlab import events, serde
from fedlab.worker import to_value

_LEN = struct.Struct("<I")


def frame(reply: bytes, evs: list[events.Event]) -> bytes:
    """The reply bytes followed by the encoded events (none when nobody listens)."""
    return _LEN.pack(len(reply)) + reply + (encode_events(evs) if evs else b"")


def unframe(data: bytes) -> tuple[bytes, list[events.Event]]:
    """Split what ``frame`` made back into the reply bytes and the events."""
    (n,) = _LEN.unpack_from(data)
    reply = data[_LEN.size : _LEN.size + n]
    rest = data[_LEN.size + n :]
    return reply, decode_events(rest) if rest else []


def _travelling(obj: Any) -> Any:
    """An object as it can travel inside an event: a tensor, a pointer reference, or None."""
    value = to_value(obj)
    return value if isinstance(value, torch.Tensor) or hasattr(value, "id_at_location") else None


def _payload(msg: Any) -> Any:
    try:
        serde.encode(msg)
    except serde.SerdeError:
        return None
    return msg


def encode_events(evs: list[events.Event]) -> bytes:
    """Events as plain tuples, encoded with ``serde`` (times are local; ``elapsed`` is kept)."""
    rows = []
    for e in evs:
        if isinstance(e, events.MessageEvent):
            rows.append(("m", e.kind, e.sender, e.receiver, e.nbytes, e.summary, tuple(e.ids),
                         _payload(e.payload), e.elapsed))  # fmt: skip
        elif isinstance(e, events.ObjectStored):
            rows.append(("s", e.worker, e.id, e.kind, e.summary, _travelling(e.obj)))
        elif isinstance(e, events.ObjectDeleted):
            rows.append(("d", e.worker, e.id, e.reason))
        elif isinstance(e, events.StoreCleared):
            rows.append(("c", e.worker, tuple(e.ids), e.reason))
    return serde.encode(tuple(rows))


def decode_events(data: bytes) -> list[events.Event]:
    """The events ``encode_events`` wrote, as event objects stamped with this process's clock."""
    out: list[events.Event] = []
    for row in serde.decode(data):
        tag, rest = row[0], row[1:]
        if tag == "m":
            kind, sender, receiver, nbytes, text, ids, payload, elapsed = rest
            out.append(events.MessageEvent(kind, sender, receiver, nbytes, text, tuple(ids),
                                           payload, elapsed=elapsed))  # fmt: skip
        elif tag == "s":
            out.append(events.ObjectStored(*rest))
        elif tag == "d":
            out.append(events.ObjectDeleted(*rest))
        elif tag == "c":
            worker_id, ids, reason = rest
            out.append(events.StoreCleared(worker_id, tuple(ids), reason))
    return out


def publish(evs: list[events.Event]) -> None:
    """Republish a worker process's events here, in their order."""
    if events.bus:
        for e in evs:
            events.bus.publish(e)
