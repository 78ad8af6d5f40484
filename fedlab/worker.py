"""Workers: an object store, and one table of message handlers.

A worker receives bytes, decodes them (``serde``, never pickle), runs the handler
for the message's class, and answers with encoded bytes. Even two workers in one
process talk this way, so the message log shows exactly what a network would carry.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch

from fedlab import allowlist, events, serde
from fedlab import messages as m
from fedlab.exceptions import (
    FedlabError,
    ObjectNotFoundError,
    PointerChainError,
    RemoteValueError,
    SerdeError,
    WorkerNotFoundError,
    rebuild,
)
from fedlab.summaries import describe as describe

if TYPE_CHECKING:
    from fedlab.hook import TorchHook

# Every worker of this process, by id. Other transports (Ray) install a resolver for
# ids that live elsewhere.
_workers: dict[str, BaseWorker] = {}
_resolvers: list[Callable[[str], BaseWorker | None]] = []
# Bumped by ``reset()``: pointers made before a reset never delete anything after it.
generation = itertools.count(1)
current_generation = next(generation)
# Bumped whenever an operation that may change some tensor's ``.grad`` runs anywhere
# (and on clear/reset): until then a pointer answers ``.grad`` from its cache.
_grad_epochs = itertools.count(1)
grad_epoch = next(_grad_epochs)


def grads_changed() -> None:
    """Forget every cached ``.grad`` pointer (some gradient may have changed)."""
    global grad_epoch
    grad_epoch = next(_grad_epochs)


def get_worker(worker_id: str) -> BaseWorker:
    """The worker with this id, in this process or reachable through a transport."""
    w = _workers.get(worker_id)
    if w is None:
        for resolve in _resolvers:
            w = resolve(worker_id)
            if w is not None:
                break
        else:
            known = ", ".join(sorted(_workers)) or "none"
            raise WorkerNotFoundError(
                f"there is no worker called {worker_id!r} (known workers: {known}). "
                f'Create it first, e.g. sy.VirtualWorker(hook, id="{worker_id}").'
            )
    return w


def all_workers() -> list[BaseWorker]:
    """The workers of this process, in creation order."""
    return list(_workers.values())


_MISSING = object()
_DONE_REPLY = m.Reply(None)
_DONE = serde.encode(_DONE_REPLY)


class BaseWorker:
    """A party that holds objects and answers messages; see ``VirtualWorker``."""

    def __new__(cls, hook: TorchHook | None = None, id: str = "me", **kwargs: Any):
        # Re-running ``bob = sy.VirtualWorker(hook, id="bob")`` in a notebook gives back
        # the same bob: a second bob under the same id would confuse every pointer.
        existing = _workers.get(id)
        if existing is not None and type(existing) is cls:
            return existing
        return super().__new__(cls)

    def __init__(self, hook: TorchHook | None = None, id: str = "me", **kwargs: Any) -> None:
        if getattr(self, "_initialised", False):
            return
        if not isinstance(id, str) or not id:
            raise TypeError(f'a worker id must be a non-empty string like "bob", not {id!r}')
        self.hook = hook
        self.id = id
        self._objects: dict[int, Any] = {}
        self._counter = itertools.count(1)
        self._known: dict[str, BaseWorker] = {}
        # Only the local worker ``me`` caches ``.grad`` pointers: a middle worker of a
        # chain must store a fresh pointer for each request, or two would share one id.
        self.caches_grads = False
        self.handlers: dict[type, Callable[[str, Any], Any]] = {
            m.SendObject: self._on_send,
            m.RunOp: self._on_op,
            m.Fetch: self._on_fetch,
            m.Delete: self._on_delete,
            m.Move: self._on_move,
            m.RemoteGet: self._on_remote_get,
            m.ClearObjects: self._on_clear,
            m.ListObjects: self._on_list,
            m.RunPlan: self._on_plan,
        }
        self._initialised = True
        _workers[id] = self

    # -- identity -------------------------------------------------------------
    def new_id(self) -> int:
        """A fresh id in this worker's namespace (for stored objects and owned pointers)."""
        return next(self._counter)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id:{self.id} #objects:{len(self._objects)}>"

    def add_workers(self, workers: Iterable[BaseWorker]) -> BaseWorker:
        """Let this worker know other workers (harmless to repeat); returns the worker."""
        for w in workers:
            self._known[w.id] = w
        return self

    add_worker = add_workers

    def clear_objects(self) -> BaseWorker:
        """Empty this worker's store and return the worker."""
        self._clear("clear_objects")
        return self

    def _clear(self, reason: str) -> None:
        grads_changed()
        ids = tuple(self._objects)
        objs = list(self._objects.values())
        self._objects.clear()
        if events.bus.callbacks and ids:
            events.bus.publish(events.StoreCleared(self.id, ids, reason))
        del objs  # pointers among them die here and free what they point to

    def _reset(self) -> None:
        self._clear("reset")
        self._counter = itertools.count(1)

    # -- the store ------------------------------------------------------------
    def store(self, obj: Any, obj_id: int | None = None) -> int:
        """Keep ``obj`` under a new id (or ``obj_id``) and return the id."""
        if obj_id is None:
            # (A plain tensor has no child; asking it costs an AttributeError, so don't.)
            child = None if type(obj) is torch.Tensor else getattr(obj, "child", None)
            # A pointer this worker owns is kept under its own id: "alice:2 -> bob:2" at key 2.
            owned = child is not None and getattr(child, "owner", None) is self
            obj_id = child.id if owned else self.new_id()
        self._objects[obj_id] = obj
        if events.bus.callbacks:
            events.publish_stored(self.id, obj_id, obj)
        return obj_id

    def get_obj(self, obj_id: int) -> Any:
        """The stored object ``obj_id``, or a clear ``ObjectNotFoundError``."""
        try:
            return self._objects[obj_id]
        except (KeyError, TypeError):
            raise ObjectNotFoundError(
                f"{self.id} holds no object with id {obj_id!r}: it was deleted, fetched with "
                ".get(), or moved away. Send the tensor again to get a fresh pointer."
            ) from None

    def pop_obj(self, obj_id: int, reason: str) -> Any:
        """Remove ``obj_id`` from the store and return it."""
        obj = self.get_obj(obj_id)
        del self._objects[obj_id]
        if events.bus.callbacks:
            events.publish_deleted(self.id, obj_id, reason)
        return obj

    # -- talking --------------------------------------------------------------
    def send_msg(self, msg: Any, location: BaseWorker) -> Any:
        """Encode ``msg``, deliver it to ``location``, and return the decoded reply's value."""
        __tracebackhide__ = True
        return self.send_bytes(serde.encode_envelope(self.id, location.id, msg), location, msg)

    def send_bytes(self, data: bytes, location: BaseWorker, msg: Any) -> Any:
        """``send_msg`` for a message already encoded as ``data`` (``msg``: for listeners)."""
        __tracebackhide__ = True
        listening = bool(events.bus.callbacks)
        if listening:
            start = events._now()
            kind = m.KINDS.get(type(msg)) or type(msg).__name__
            events.publish_message(kind, self.id, location.id, len(data), msg, start)
        answer = location.recv_msg(data)
        if answer[:2] == b"PS":  # the usual answer, a stored result: read without a Reply
            value = serde.stored_reply_value(answer)
            if not listening:
                return value
            reply = m.Reply(value)
        elif answer == _DONE:  # a delete's answer, every time: no decoding
            if not listening:
                return None
            reply = _DONE_REPLY
        else:
            reply = serde.decode(answer)
        if listening:
            now = events._now()
            kind = m.KINDS.get(type(reply)) or type(reply).__name__
            events.publish_message(kind, location.id, self.id, len(answer), reply, now, now - start)
        if type(reply) is m.ErrorReply:
            raise rebuild(reply.kind, reply.message)
        if type(reply) is not m.Reply:
            raise SerdeError(f"{location.id} answered with something that is not a reply")
        return reply.value

    def recv_msg(self, data: bytes) -> bytes:
        """Handle one encoded message and return the encoded reply (never raises)."""
        try:
            if data[:1] == b"Q":  # an operation request, the usual message: no message objects
                value = self._on_request(data)
            elif (delete := serde.delete_request(data)) is not None:  # the next most usual
                value = self._on_delete("", delete)
            else:
                env = serde.decode(data)
                if type(env) is not m.Envelope or not isinstance(env.sender, str):
                    raise SerdeError("expected a fedlab message envelope")
                handler = self.handlers.get(type(env.msg))
                if handler is None:
                    raise SerdeError(f"{self.id} does not accept {type(env.msg).__name__} messages")
                value = handler(env.sender, env.msg)
            if type(value) is bytes:  # an operation's reply, already encoded by ``_run``
                return value
            if value is None:  # a delete's answer, on every dying pointer: encoded once
                return _DONE
            return serde.encode_reply(value)
        except FedlabError as e:
            error = m.ErrorReply(type(e).__name__, str(e))
        except Exception as e:  # a torch error on this worker travels back by name
            error = m.ErrorReply(type(e).__name__, f"on {self.id}: {e}")
        return serde.encode(error)

    # -- handlers -------------------------------------------------------------
    def _materialise(self, obj: Any) -> Any:
        """A received value as this worker keeps it: a ``PointerRef`` becomes a pointer."""
        if isinstance(obj, m.PointerRef):
            from fedlab.pointer import pointer_from_ref

            return pointer_from_ref(self, obj)
        if not isinstance(obj, torch.Tensor):
            raise SerdeError(f"{self.id} only stores tensors and pointers")
        return obj

    def _on_send(self, sender: str, msg: m.SendObject) -> int:
        obj_id = self.new_id()
        obj = self._materialise_with_id(msg.obj, obj_id)
        return self.store(obj, obj_id)

    def _materialise_with_id(self, obj: Any, obj_id: int) -> Any:
        if isinstance(obj, m.PointerRef):
            from fedlab.pointer import pointer_from_ref

            return pointer_from_ref(self, obj, pointer_id=obj_id)
        return self._materialise(obj)

    def _resolve(self, value: Any, used: dict[int, int]) -> Any:
        t = type(value)
        if t is m.ObjRef:
            obj = self.get_obj(value.id)
            used[id(obj)] = value.id
            return obj
        if t is tuple or t is list:
            return t(self._resolve(v, used) for v in value)
        if t is dict:
            return {k: self._resolve(v, used) for k, v in value.items()}
        if t is m.PointerRef or (isinstance(value, torch.Tensor) and t is not torch.Tensor):
            raise SerdeError("operation arguments must be stored objects or plain values")
        return value

    def _on_op(self, sender: str, msg: m.RunOp) -> Any:
        fn = allowlist.lookup(msg.op)
        if type(msg.args) is not tuple or type(msg.kwargs) is not dict:
            raise SerdeError("an operation's arguments must be a tuple and a dict")
        used: dict[int, int] = {}
        args, kwargs = self._resolve(msg.args, used), self._resolve(msg.kwargs, used)
        return self._run(fn, msg.op, args, kwargs, bool(msg.grad_enabled), used)

    def _on_request(self, data: bytes) -> Any:
        """``_on_op`` for a compact request: its values resolved straight from the bytes."""
        _, (op, grad, nargs, names, codes, *_), values = serde.request(data)
        fn = allowlist.lookup(op)
        objects = self._objects
        used: dict[int, int] = {}
        args = []
        for c, v in zip(codes, values):
            if c == 82:  # R: an object of this store, by id
                obj = objects.get(v, _MISSING)
                if obj is _MISSING:
                    obj = self.get_obj(v)  # raises the clear "no object with id" error
                used[id(obj)] = v
                v = obj
            args.append(v)
        kwargs = dict(zip(names, args[nargs:])) if names else {}
        return self._run(fn, op, args[:nargs] if names else args, kwargs, grad, used)

    def _run(self, fn: Callable, op: str, args: Any, kwargs: dict, grad: bool, used: dict) -> Any:
        if torch.is_grad_enabled() is grad:
            result = fn(*args, **kwargs)  # already in the caller's grad mode (usual)
        else:
            with torch.set_grad_enabled(grad):
                result = fn(*args, **kwargs)
        if type(result) is not torch.Tensor:  # (a plain tensor, the usual case, is fine)
            _check_result(result, op)
        return self._keep(result, used, reply=True)

    def _keep(self, result: Any, used: dict[int, int], reply: bool = False) -> Any:
        """Store ``result`` (unless it is an argument) and describe it; with ``reply``, a
        plain tensor's description comes as the encoded reply, packed straight off it."""
        if result is None:
            return None
        if isinstance(result, torch.Tensor):
            existing = used.get(id(result))
            obj_id = existing if existing is not None else self.store(result)
            if reply and type(result) is torch.Tensor:  # the usual result
                packed = serde.stored_reply(obj_id, result, existing is not None)
                if packed is not None:
                    return packed
            return stored_descriptor(obj_id, result, existing is not None)
        return tuple(self._keep(r, used) for r in result)

    def _on_fetch(self, sender: str, msg: m.Fetch) -> Any:
        obj = self.get_obj(msg.id)
        value = to_value(obj)  # may fail (an unsendable object): then nothing changed
        self.pop_obj(msg.id, "get")
        _hand_over(obj)
        return value

    def _on_delete(self, sender: str, msg: m.Delete) -> None:
        if msg.id in self._objects:
            obj = self.pop_obj(msg.id, msg.reason)
            del obj  # a pointer dies here: the delete cascades along its chain

    def _on_move(self, sender: str, msg: m.Move) -> int:
        obj = self.get_obj(msg.id)
        dest = get_worker(msg.dest)
        child = getattr(obj, "child", None)
        if child is not None and getattr(child, "location_id", None) == dest.id:
            # A pointer moved to the worker it points at collapses: dest keeps its object.
            new_id = child.id_at_location
        else:
            new_id = self.send_msg(m.SendObject(to_value(obj)), dest)
        self.pop_obj(msg.id, f"move to {dest.id}")
        _hand_over(obj)
        return new_id

    def _on_remote_get(self, sender: str, msg: m.RemoteGet) -> Any:
        obj = self.get_obj(msg.id)
        child = getattr(obj, "child", None)
        if child is None or not hasattr(child, "id_at_location"):
            raise PointerChainError(
                f"remote_get() needs a pointer to a pointer, but {self.id}:{msg.id} is the "
                f"tensor itself. Use .get() to bring it to you, or .move(worker) to send it on."
            )
        value = obj.get()
        self._objects[msg.id] = value
        if events.bus.callbacks:
            events.publish_stored(self.id, msg.id, value)
        return stored_descriptor(msg.id, value, True)

    def _on_clear(self, sender: str, msg: m.ClearObjects) -> None:
        self._clear(str(msg.reason))

    def _on_plan(self, sender: str, msg: m.RunPlan) -> Any:
        from fedlab import planrun  # (loaded on a worker's first plan)

        return planrun.run_on(self, msg)

    def _on_list(self, sender: str, msg: m.ListObjects) -> dict[int, str]:
        return {k: " ".join(describe(v)) for k, v in self._objects.items()}


def _check_result(result: Any, op: str) -> None:
    if result is None or isinstance(result, torch.Tensor):
        return
    if isinstance(result, (tuple, list)) and all(
        r is None or isinstance(r, torch.Tensor) for r in result
    ):
        return
    raise RemoteValueError(
        f"{allowlist.short(op)} gives back a {type(result).__name__}, which would reveal data; "
        "fedlab only returns pointers. Use .get() first if you may see the values."
    )


def _hand_over(obj: Any) -> None:
    """An object leaves a store by get or move: if it is a pointer, it must not GC."""
    child = getattr(obj, "child", None)
    if child is not None and hasattr(child, "garbage_collect_data"):
        child.garbage_collect_data = False


def stored_descriptor(obj_id: int, t: torch.Tensor, existing: bool) -> m.Stored:
    """What the caller needs to build a pointer to the stored tensor ``t``."""
    child = None if type(t) is torch.Tensor else getattr(t, "child", None)
    if child is not None and hasattr(child, "id_at_location"):
        return m.Stored(
            obj_id,
            tuple(child.shape),
            serde.DTYPE_NAMES[child.dtype],
            child.requires_grad,
            child.is_leaf,
            existing,
        )
    return m.Stored(
        obj_id,
        tuple(t.shape),
        serde.DTYPE_NAMES.get(t.dtype) or str(t.dtype),
        t.requires_grad,
        t.is_leaf,
        existing,
    )


def to_value(obj: Any) -> Any:
    """A stored object as it travels: a tensor as itself, a pointer as a ``PointerRef``."""
    child = getattr(obj, "child", None)
    if child is not None and hasattr(child, "id_at_location"):
        return child.as_ref()
    return obj


class VirtualWorker(BaseWorker):
    """A worker in this Python process: the default, and the reference for all others."""


def reset() -> None:
    """Empty every worker's store and restart all id counters (for lessons and tests)."""
    global current_generation
    current_generation = next(generation)
    for w in list(_workers.values()):
        w._reset()
