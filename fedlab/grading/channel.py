"""The grader's one coupling to fedlab's wire format, and the frames its sockets carry.

Everything the grader knows about message bytes is here, so that a new codec needs a change
in this file only. It uses these names of the core: ``fedlab.serde.encode_value`` and
``decode_value`` (any value), ``fedlab.serde.decode`` (a message: its sender, receiver and
the message), a message's ``kind`` and ``fedlab.log.describe`` (its summary and ids),
and ``RunPlan.plan`` (a ``PlanDef`` with its steps, or a reference to a plan kept there).

A frame on a socket is an 8-byte length and that many bytes of ``serde``; nothing on
these sockets is ever unpickled.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any

from fedlab import log, serde
from fedlab import messages as m

_LEN = struct.Struct("<Q")
MAX_FRAME = 1 << 30  # bytes: a frame claiming more is refused before anything is read


@dataclass(frozen=True)
class StoreRead:
    """``bob._objects`` read from a notebook whose workers live elsewhere: a message too."""

    worker: str


def encode(value: Any) -> bytes:
    """``value`` (plain data, tensors, messages) as bytes, with fedlab's safe codec."""
    return bytes(serde.encode_value(value))


def decode(data: bytes) -> Any:
    """The value ``encode`` wrote; malformed bytes raise ``fedlab.exceptions.SerdeError``."""
    return serde.decode_value(data)


def request(data: bytes) -> tuple[str, str, Any]:
    """A request's (sender it claims, receiver, message); raises on malformed bytes."""
    return serde.decode(data)


def reply(sender: str, msg: Any) -> bytes:
    """A reply (``Reply`` or ``ErrorReply``) from ``sender`` to the notebook, as bytes."""
    return bytes(serde.encode(sender, "me", msg))


def kind(msg: Any) -> str:
    """A message's kind as the log names it (``op``, ``fetch``, ``reply``...)."""
    if isinstance(msg, StoreRead):
        return "store read"
    return getattr(msg, "kind", None) or type(msg).__name__


def describe(msg: Any) -> tuple[str, tuple[int, ...]]:
    """A message's one-line summary and the ids it names."""
    if isinstance(msg, StoreRead):
        return f"every object on {msg.worker}", ()
    return log.describe(msg)


def plan_steps(msg: Any, kept: dict | None = None) -> list[Any]:
    """A ``RunPlan`` message's steps in order: ``RunOp``s and constant tensors.

    A plan kept on the worker (``plan.send``) is looked up in ``kept``: (worker, id) -> plan.
    """
    import torch

    plan = msg.plan
    if type(plan) is m.ObjRef:
        plan = (kept or {}).get(plan.id)
    if type(plan) is not m.PlanDef:
        return []
    return [s for s in plan.steps if isinstance(s, (m.RunOp, torch.Tensor))]


# -- frames on a socket ---------------------------------------------------------------------
def send_frame(sock: socket.socket, payload: bytes) -> None:
    """Send one frame."""
    sock.sendall(_LEN.pack(len(payload)) + payload)


def _exactly(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> bytes:
    """Receive one frame (``ConnectionError`` when the other side is gone)."""
    (n,) = _LEN.unpack(_exactly(sock, _LEN.size))
    if n > MAX_FRAME:
        raise ConnectionError(f"a frame of {n} bytes is more than the grader accepts")
    return _exactly(sock, n)


def call(sock: socket.socket, value: Any) -> Any:
    """Send ``value`` encoded and return the decoded answer."""
    send_frame(sock, encode(value))
    return decode(recv_frame(sock))
