"""Workers: an object store, and one table of message handlers.

A worker receives bytes, decodes them (``serde``, never pickle), runs the handler for
the message's class, and answers with encoded bytes. Even two workers in one process
talk this way, so the message log shows exactly what a network would carry.

Ownership. Each stored object has a holder: the worker whose pointer refers to it (the
sender of the message that made it). A worker acts on an object, runs an operation on
it, hands it over, moves or deletes it, only when its holder asks. A pointer changes
hands only through its location (``Forward``), at its holder's request. The data a
worker starts with (``data=``) has no holder: any peer may compute on it or fetch it,
none may delete it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch

from fedlab import allowlist, events, guard, planrun, pointer, registry, serde
from fedlab import messages as m
from fedlab.exceptions import (
    FedlabError,
    NotYoursError,
    ObjectNotFoundError,
    PlanError,
    PointerChainError,
    SerdeError,
    kind_of,
    rebuild,
)

if TYPE_CHECKING:
    from fedlab.hook import TorchHook

_REPLIES = (m.Reply, m.ErrorReply)
_PUBLIC = None  # the holder of a worker's own data
# PySyft's VirtualWorker takes these too; fedlab has no use for them.
_PYSYFT_OPTIONS = {"is_client_worker", "log_msgs", "verbose", "auto_add", "message_pending_time"}


class BaseWorker:
    """A party that holds objects and answers messages; see ``VirtualWorker``."""

    max_result_bytes = 256 << 20  # the largest tensor one operation may make here
    max_work = 1 << 33  # about the most multiply-adds one operation may take (seconds)

    def __new__(cls, hook: TorchHook | None = None, id: str = "me", *args: Any, **kwargs: Any):
        # Re-running ``bob = sy.VirtualWorker(hook, id="bob")`` in a notebook gives back
        # the same bob: a second bob under the same id would confuse every pointer.
        existing = registry._workers.get(id)
        if existing is not None and type(existing) is cls:
            return existing
        return super().__new__(cls)

    def __init__(self, hook: TorchHook | None = None, id: str = "me",
                 data: Iterable[torch.Tensor] = (), **kwargs: Any) -> None:  # fmt: skip
        unknown = sorted(set(kwargs) - _PYSYFT_OPTIONS)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments: {unknown}")
        if getattr(self, "_initialised", False):  # (the same worker: data given are added)
            self.add_data(*data)
            return
        if not isinstance(id, str) or not id:
            raise TypeError(f'a worker id must be a non-empty string like "bob", not {id!r}')
        self.hook, self.id = hook, id
        self._store: dict[int, Any] = {}
        self._holders: dict[int, str | None] = {}
        self._counter = itertools.count(1)
        self._known: dict[str, BaseWorker] = {}
        # Only the local worker ``me`` caches ``.grad`` pointers: a middle worker of a
        # chain must store a fresh pointer for each request, or two would share one id.
        self.caches_grads = False
        self.handlers: dict[type, Callable[[str, Any], Any]] = {
            m.SendObject: self._on_send, m.RunOp: self._on_op, m.Fetch: self._on_fetch,
            m.Delete: self._on_delete, m.Move: self._on_move, m.RemoteGet: self._on_remote_get,
            m.Forward: self._on_forward, m.ClearObjects: self._on_clear,
            m.RunPlan: self._on_plan, m.Search: self._on_search,
        }  # fmt: skip
        self._initialised = True
        registry._workers[id] = self
        self._data: list[torch.Tensor] = []
        self.add_data(*data)

    # -- identity -------------------------------------------------------------------
    def new_id(self) -> int:
        """A fresh id in this worker's namespace (for stored objects and owned pointers)."""
        return next(self._counter)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id:{self.id} #objects:{len(self._objects)}>"

    def add_worker(self, worker: BaseWorker) -> BaseWorker:
        """Let this worker know another worker (harmless to repeat); returns this worker."""
        if not isinstance(worker, BaseWorker):
            raise TypeError(f"add_worker takes one worker, not {type(worker).__name__}")
        self._known[worker.id] = worker
        return self

    def add_workers(self, workers: Iterable[BaseWorker]) -> BaseWorker:
        """Let this worker know other workers (a list); returns this worker."""
        for w in workers:
            self.add_worker(w)
        return self

    # -- the store ------------------------------------------------------------------
    @property
    def _objects(self) -> dict[int, Any]:
        """The store: object id -> tensor, or pointer (the course's name for it)."""
        return self._store

    _tensors = _objects  # (PySyft's name for it)

    def objects(self) -> Mapping[int, Any]:
        """The store, read-only: object id -> tensor, or pointer (the middle of a chain)."""
        return MappingProxyType(self._objects)

    def holder(self, obj_id: int) -> str | None:
        """The worker whose pointer refers to object ``obj_id`` (None: this worker's data)."""
        self.get_obj(obj_id)
        return self._holders[obj_id]

    def store(self, obj: Any, holder: str | None, obj_id: int | None = None) -> int:
        """Keep ``obj`` for ``holder`` under a new id (a pointer it owns: the pointer's id)."""
        if obj_id is None:
            owned = type(obj) is pointer.PointerTensor and obj.owner is self
            obj_id = obj.id if owned else self.new_id()
        self._store[obj_id] = obj
        self._holders[obj_id] = holder
        if events.bus:
            events.bus.publish(events.ObjectStored(self.id, obj_id, None, None, obj))
        return obj_id

    def get_obj(self, obj_id: int, asker: str | None = None) -> Any:
        """The stored object ``obj_id`` (for ``asker``: only if it holds it, or it is data)."""
        try:
            obj = self._store[obj_id]
        except (KeyError, TypeError):
            raise ObjectNotFoundError(
                f"{self.id} holds no object with id {obj_id!r}: it was deleted, fetched with "
                ".get(), or moved away. Send the tensor again to get a fresh pointer."
            ) from None
        holder = self._holders.get(obj_id)
        if asker is not None and holder is not _PUBLIC and holder != asker:
            raise NotYoursError(
                f"{asker} asked {self.id} to use object {obj_id}, but {holder} holds the "
                f"pointer to it; a worker acts on an object only for the holder of its pointer"
            )
        return obj

    def pop_obj(self, obj_id: int, reason: str) -> Any:
        """Remove ``obj_id`` from the store and return it."""
        obj = self._store.pop(obj_id)
        self._holders.pop(obj_id, None)
        if events.bus:
            events.bus.publish(events.ObjectDeleted(self.id, obj_id, reason, obj))
        return obj

    def clear_objects(self) -> BaseWorker:
        """Empty this worker's store (its own data stays) and return the worker."""
        self._clear("clear_objects")
        self._store_data()
        return self

    def _clear(self, reason: str, holder: str | None = None) -> None:
        registry.grads_changed()
        ids = tuple(k for k in self._store if holder is None or self._holders.get(k) == holder)
        objs = [self._store.pop(k) for k in ids]
        for k in ids:
            self._holders.pop(k, None)
        if events.bus and ids:
            events.bus.publish(events.StoreCleared(self.id, ids, reason, objs))
        del objs  # pointers among them die here and free what they point to

    def _reset(self) -> None:
        self._clear("reset")
        self._counter = itertools.count(1)
        self._store_data()

    def add_data(self, *tensors: torch.Tensor) -> BaseWorker:
        """Give this worker data of its own, kept across resets (what it has is skipped)."""
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"a worker's data are tensors, not {type(t).__name__}")
            if not any(_same(t, d) for d in self._data):
                self._data.append(t)
                self.store(t, _PUBLIC)
        return self

    def _store_data(self) -> None:
        # A worker's own data takes ids 1, 2, ... and comes back under them after a reset.
        for i, t in enumerate(self._data, 1):
            if i not in self._store:
                self.store(t, _PUBLIC, i)
                self._counter = itertools.count(max(i + 1, next(self._counter)))

    # -- talking --------------------------------------------------------------------
    def send_msg(self, msg: Any, location: BaseWorker) -> Any:
        """Encode ``msg``, deliver it to ``location``, and return the decoded reply's value."""
        __tracebackhide__ = True
        data = serde.encode(self.id, location.id, msg)
        listening = bool(events.bus)
        if listening:
            seq, start = next(events.bus.order), events._now()
        answer = location.recv_msg(data)
        reply = serde.decode(answer, _REPLIES)[2]
        if listening:  # one event for the message and its reply: what a watched loop costs
            events.bus.publish(events.Exchange(msg.kind, self.id, location.id, len(data), msg,
                                               reply, len(answer), start, events._now() - start,
                                               seq, next(events.bus.order)))  # fmt: skip
        if type(reply) is m.ErrorReply:
            raise rebuild(reply.error, reply.message)
        return reply.value

    def recv_msg(self, data: bytes) -> bytes:
        """Handle one encoded message and return the encoded reply (never raises)."""
        sender = ""
        try:
            sender, receiver, msg = serde.decode(data, self.handlers)
            if receiver != self.id:
                raise SerdeError(f"a message for {receiver!r} reached {self.id}")
            reply: Any = m.Reply(self.handlers[type(msg)](sender, msg))
        except FedlabError as e:
            reply = m.ErrorReply(kind_of(e), str(e))
        except Exception as e:  # a torch error on this worker travels back by name
            reply = m.ErrorReply(kind_of(e), f"on {self.id}: {e}")
        try:
            return serde.encode(self.id, sender, reply)
        except SerdeError as e:
            return serde.encode(self.id, sender, m.ErrorReply("SerdeError", str(e)))

    # -- handlers -------------------------------------------------------------------
    def _on_send(self, sender: str, msg: m.SendObject) -> int:
        holder = sender if msg.holder is None else msg.holder
        if type(msg.obj) is m.PointerRef:
            obj_id = self.new_id()
            return self.store(pointer.from_ref(self, msg.obj, obj_id), holder, obj_id)
        if type(msg.obj) is m.PlanDef:  # a plan sent to be kept: checked whole, now
            planrun.callables(msg.obj)
        return self.store(msg.obj, holder)

    def _resolve(self, value: Any, sender: str, used: list) -> Any:
        """An operation's arguments with each ``ObjRef`` replaced by the stored object."""
        t = type(value)
        if t is m.ObjRef:
            obj = self.get_obj(value.id, sender)
            used.append((value.id, obj))
            return obj
        if t is tuple or t is list:
            return t(self._resolve(v, sender, used) for v in value)
        if t is dict:
            return {k: self._resolve(v, sender, used) for k, v in value.items()}
        if isinstance(value, torch.Tensor) or t is m.PointerRef:
            raise SerdeError("operation arguments must be stored objects or plain values")
        return value

    def _on_op(self, sender: str, msg: m.RunOp) -> Any:
        fn = allowlist.lookup(msg.op)
        used: list[tuple[int, Any]] = []
        args = self._resolve(msg.args, sender, used)
        kwargs = self._resolve(msg.kwargs, sender, used)
        if any(type(obj) is pointer.PointerTensor for _, obj in used):  # a chain: pass it on
            result = pointer.remote(msg.op, args, kwargs, msg.grad_enabled)
        else:
            with torch.set_grad_enabled(msg.grad_enabled):
                result = guard.run(fn, msg.op, args, kwargs, [o for _, o in used], self)
        return self.keep(result, used, sender)

    def keep(self, result: Any, used: list, holder: str) -> Any:
        """Store ``result`` for ``holder`` (unless it is an argument) and describe it."""
        if result is None:
            return None
        if isinstance(result, (tuple, list)):
            return tuple(self.keep(r, used, holder) for r in result)
        existing = next((i for i, obj in used if obj is result), None)
        obj_id = existing if existing is not None else self.store(result, holder)
        return stored(obj_id, result, existing is not None)

    def _on_fetch(self, sender: str, msg: m.Fetch) -> Any:
        obj = self.get_obj(msg.id, sender)
        if type(obj) is pointer.PointerTensor:  # a chain's middle: hand the pointer over
            value = obj.as_ref()
            obj.send(m.Forward(obj.id_at_location, obj.location_id, sender))
        else:
            if isinstance(obj, torch.Tensor):
                serde.check_sendable(obj)  # (it must be able to leave before it leaves)
            value = obj
        self._hand_over(msg.id, "get")
        return value

    def _hand_over(self, obj_id: int, reason: str) -> None:
        obj = self.pop_obj(obj_id, reason)
        if type(obj) is pointer.PointerTensor:
            obj.garbage_collect_data = False  # handed over: it must not delete anything

    def _on_delete(self, sender: str, msg: m.Delete) -> None:
        if msg.id in self._store:
            self.get_obj(msg.id, sender)
            if self._holders[msg.id] is _PUBLIC:
                raise NotYoursError(f"{self.id}:{msg.id} is {self.id}'s own data; it stays")
            obj = self.pop_obj(msg.id, msg.reason)
            del obj  # a pointer dies here: the delete cascades along its chain

    def _on_move(self, sender: str, msg: m.Move) -> int:
        obj = self.get_obj(msg.id, sender)
        dest = registry.get_worker(msg.dest)
        if type(obj) is pointer.PointerTensor:  # the location gives dest its object's pointer
            new_id = obj.send(m.Forward(obj.id_at_location, dest.id, sender))
        elif not isinstance(obj, torch.Tensor):
            raise PlanError("a plan stays on the worker it was sent to: send it again instead")
        else:
            serde.check_sendable(obj)
            new_id = self.send_msg(m.SendObject(obj, sender), dest)
        self._hand_over(msg.id, f"move to {dest.id}")
        return new_id

    def _on_forward(self, sender: str, msg: m.Forward) -> int:
        obj = self.get_obj(msg.id, sender)
        public = self._holders[msg.id] is _PUBLIC
        if msg.dest == self.id:  # the pointer comes back to its location: the holder changes
            new_holder, new_id = msg.holder, msg.id
        else:
            ref = _ref(self.id, msg.id, obj)
            new_id = self.send_msg(m.SendObject(ref, msg.holder), registry.get_worker(msg.dest))
            new_holder = msg.dest
        if not public:
            self._holders[msg.id] = new_holder
        return new_id

    def _on_remote_get(self, sender: str, msg: m.RemoteGet) -> m.Stored:
        obj = self.get_obj(msg.id, sender)
        if type(obj) is not pointer.PointerTensor:
            raise PointerChainError(
                f"remote_get() needs a pointer to a pointer, but {self.id}:{msg.id} is the "
                f"tensor itself. Use .get() to bring it to you, or .move(worker) to send it on."
            )
        value = pointer.fetch(obj)
        self._store[msg.id] = value  # (the same id and holder: the pointer now points here)
        if events.bus:
            events.bus.publish(events.ObjectStored(self.id, msg.id, None, None, value))
        return stored(msg.id, value, True)

    def _on_search(self, sender: str, msg: m.Search) -> tuple:
        if {type(t) for t in msg.tags} - {str}:
            raise SerdeError("a search names its tags as strings")
        mine = [(k, o) for k, o in self._store.items() if self._holders.get(k) in (sender, None)]
        return tuple(_ref(self.id, k, o) for k, o in mine if isinstance(o, torch.Tensor)
                     and set(msg.tags) <= set(o.__dict__.get("tags") or ()))  # fmt: skip

    def _on_clear(self, sender: str, msg: m.ClearObjects) -> None:
        self._clear(msg.reason, holder=sender)

    def _on_plan(self, sender: str, msg: m.RunPlan) -> Any:
        plan = msg.plan
        if type(plan) is m.ObjRef:  # a plan sent here before
            plan = self.get_obj(plan.id, sender)
            if type(plan) is not m.PlanDef:
                raise PlanError(f"{self.id}:{msg.plan.id} is not a plan")
        refs = [*msg.inputs, *(r for r in plan.state if type(r) is m.ObjRef)]
        if not all(type(r) is m.ObjRef for r in msg.inputs):
            raise SerdeError("a plan's inputs must be stored objects")
        used = [(r.id, self.get_obj(r.id, sender)) for r in refs]
        stored = iter(obj for _, obj in used[len(msg.inputs) :])
        state = [next(stored) if type(r) is m.ObjRef else r for r in plan.state]
        results = planrun.run_on(self, plan, [obj for _, obj in used[: len(msg.inputs)]] + state)
        return tuple(self.keep(r, used, sender) for r in results)


def stored(obj_id: int, t: Any, existing: bool) -> m.Stored:
    """What the caller needs to make a pointer to the stored tensor (or pointer) ``t``."""
    return m.Stored(obj_id, tuple(t.shape), serde.DTYPE_NAMES[t.dtype], t.requires_grad,
                    t.is_leaf, existing)  # fmt: skip


def _ref(location: str, obj_id: int, t: Any) -> m.PointerRef:
    """A pointer to the stored ``t`` (a tensor, or a pointer itself), as it travels."""
    own = getattr(t, "__dict__", {})
    return m.PointerRef(location, obj_id, *stored(obj_id, t, True)[1:5], own.get("tags"),
                        own.get("description"))  # fmt: skip


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same data: values, dtype, shape and tags."""
    same_kind = a.dtype == b.dtype and a.shape == b.shape
    tags = a.__dict__.get("tags") == b.__dict__.get("tags")
    return a is b or (same_kind and tags and torch.equal(a, b))


class VirtualWorker(BaseWorker):
    """A worker in this Python process: the default, and the reference for all others."""
