"""The pointer wrapper: what a student holds for a remote tensor.

A pointer is held in a ``Wrapper``: an instance of a ``torch.Tensor`` subclass with a
classmethod ``__torch_function__``, so only calls that involve a wrapper are intercepted
(operators, methods, ``torch.*``, ``F.*`` and property access) and plain tensors pay
nothing; ``fedlab.dispatch`` decides where each call runs, and new pointers come back
wrapped. A wrapper's ``child`` is its ``PointerTensor`` (``fedlab.pointer``).
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import torch

from fedlab import allowlist, dispatch, pointer, registry
from fedlab import messages as m
from fedlab.exceptions import PointerChainError, RemoteValueError
from fedlab.pointer import MultiPointerTensor, PointerTensor
from fedlab.worker import BaseWorker


def wrap(ptr: PointerTensor, cls: type | None = None) -> torch.Tensor:
    """A tensor-like wrapper around the pointer ``ptr``."""
    w = torch.Tensor._make_subclass(cls or Wrapper, dispatch.empty(ptr.dtype))
    w.child = ptr
    return w


def is_pointer(x: Any) -> bool:
    """True for a wrapper around a single pointer."""
    return isinstance(x, Wrapper) and type(x.__dict__.get("child")) is PointerTensor


def _wrapped(value: Any) -> Any:
    """What dispatch gave back, with each new pointer wrapped (a tuple's, a multi's)."""
    t = type(value)
    if t is PointerTensor:
        return wrap(value)
    if t is tuple:
        return tuple(_wrapped(v) for v in value)
    if t is MultiPointerTensor:
        children = {k: _wrapped(v) for k, v in value.child.items()}
        first = next(iter(children.values()))
        w = torch.Tensor._make_subclass(MultiWrapper, dispatch.empty(first.dtype))
        w.child = MultiPointerTensor(children)
        return w
    return value


def _grad(w: Wrapper) -> Any:
    """``w.grad``: a pointer to the remote gradient, the same object until a gradient may change.

    An optimizer reads ``p.grad`` several times per step; asking once per change keeps the
    message log to what a student would expect, and, like torch, gives the same object.
    """
    __tracebackhide__ = True
    ptr = usable(w)
    if not ptr.owner.caches_grads:
        return _wrapped(dispatch.run("Tensor.grad.__get__", (w,), {}))
    if ptr.grad_epoch == registry.grad_epoch:
        cached = ptr.grad_cache
        c = None if cached is None else cached.__dict__["child"]
        if cached is None or (c.id_at_location is not None and c.location_id == ptr.location_id
                              and c.generation == registry.current_generation):  # fmt: skip
            return cached
    value = _wrapped(dispatch.run("Tensor.grad.__get__", (w,), {}))
    ptr.grad_cache, ptr.grad_epoch = value, registry.grad_epoch
    return value


class Wrapper(torch.Tensor):
    """What a student holds for a remote tensor: torch calls on it run where the data is."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        __tracebackhide__ = True  # students see their line and the error, not fedlab's frames
        name = allowlist.name_of(func)
        if name == "Tensor.grad.__get__" and type(args[0].__dict__.get("child")) is PointerTensor:
            return _grad(args[0])
        return _wrapped(dispatch.dispatch(name, args, kwargs or {}))

    # -- the course's attributes --------------------------------------------------------
    @property
    def location(self) -> BaseWorker:
        """The worker that holds the object."""
        return self.child.location

    @property
    def id_at_location(self) -> int:
        """The object's key in the location's store."""
        return self.child.id_at_location

    @property
    def id(self) -> int:
        """This pointer's own id, in its owner's namespace."""
        return self.child.id

    @property
    def owner(self) -> BaseWorker:
        """The worker that holds this pointer (usually ``me``)."""
        return self.child.owner

    @property
    def tags(self) -> list[str] | None:
        """The tags of the remote tensor, as this pointer last saw them."""
        return self.child.tags

    @property
    def description(self) -> str | None:
        """The description of the remote tensor, as this pointer last saw it."""
        return self.child.description

    def __repr__(self) -> str:
        return f"(Wrapper)>{self.child!r}"

    __str__ = __repr__

    def __hash__(self) -> int:
        return id(self)

    def __reduce_ex__(self, protocol):
        raise RemoteValueError("a pointer cannot be pickled or deep-copied; use .copy()")

    def __deepcopy__(self, memo):
        return self.copy()

    # -- moving data --------------------------------------------------------------------
    def send(self, *workers: BaseWorker) -> torch.Tensor:
        """Send this pointer to another worker, making a chain (that worker points here)."""
        __tracebackhide__ = True
        dests = workers_arg(workers)
        if len(dests) > 1:
            raise PointerChainError(
                "a pointer can be sent to one worker at a time; send the tensor itself "
                "to several workers instead"
            )
        ptr, dest = usable(self), dests[0]
        if dest.id in (ptr.location_id, ptr.owner.id):
            raise PointerChainError(
                f"this pointer already lives on {ptr.owner.id} and points to "
                f"{ptr.location_id}; send it to a third worker, or use .move({dest.id})"
            )
        # The location gives dest a pointer to its object, and dest becomes its holder.
        new_id = ptr.send(m.Forward(ptr.id_at_location, dest.id, ptr.owner.id))
        ptr.garbage_collect_data = False  # the new pointer on dest now owns the object
        return wrap(PointerTensor(ptr.owner, dest.id, new_id, ptr.shape, ptr.dtype,
                                  ptr.requires_grad, ptr.is_leaf))  # fmt: skip

    def get(self) -> Any:
        """Bring the object back from its location (it leaves there); returns it."""
        __tracebackhide__ = True
        return _wrapped(pointer.fetch(usable(self)))

    def move(self, dest: BaseWorker) -> Any:
        """Send the object from its location straight to ``dest``; updates and returns self."""
        __tracebackhide__ = True
        ptr, dest = usable(self), workers_arg((dest,))[0]
        if dest.id == ptr.location_id:
            return self
        if dest.id == ptr.owner.id:
            return self.get()
        new_id = ptr.send(m.Move(ptr.id_at_location, dest.id))
        ptr.forget_grad()
        ptr.location_id, ptr.id_at_location = dest.id, new_id
        return self

    def remote_get(self) -> torch.Tensor:
        """On a chain, make the middle worker pull the object to itself; returns self."""
        __tracebackhide__ = True
        ptr = usable(self)
        ptr.update(ptr.send(m.RemoteGet(ptr.id_at_location)))
        ptr.forget_grad()
        return self

    def copy(self) -> torch.Tensor:
        """A new pointer to a copy of the object, on the same worker."""
        return self.clone()

    @property
    def garbage_collect_data(self) -> bool:
        """Whether the remote object is deleted when this pointer dies."""
        return self.child.garbage_collect_data

    @garbage_collect_data.setter
    def garbage_collect_data(self, value: bool) -> None:
        self.child.garbage_collect_data = bool(value)


class ParameterWrapper(Wrapper, torch.nn.Parameter):
    """A model's ``Parameter`` after ``model.send``: the same object, now a pointer."""

    def __repr__(self) -> str:
        return f"Parameter containing:\n(Wrapper)>{self.child!r}"

    __str__ = __repr__


class MultiWrapper(Wrapper):
    """Pointers to one tensor on several workers; operations run on every worker."""

    def __repr__(self) -> str:
        lines = "".join(f"\n\t-> {w!r}" for w in self.child.child.values())
        return f"(Wrapper)>[MultiPointerTensor]{lines}"

    __str__ = __repr__

    @property
    def location(self) -> list[BaseWorker]:
        """The workers that hold the copies, in order."""
        return [w.location for w in self.child.child.values()]

    def get(self, sum_results: bool = False) -> Any:
        """A list of the tensors, in worker order (their sum if ``sum_results``)."""
        __tracebackhide__ = True
        values = [w.get() for w in self.child.child.values()]
        return functools.reduce(operator.add, values) if sum_results else values

    def send(self, *workers: BaseWorker) -> torch.Tensor:
        """Refused: send the tensor itself to several workers instead."""
        __tracebackhide__ = True
        raise PointerChainError("send the tensor itself to several workers, not a multi-pointer")

    def move(self, dest: BaseWorker) -> Any:
        """Refused: move each worker's pointer on its own."""
        __tracebackhide__ = True
        raise PointerChainError("move each worker's pointer (x.child.child['bob']) on its own")

    def remote_get(self) -> torch.Tensor:
        """Refused: ``remote_get`` works on a chain of single pointers."""
        __tracebackhide__ = True
        raise PointerChainError("remote_get works on a chain of single pointers")


def send_tensor(self: torch.Tensor, *workers: Any) -> torch.Tensor:
    """Send a copy of this tensor to one worker (a pointer) or several (a multi-pointer)."""
    __tracebackhide__ = True
    if isinstance(self, Wrapper):  # reached through torch.Tensor.send on a subclass
        return Wrapper.send(self, *workers)
    dests = workers_arg(workers)
    me = registry.local_worker()
    if len(dests) > 1:
        if len({d.id for d in dests}) != len(dests):
            raise TypeError("each worker can appear once in x.send(...)")
        return multi({d.id: send_tensor(self, d) for d in dests})
    dest = dests[0]
    if dest is me:
        raise PointerChainError("this tensor is already here on me; send it to another worker")
    new_id = me.send_msg(m.SendObject(self.detach() if not self.is_leaf else self), dest)
    ptr = PointerTensor(me, dest.id, new_id, self.shape, self.dtype, self.requires_grad)
    if not self.is_leaf or self.grad is None:  # (a gradient travels with a leaf)
        ptr.knows_no_grad()
    ptr.tags, ptr.description = self.__dict__.get("tags"), self.__dict__.get("description")
    return wrap(ptr)


def tag(self: torch.Tensor, *tags: str) -> torch.Tensor:
    """Add tags (``"#boston"``) that travel with the tensor and find it with ``search``."""
    holder = self.child if isinstance(self, Wrapper) else self  # (a pointer: its record)
    own = getattr(holder, "tags", None) or []
    holder.tags = [*own, *(t for t in tags if t not in own)]
    return self


def search(self: BaseWorker, *query: Any) -> list[torch.Tensor]:
    """``bob.search("#boston")``: pointers to bob's tensors that carry every tag asked.

    They are bob's to keep: the pointers free nothing when they die (``worker.search``).
    """
    tags = tuple(t for q in query for t in ([q] if isinstance(q, str) else q))
    me = registry.local_worker()
    found = [pointer.from_ref(me, ref) for ref in me.send_msg(m.Search(tags), self)]
    for p in found:
        p.garbage_collect_data = False
    return [wrap(p) for p in found]


def describe(self: torch.Tensor, description: str) -> torch.Tensor:
    """Give the tensor a description that travels with it; returns the tensor."""
    (self.child if isinstance(self, Wrapper) else self).description = description
    return self


def multi(children: dict[str, torch.Tensor]) -> torch.Tensor:
    """A multi-pointer over the wrappers ``children`` (worker id -> pointer)."""
    return _wrapped(MultiPointerTensor(children))


def usable(w: Wrapper) -> PointerTensor:
    """The pointer a single-pointer wrapper holds, if it still names an object."""
    __tracebackhide__ = True
    ptr = w.__dict__.get("child")
    if type(ptr) is not PointerTensor:
        raise PointerChainError("this operation needs a single pointer")
    return pointer.usable(ptr)


def workers_arg(workers: tuple) -> list[BaseWorker]:
    """The workers a call names (objects, ids, or one list of them), checked."""
    if len(workers) == 1 and isinstance(workers[0], (list, tuple)):
        workers = tuple(workers[0])
    if not workers:
        raise TypeError("say where to send it, e.g. x.send(bob)")
    out = []
    for w in workers:
        if isinstance(w, str):
            w = registry.get_worker(w)
        if not isinstance(w, BaseWorker):
            raise TypeError(
                f"expected a worker such as bob = sy.VirtualWorker(hook, id='bob'), "
                f"got {type(w).__name__}"
            )
        out.append(w)
    return out
