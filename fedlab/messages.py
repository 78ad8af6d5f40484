"""Messages between workers: small named tuples whose annotations are their schema.

``serde`` turns them into bytes and checks every decoded field against its annotation.
Each message has a ``kind``, the word the message log and the panel show
(``fedlab.log.describe`` gives its one-line summary).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from fedlab.serde import register


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
    tags: list | None = None
    description: str | None = None


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


@register(18)
class PlanDef(NamedTuple):
    """A plan as it travels: ``steps`` on ``arity`` inputs (the caller's, then ``state``).

    Each step is a ``RunOp`` (whose ``Slot`` arguments name earlier values) or a constant
    tensor; each step's value takes the next slot, after the inputs. ``state`` holds the
    plan's own tensors: values, or ``ObjRef``s to tensors stored beside a sent plan.
    """

    name: str
    steps: tuple
    outputs: tuple
    state: tuple
    arity: int


# -- messages ---------------------------------------------------------------------------
@register(1)
class SendObject(NamedTuple):
    """Store ``obj`` for ``holder`` (None: the sender) and reply with its new id."""

    obj: torch.Tensor | PointerRef | PlanDef
    holder: str | None = None
    kind = "send"


@register(2)
class RunOp(NamedTuple):
    """Run the allowlisted operation ``op`` on objects of the receiver's store."""

    op: str
    args: tuple
    kwargs: dict
    grad_enabled: bool
    kind = "op"


@register(3)
class Fetch(NamedTuple):
    """Hand the object ``id`` over to the sender (``get``): it leaves the store."""

    id: int
    kind = "fetch"


@register(4)
class Delete(NamedTuple):
    """Drop the object ``id`` (a pointer to it died); unknown ids are ignored."""

    id: int
    reason: str
    kind = "delete"


@register(5)
class Move(NamedTuple):
    """Send the object ``id`` straight to worker ``dest`` and reply with its id there."""

    id: int
    dest: str
    kind = "move"


@register(6)
class RemoteGet(NamedTuple):
    """The object ``id`` is a pointer: fetch what it points to into this store."""

    id: int
    kind = "remote_get"


@register(7)
class ClearObjects(NamedTuple):
    """Empty the receiver's store of the objects the sender holds."""

    reason: str
    kind = "clear"


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


@register(19)
class Search(NamedTuple):
    """Pointers to the receiver's tensors that carry every one of ``tags`` (and that the
    sender may use)."""

    tags: tuple
    kind = "search"


@register(15)
class RunPlan(NamedTuple):
    """Run ``plan`` (itself, or a plan the receiver stores) on the objects ``inputs``."""

    plan: PlanDef | ObjRef
    inputs: tuple
    kind = "plan"


@register(8)
class Reply(NamedTuple):
    """A successful answer."""

    value: Any
    kind = "reply"


@register(9)
class ErrorReply(NamedTuple):
    """A failed request: the error's class name and its message."""

    error: str
    message: str
    kind = "error"
