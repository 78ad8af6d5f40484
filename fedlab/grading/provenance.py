"""Data provenance on workers: which private data every stored object derives from.

A pure, event-driven tracker: it reads the message log (requests and their replies, in
order) and nothing else. Each operation names its inputs' ids and its reply the stored
result's id; a plan names its inputs and outputs; fetch, move and remote_get name ids.
So every object on a worker gets the set of *origins* it derives from: a private data
set's name (``"bob's data"``) when ``me`` sent those exact values to a worker, or
``sent@N`` for anything else ``me`` sent in message ``N``.

The rules over-approximate, never under-approximate (a property test checks that any
object whose values change when a private tensor changes carries its name):

* an operation's results derive from all its inputs; an in-place operation (or one that
  returns nothing) changes all its inputs with all their origins;
* a view or an attribute read (``w.grad``, ``w.data``, ``x.T``, ``x[0]``...) shares
  memory with its input: a later in-place change of either reaches both;
* ``backward`` changes the gradient of every tensor the loss was computed from, so each
  of them (a tensor and its gradient count as one) takes the loss's origins;
* a plan's outputs and all its inputs take the origins of all its inputs;
* a move or a remote_get carries an object's origins and history to its new worker.

Every object leaving a worker (a fetch's reply, a move, a store read) is a ``Transfer``,
kept with its values: the privacy checks decide which of them were allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from fedlab import messages as m
from fedlab.grading.channel import StoreRead, plan_steps
from fedlab.grading.planflow import NORMS, PlanFlow, in_place, is_view, short

Key = tuple[str, int]  # (worker, object id)


@dataclass
class Step:
    """One thing that happened to an object: its birth, a change, a move..."""

    index: int  # the request's index in the log
    what: str  # born-sent, born-op, born-plan, op, plan, backward, moved-in, remote-get...
    op: str = ""  # the operation or plan name
    inputs: tuple[Key, ...] = ()
    trainings: int = 0  # for a plan: how many backward steps it ran


@dataclass
class Obj:
    """What the tracker knows of one stored object."""

    worker: str
    id: int
    origins: set[str]
    history: list[Step]
    sent: torch.Tensor | None = None  # the values me sent, for an object born by a send
    parents: tuple[Key, ...] = ()
    points_to: Key | None = None
    grad: bool = True  # requires grad (only those take a gradient in backward)

    @property
    def born(self) -> Step:
        """How the object (or the object it was moved from) came to be."""
        return self.history[0]

    @property
    def private(self) -> set[str]:
        """The names of the private data it derives from."""
        return {o for o in self.origins if not o.startswith("sent@")}


@dataclass
class Transfer:
    """An object left ``frm`` for ``to`` (a fetch's reply, a move, a store read)."""

    index: int  # the index of the message that carried it
    frm: str
    to: str
    how: str  # fetch, move, store read, send
    obj: Obj
    value: torch.Tensor | None = field(default=None, repr=False)


@dataclass
class _Open:
    index: int
    sender: str
    receiver: str
    msg: Any
    fetched: Obj | None = None  # a nested fetch's object (remote_get)


class Tracker:
    """Follows the message log; ``private(worker, tensor)`` names data that is private."""

    def __init__(self, private: Callable[[str, torch.Tensor], str | None] | None = None) -> None:
        self.private = private or (lambda worker, t: None)
        self.objects: dict[Key, Obj] = {}
        self.transfers: list[Transfer] = []
        self.gone: list[Obj] = []  # objects fetched, moved away, deleted or cleared
        self.kept: dict[Key, m.PlanDef] = {}  # plans kept on workers (plan.send)
        self._group: dict[Key, set[Key]] = {}  # objects that may share memory
        self._parents: dict[Key, tuple[Key, ...]] = {}  # kept after an object is deleted
        self._open: list[_Open] = []

    # -- feeding --------------------------------------------------------------------
    def request(self, index: int, sender: str, receiver: str, msg: Any) -> None:
        """A request left ``sender`` for ``receiver``; ``reply`` follows (nested ones first)."""
        self._open.append(_Open(index, sender, receiver, msg))

    def reply(self, index: int, value: Any, error: bool = False) -> None:
        """The reply to the innermost open request (``error``: it failed and changed nothing)."""
        if not self._open:
            return
        req = self._open.pop()
        if error:
            return
        handler = _HANDLERS.get(type(req.msg))
        if handler is not None:
            handler(self, req, value, index)

    # -- reading --------------------------------------------------------------------
    def get(self, worker: str, obj_id: int) -> Obj | None:
        """The live object ``obj_id`` on ``worker`` (None if unknown or gone)."""
        return self.objects.get((worker, obj_id))

    def origins(self, key: Key) -> set[str]:
        """The origins of the object at ``key`` (a pointer's are its target's)."""
        obj = self.objects.get(key)
        if obj is None:
            return set()
        if obj.points_to is not None and obj.points_to in self.objects:
            return obj.origins | self.origins(obj.points_to)
        return obj.origins

    def on(self, worker: str) -> Iterator[Obj]:
        """The live objects of ``worker``."""
        return (o for (w, _), o in self.objects.items() if w == worker)

    # -- the rules ------------------------------------------------------------------
    def _new(self, key: Key, origins: set[str], step: Step, **kw: Any) -> Obj:
        self._drop(key)
        obj = Obj(key[0], key[1], set(origins), [step], **kw)
        self.objects[key] = obj
        self._parents[key] = obj.parents + ((obj.points_to,) if obj.points_to else ())
        self._group[key] = {key}
        return obj

    def _drop(self, key: Key) -> Obj | None:
        obj = self.objects.pop(key, None)
        group = self._group.pop(key, None)
        if group is not None:
            group.discard(key)
        if obj is not None:
            self.gone.append(obj)
        return obj

    def _alias(self, a: Key, b: Key) -> None:
        ga, gb = self._group.get(a), self._group.get(b)
        if ga is None or gb is None or ga is gb:
            return
        ga |= gb
        for k in gb:
            self._group[k] = ga

    def _change(self, keys: tuple[Key, ...], origins: set[str], step: Step) -> None:
        """The objects ``keys`` (and whatever shares their memory) changed in place."""
        done: set[Key] = set()
        for key in keys:
            for k in self._group.get(key, {key}):
                obj = self.objects.get(k)
                if obj is None or k in done:
                    continue
                done.add(k)
                obj.origins |= origins
                obj.history.append(step)

    def _with_grad(self, keys: tuple[Key, ...]) -> tuple[Key, ...]:
        """The objects among ``keys`` that take a gradient (unknown ones are kept)."""
        return tuple(k for k in keys if k not in self.objects or self.objects[k].grad)

    def _ancestors(self, keys: tuple[Key, ...]) -> tuple[Key, ...]:
        seen: dict[Key, None] = {}
        todo = list(keys)
        while todo:
            k = todo.pop()
            if k in seen:
                continue
            seen[k] = None
            todo.extend(self._parents.get(k, ()))
        return tuple(seen)

    def _union(self, keys: tuple[Key, ...]) -> set[str]:
        out: set[str] = set()
        for k in keys:
            out |= self.origins(k)
        return out

    def _on_send(self, req: _Open, value: Any, index: int) -> None:
        if not isinstance(value, int):
            return
        key, obj = (req.receiver, value), req.msg.obj
        if isinstance(obj, m.PlanDef):  # a plan kept there: data of nobody's, steps to read
            self.kept[key] = obj
            self._new(key, set(), Step(req.index, "born-plan-kept"))
            return
        if isinstance(obj, m.PointerRef):
            target = (obj.location, obj.id_at_location)
            self._new(key, set(), Step(req.index, "born-pointer"), points_to=target,
                      grad=bool(obj.requires_grad))  # fmt: skip
            return
        if req.sender == "me" and isinstance(obj, torch.Tensor):
            name = self.private(req.receiver, obj)
            origins = {name} if name else {f"sent@{req.index}"}
            sent = obj.detach().clone()
            self._new(key, origins, Step(req.index, "born-sent"), sent=sent,
                      grad=bool(obj.requires_grad))  # fmt: skip
            return
        # A worker sent it: the object of the move it is carrying out, if any.
        source = self._moving(req.sender)
        if source is not None:
            new = self._new(key, set(source.origins), Step(req.index, "moved-in"))
            new.history = [*source.history, Step(req.index, "moved-in")]
            new.sent, new.grad = source.sent, source.grad
            self.transfers.append(Transfer(req.index, req.sender, req.receiver, "move", source,
                                           _tensor(obj)))  # fmt: skip
            return
        everything = set().union(*(o.origins for o in self.on(req.sender)))
        self._new(key, everything, Step(req.index, "born-sent-by-worker"))

    def _moving(self, worker: str) -> Obj | None:
        for req in reversed(self._open):
            if isinstance(req.msg, m.Move) and req.receiver == worker:
                return self.objects.get((worker, req.msg.id))
        return None

    def _on_op(self, req: _Open, value: Any, index: int) -> None:
        op = str(req.msg.op)
        args = req.msg.args if isinstance(req.msg.args, (tuple, list)) else ()
        inputs = tuple((req.receiver, r.id) for r in _refs((req.msg.args, req.msg.kwargs)))
        origins = self._union(inputs)
        step = Step(req.index, "op", short(op), inputs)
        name = short(op)
        if name == "backward":
            grads = self._with_grad(self._ancestors(inputs))
            self._change(grads, origins, Step(req.index, "backward", "", inputs))
        elif name in NORMS:
            self._change(inputs, origins, step)  # running statistics change in place
        elif in_place(op):
            target = tuple((req.receiver, r.id) for r in _refs(args[:1]))
            self._change(target, origins, step)
        for s in _stored(value):
            key = (req.receiver, s.id)
            if s.existing and key in self.objects:
                self._change((key,), origins, step)
                self.objects[key].grad = bool(s.requires_grad)
                continue
            self._new(key, origins, Step(req.index, "born-op", name, inputs), parents=inputs,
                      grad=bool(s.requires_grad))  # fmt: skip
            if inputs and is_view(op):
                self._alias(key, inputs[0])

    def _on_plan(self, req: _Open, value: Any, index: int) -> None:
        msg = req.msg
        kept = {i: p for (w, i), p in self.kept.items() if w == req.receiver}
        plan = msg.plan if isinstance(msg.plan, m.PlanDef) else kept.get(msg.plan.id)
        state = tuple(plan.state) if plan is not None else ()
        # Its inputs, then its state: stored objects (a kept plan's), or values sent with it.
        slots = [(req.receiver, r.id) if isinstance(r, m.ObjRef) else None
                 for r in (*_refs(msg.inputs), *state)]  # fmt: skip
        inputs = tuple(k for k in slots if k is not None)
        steps = plan_steps(msg, kept)
        flow = PlanFlow(
            [self.origins(k) if k else set() for k in slots],
            [(self.objects[k].grad if k in self.objects else True) if k else True for k in slots],
        )
        for s in steps:
            flow.step(s)
        trainings = sum(1 for s in steps if not isinstance(s, torch.Tensor)
                        and short(str(s.op)) == "backward")  # fmt: skip
        name = plan.name if plan is not None else "plan"
        step = Step(req.index, "plan", name, inputs, trainings)
        for k, key in enumerate(slots):
            if key is not None and flow.changed[k]:
                self._change((key,), flow.origins[k], step)
        outs = [flow.origins_of(o) for o in (plan.outputs if plan is not None else ())]
        for n, s in enumerate(_stored(value)):
            key = (req.receiver, s.id)
            if s.existing and key in self.objects:
                continue
            origins = outs[n] if n < len(outs) else self._union(inputs)
            self._new(key, origins, Step(req.index, "born-plan", name, inputs),
                      parents=inputs, grad=bool(s.requires_grad))  # fmt: skip

    def _on_fetch(self, req: _Open, value: Any, index: int) -> None:
        key = (req.receiver, req.msg.id)
        obj = self.objects.get(key)
        if obj is None:
            obj = Obj(key[0], key[1], set(), [Step(req.index, "unknown")])
        elif obj.points_to is not None:
            obj.origins |= self.origins(obj.points_to)
        self.transfers.append(Transfer(index, req.receiver, req.sender, "fetch", obj,
                                       _tensor(value)))  # fmt: skip
        self._drop(key)
        parent = self._open[-1] if self._open else None
        if parent is not None and isinstance(parent.msg, m.RemoteGet):
            parent.fetched = obj

    def _on_move(self, req: _Open, value: Any, index: int) -> None:
        self._drop((req.receiver, req.msg.id))

    def _on_remote_get(self, req: _Open, value: Any, index: int) -> None:
        key = (req.receiver, req.msg.id)
        source = req.fetched
        if source is None:
            return
        new = self._new(key, set(source.origins), Step(req.index, "remote-get"))
        new.history = [*source.history, Step(req.index, "remote-get")]
        new.sent = source.sent

    def _on_delete(self, req: _Open, value: Any, index: int) -> None:
        self._drop((req.receiver, req.msg.id))

    def _on_clear(self, req: _Open, value: Any, index: int) -> None:
        for key in [k for k in self.objects if k[0] == req.receiver]:
            self._drop(key)

    def _on_store_read(self, req: _Open, value: Any, index: int) -> None:
        values = value if isinstance(value, dict) else {}
        for obj in list(self.on(req.receiver)):
            self.transfers.append(Transfer(index, req.receiver, req.sender, "store read", obj,
                                           _tensor(values.get(obj.id))))  # fmt: skip


_HANDLERS: dict[type, Callable[[Tracker, _Open, Any, int], None]] = {
    m.SendObject: Tracker._on_send,
    m.RunOp: Tracker._on_op,
    m.RunPlan: Tracker._on_plan,
    m.Fetch: Tracker._on_fetch,
    m.Move: Tracker._on_move,
    m.RemoteGet: Tracker._on_remote_get,
    m.Delete: Tracker._on_delete,
    m.ClearObjects: Tracker._on_clear,
    StoreRead: Tracker._on_store_read,
}


def _tensor(value: Any) -> torch.Tensor | None:
    return value.detach().clone() if isinstance(value, torch.Tensor) else None


def _refs(value: Any) -> list[m.ObjRef]:
    if isinstance(value, m.ObjRef):
        return [value]
    if isinstance(value, (tuple, list)):
        return [r for v in value for r in _refs(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    return []


def _stored(value: Any) -> list[m.Stored]:
    if isinstance(value, m.Stored):
        return [value]
    if isinstance(value, (tuple, list)):
        return [s for v in value for s in _stored(v)]
    return []
