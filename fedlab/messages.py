"""Messages between workers: small dataclasses that ``serde`` turns into bytes.

They are slotted and not frozen: a frozen dataclass's ``__init__`` costs three times
as much, and a message is built on every remote operation. Treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedlab.serde import install_compact, register


@register(1)
@dataclass(slots=True)
class SendObject:
    """Store ``obj`` (a tensor, or a ``PointerRef``) and reply with its new id."""

    obj: Any


@register(2)
@dataclass(slots=True)
class RunOp:
    """Run the allowlisted operation ``op`` on objects of the receiver's store."""

    op: str
    args: tuple
    kwargs: dict
    grad_enabled: bool


@register(3)
@dataclass(slots=True)
class Fetch:
    """Hand the object ``id`` over to the sender (``get``): it leaves the store."""

    id: int


@register(4)
@dataclass(slots=True)
class Delete:
    """Drop the object ``id`` (a pointer to it died); unknown ids are ignored."""

    id: int
    reason: str


@register(5)
@dataclass(slots=True)
class Move:
    """Send the object ``id`` straight to worker ``dest`` and reply with its id there."""

    id: int
    dest: str


@register(6)
@dataclass(slots=True)
class RemoteGet:
    """The object ``id`` is a pointer: fetch what it points to into this store."""

    id: int


@register(7)
@dataclass(slots=True)
class ClearObjects:
    """Empty the receiver's store."""

    reason: str


@register(8)
@dataclass(slots=True)
class Reply:
    """A successful answer."""

    value: Any


@register(9)
@dataclass(slots=True)
class ErrorReply:
    """A failed request: the error's class name and its message."""

    kind: str
    message: str


@register(10)
@dataclass(slots=True)
class ObjRef:
    """An operation argument: the object ``id`` in the receiver's store."""

    id: int


@register(11)
@dataclass(slots=True)
class PointerRef:
    """A pointer travelling as a value: the receiver gets its own pointer to the same object."""

    location: str
    id_at_location: int
    shape: tuple
    dtype: str
    requires_grad: bool
    is_leaf: bool


@register(12)
@dataclass(slots=True)
class Stored:
    """An operation's tensor result, kept by the receiver under ``id``."""

    id: int
    shape: tuple
    dtype: str
    requires_grad: bool
    is_leaf: bool
    existing: bool


@register(13)
@dataclass(slots=True)
class Envelope:
    """A message with its sender and receiver, as it travels."""

    sender: str
    receiver: str
    msg: Any


@register(14)
@dataclass(slots=True)
class ListObjects:
    """Describe every object in the receiver's store (for views of remote processes)."""


@register(15)
@dataclass(slots=True)
class RunPlan:
    """Run a plan's ``steps`` in order on the objects ``inputs``; store and reply ``outputs``.

    ``steps`` is an encoded tuple, each a ``RunOp`` (whose ``Slot`` arguments name earlier
    values) or a constant tensor; each step's value takes the next slot, after the inputs.
    ``mutates`` lists the inputs the plan changes in place, restored if a step fails.
    """

    name: str
    inputs: tuple
    steps: bytes
    outputs: tuple
    mutates: tuple


@register(16)
@dataclass(slots=True)
class Slot:
    """A plan's value: slot ``index`` (inputs first, then one per step); ``part`` of a tuple."""

    index: int
    part: int


KINDS = {
    SendObject: "send",
    RunOp: "op",
    Fetch: "fetch",
    Delete: "delete",
    Move: "move",
    RemoteGet: "remote_get",
    ClearObjects: "clear",
    ListObjects: "list",
    RunPlan: "plan",
    Reply: "reply",
    ErrorReply: "error",
}

install_compact(
    ObjRef=ObjRef, Stored=Stored, Envelope=Envelope, RunOp=RunOp, Reply=Reply, Delete=Delete
)
