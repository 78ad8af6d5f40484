"""Messages between workers: small named tuples whose annotations are their schema.

``serde`` turns them into bytes and checks every decoded field against its annotation.
Each message has a ``kind`` (the word the message log and the panel show) and a
``describe()`` that gives a one-line summary and the object ids it names.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from fedlab.serde import register


def _short(op: str) -> str:
    return op.removeprefix("Tensor.").removeprefix("torch.")


# -- records: values inside messages ----------------------------------------------------
@register(10)
class ObjRef(NamedTuple):
    """An operation's argument: the object ``id`` in the receiver's store."""

    id: int


@register(11)
class PointerRef(NamedTuple):
    """A pointer travelling as a value: the receiver gets its own pointer to the object."""

    location: str
    id_at_location: int
    shape: tuple
    dtype: str
    requires_grad: bool
    is_leaf: bool


@register(12)
class Stored(NamedTuple):
    """A tensor result the receiver keeps under ``id`` (``existing``: an argument's id)."""

    id: int
    shape: tuple
    dtype: str
    requires_grad: bool
    is_leaf: bool
    existing: bool


@register(16)
class Slot(NamedTuple):
    """A plan's value: slot ``index`` (inputs first, then one per step); ``part`` of a tuple."""

    index: int
    part: int


# -- messages ---------------------------------------------------------------------------
@register(1)
class SendObject(NamedTuple):
    """Store ``obj`` for ``holder`` (None: the sender) and reply with its new id."""

    obj: torch.Tensor | PointerRef
    holder: str | None = None
    kind = "send"

    def describe(self) -> tuple[str, tuple[int, ...]]:
        """A one-line summary and the object ids named."""
        o = self.obj
        if type(o) is PointerRef:
            return f"pointer -> {o.location}:{o.id_at_location}", ()
        return f"{str(o.dtype).removeprefix('torch.')}{list(o.shape)}", ()


@register(2)
class RunOp(NamedTuple):
    """Run the allowlisted operation ``op`` on objects of the receiver's store."""

    op: str
    args: tuple
    kwargs: dict
    grad_enabled: bool
    kind = "op"

    def describe(self) -> tuple[str, tuple[int, ...]]:
        """A one-line summary and the object ids named."""
        return _short(self.op), refs((self.args, self.kwargs))


@register(3)
class Fetch(NamedTuple):
    """Hand the object ``id`` over to the sender (``get``): it leaves the store."""

    id: int
    kind = "fetch"

    def describe(self) -> tuple[str, tuple[int, ...]]:
        """A one-line summary and the object ids named."""
        return f"id {self.id}", (self.id,)


@register(4)
class Delete(NamedTuple):
    """Drop the object ``id`` (a pointer to it died); unknown ids are ignored."""

    id: int
    reason: str
    kind = "delete"
    describe = Fetch.describe


@register(5)
class Move(NamedTuple):
    """Send the object ``id`` straight to worker ``dest`` and reply with its id there."""

    id: int
    dest: str
    kind = "move"

    def describe(self) -> tuple[str, tuple[int, ...]]:
        """A one-line summary and the object ids named."""
        return f"id {self.id} -> {self.dest}", (self.id,)


@register(6)
class RemoteGet(NamedTuple):
    """The object ``id`` is a pointer: fetch what it points to into this store."""

    id: int
    kind = "remote_get"
    describe = Fetch.describe


@register(7)
class ClearObjects(NamedTuple):
    """Empty the receiver's store of the objects the sender holds."""

    reason: str
    kind = "clear"

    def describe(self) -> tuple[str, tuple[int, ...]]:
        """A one-line summary and the object ids named."""
        return self.reason, ()


@register(17)
class Forward(NamedTuple):
    """The sender's object ``id`` goes to ``holder`` (it gets a pointer there, on ``dest``).

    How a pointer changes hands: the location itself gives ``dest`` a pointer to its
    object and makes ``dest`` its holder (``dest`` is the location: ``holder`` holds it).
    """

    id: int
    dest: str
    holder: str
    kind = "forward"

    def describe(self) -> tuple[str, tuple[int, ...]]:
        """A one-line summary and the object ids named."""
        return f"id {self.id} -> {self.dest}", (self.id,)


@register(15)
class RunPlan(NamedTuple):
    """Run a plan's ``steps`` in order on the objects ``inputs``; store and reply ``outputs``.

    Each step is a ``RunOp`` (whose ``Slot`` arguments name earlier values) or a constant
    tensor; each step's value takes the next slot, after the inputs.
    """

    name: str
    inputs: tuple
    steps: tuple
    outputs: tuple
    kind = "plan"

    def describe(self) -> tuple[str, tuple[int, ...]]:
        """A one-line summary and the object ids named."""
        ops = sum(1 for s in self.steps if type(s) is RunOp)
        return f"plan {self.name} ({ops} ops)", refs(self.inputs)


@register(8)
class Reply(NamedTuple):
    """A successful answer."""

    value: Any
    kind = "reply"

    def describe(self) -> tuple[str, tuple[int, ...]]:
        """A one-line summary and the object ids named."""
        v = self.value
        if isinstance(v, torch.Tensor):
            return SendObject(v).describe()
        if type(v) is PointerRef:
            return f"pointer -> {v.location}:{v.id_at_location}", ()
        stored = [v] if type(v) is Stored else v if type(v) is tuple else []
        if stored and all(type(s) is Stored for s in stored):
            return "stored " + ", ".join(str(s.id) for s in stored), tuple(s.id for s in stored)
        if type(v) is int:
            return f"id {v}", (v,)
        return "", ()


@register(9)
class ErrorReply(NamedTuple):
    """A failed request: the error's class name and its message."""

    error: str
    message: str
    kind = "error"

    def describe(self) -> tuple[str, tuple[int, ...]]:
        """A one-line summary and the object ids named."""
        return self.error, ()


def refs(value: Any) -> tuple[int, ...]:
    """The ids of every ``ObjRef`` in a (nested) value, in order."""
    t = type(value)
    if t is ObjRef:
        return (value.id,)
    if t is tuple or t is list:
        return tuple(i for v in value for i in refs(v))
    if t is dict:
        return refs(tuple(value.values()))
    return ()
