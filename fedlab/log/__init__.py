"""The message log: each exchange as the two messages it was, in the order they travelled.

A worker publishes one ``fedlab.events.Exchange`` per message it sends, once the reply is
back, so the exchanges nested in it (bob sending alice the data of a ``move``) come
first. ``messages(events)`` gives the messages as they went on the wire, requests and
replies, each a ``MessageEvent`` with a one-line summary (``describe``). Traces, the
grader's log and the events of worker processes are made of these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from fedlab import events
from fedlab.events import Exchange
from fedlab.messages import (
    ClearObjects,
    Delete,
    ErrorReply,
    Fetch,
    Forward,
    Move,
    ObjRef,
    PlanDef,
    PointerRef,
    RemoteGet,
    Reply,
    RunOp,
    RunPlan,
    Search,
    SendObject,
    Stored,
)


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One message (``kind``: ``send``, ``op``, ``reply``...): an exchange is two of them.

    ``summary`` is one line, ``ids`` the object ids it names, ``payload`` the message
    itself. ``time`` is when it left (``time.perf_counter``); a reply's ``elapsed`` is the
    round trip in seconds.
    """

    kind: str
    sender: str
    receiver: str
    nbytes: int
    summary: str
    ids: tuple[int, ...]
    payload: Any = field(default=None, compare=False, repr=False)
    time: float = field(default=0.0, compare=False, repr=False)
    elapsed: float | None = field(default=None, compare=False, repr=False)


def rows(e: Exchange) -> tuple[MessageEvent, MessageEvent]:
    """The request and the reply of exchange ``e``, described (once: kept in ``e.rows``)."""
    if e.rows is None:
        e.rows = (
            MessageEvent(e.kind, e.sender, e.receiver, e.nbytes, *describe(e.payload),
                         e.payload, e.time),
            MessageEvent(e.reply.kind, e.receiver, e.sender, e.reply_nbytes,
                         *describe(e.reply), e.reply, e.time + e.elapsed, e.elapsed),
        )  # fmt: skip
    return e.rows


def messages(events: Iterable[Any]) -> list[MessageEvent]:
    """The messages of the exchanges among ``events``, requests and replies, in wire order."""
    numbered = [(n, r) for e in events if type(e) is Exchange
                for n, r in zip((e.seq, e.end), rows(e))]  # fmt: skip
    return [r for _, r in sorted(numbered, key=lambda nr: nr[0])]


def exchange(request: MessageEvent, reply: MessageEvent, seq: int, end: int) -> Exchange:
    """The exchange of two messages described already (by a worker process, the grader)."""
    return Exchange(request.kind, request.sender, request.receiver, request.nbytes,
                    request.payload, reply.payload, reply.nbytes, request.time,
                    reply.time - request.time, seq, end, (request, reply))  # fmt: skip


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


def _short(op: str) -> str:
    return op.removeprefix("Tensor.").removeprefix("torch.")


def _what(obj: Any) -> str:
    if type(obj) is PointerRef:
        return f"pointer -> {obj.location}:{obj.id_at_location}"
    if type(obj) is PlanDef:
        return events.describe(obj)[1]  # (as the panel lists a plan kept in a store)
    return f"{str(obj.dtype).removeprefix('torch.')}{list(obj.shape)}"


def _reply(v: Any) -> tuple[str, tuple[int, ...]]:
    stored = [v] if type(v) is Stored else v if type(v) is tuple else []
    if stored and all(type(s) is Stored for s in stored):
        return "stored " + ", ".join(str(s.id) for s in stored), tuple(s.id for s in stored)
    if type(v) is int:
        return f"id {v}", (v,)
    return (_what(v), ()) if isinstance(v, torch.Tensor) or type(v) is PointerRef else ("", ())


def _plan(plan: Any) -> str:
    return _what(plan) if type(plan) is PlanDef else f"plan {plan.id}"


_DESCRIBE = {
    SendObject: lambda s: (_what(s.obj), ()),
    RunOp: lambda s: (_short(s.op), refs((s.args, s.kwargs))),
    Fetch: lambda s: (f"id {s.id}", (s.id,)),
    Delete: lambda s: (f"id {s.id}", (s.id,)),
    RemoteGet: lambda s: (f"id {s.id}", (s.id,)),
    Move: lambda s: (f"id {s.id} -> {s.dest}", (s.id,)),
    Forward: lambda s: (f"id {s.id} -> {s.dest}", (s.id,)),
    ClearObjects: lambda s: (s.reason, ()),
    Search: lambda s: (" ".join(map(str, s.tags)), ()),
    RunPlan: lambda s: (_plan(s.plan), refs((s.plan, s.inputs))),
    PlanDef: lambda s: (_what(s), refs(s.state)),
    Reply: lambda s: _reply(s.value),
    ErrorReply: lambda s: (s.error, ()),
}


def describe(msg: Any) -> tuple[str, tuple[int, ...]]:
    """A message's one-line summary (``add``, ``float32[2, 3]``) and the object ids it names."""
    said = _DESCRIBE.get(type(msg))
    return said(msg) if said is not None else ("", ())
