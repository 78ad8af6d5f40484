"""The pointer wrapper: what a student holds for a remote tensor.

A pointer is held in a ``Wrapper``: an instance of a ``torch.Tensor`` subclass with
a classmethod ``__torch_function__``, so only calls that involve a wrapper are
intercepted (operators, methods, ``torch.*``, ``F.*`` and property access) and
plain tensors pay nothing; ``fedlab.dispatch`` decides where each call runs.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import torch

from fedlab import messages as m
from fedlab import worker
from fedlab.exceptions import ObjectNotFoundError, PointerChainError, RemoteValueError
from fedlab.pointer import MultiPointerTensor, PointerTensor, pointer_from_ref
from fedlab.worker import BaseWorker

_EMPTY: dict[torch.dtype, torch.Tensor] = {}


def _empty(dtype: torch.dtype) -> torch.Tensor:
    t = _EMPTY.get(dtype)
    if t is None:
        t = _EMPTY[dtype] = torch.empty(0, dtype=dtype)
    return t


def wrap(ptr: PointerTensor, cls: type | None = None) -> torch.Tensor:
    """A tensor-like wrapper around the pointer ``ptr``."""
    empty = _EMPTY.get(ptr.dtype)
    w = torch.Tensor._make_subclass(cls or Wrapper, _empty(ptr.dtype) if empty is None else empty)
    w.child = ptr
    return w


def is_pointer(x: Any) -> bool:
    """True for a wrapper around a single pointer."""
    return isinstance(x, Wrapper) and isinstance(x.__dict__.get("child"), PointerTensor)


def _child(w: Wrapper) -> PointerTensor:
    return w.__dict__["child"]


class Wrapper(torch.Tensor):
    """What a student holds for a remote tensor: torch calls on it run where the data is."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        __tracebackhide__ = True  # students see their line and the error, not fedlab's frames
        return _dispatch.dispatch(func, args, kwargs or {})

    # -- the course's attributes ------------------------------------------------
    @property
    def location(self) -> BaseWorker:
        """The worker that holds the object."""
        return _child(self).location

    @property
    def id_at_location(self) -> int:
        """The object's key in the location's store."""
        return _child(self).id_at_location

    @property
    def id(self) -> int:
        """This pointer's own id, in its owner's namespace."""
        return _child(self).id

    @property
    def owner(self) -> BaseWorker:
        """The worker that holds this pointer (usually ``me``)."""
        return _child(self).owner

    def __repr__(self) -> str:
        return f"(Wrapper)>{_child(self)!r}"

    __str__ = __repr__

    def __hash__(self) -> int:
        return id(self)

    def __reduce_ex__(self, protocol):
        raise RemoteValueError("a pointer cannot be pickled or deep-copied; use .copy()")

    def __deepcopy__(self, memo):
        return self.copy()

    # -- moving data ------------------------------------------------------------
    def send(self, *workers: BaseWorker) -> torch.Tensor:
        """Send this pointer to another worker, making a chain (that worker points here)."""
        __tracebackhide__ = True
        workers = _workers_arg(workers)
        if len(workers) > 1:
            raise PointerChainError(
                "a pointer can be sent to one worker at a time; send the tensor itself "
                "to several workers instead"
            )
        ptr = _live_child(self)
        dest = workers[0]
        if dest.id in (ptr.location_id, ptr.owner.id):
            raise PointerChainError(
                f"this pointer already lives on {ptr.owner.id} and points to "
                f"{ptr.location_id}; send it to a third worker, or use .move({dest.id})"
            )
        new_id = ptr.owner.send_msg(m.SendObject(ptr.as_ref()), dest)
        ptr.garbage_collect_data = False  # the new pointer on dest now owns the object
        head = PointerTensor(ptr.owner, dest.id, new_id, ptr.shape, ptr.dtype, ptr.requires_grad)
        head.is_leaf = ptr.is_leaf
        return wrap(head)

    def get(self) -> Any:
        """Bring the object back from its location (it leaves there); returns it."""
        __tracebackhide__ = True
        ptr = _live_child(self)
        value = ptr.send_to_location(m.Fetch(ptr.id_at_location))
        ptr.forget_grad()  # the gradient came along with the tensor
        ptr.garbage_collect_data = False
        ptr.id_at_location = None  # spent: using this pointer again is a clear error
        if isinstance(value, m.PointerRef):
            return pointer_from_ref(ptr.owner, value)
        return value

    def move(self, dest: BaseWorker) -> Any:
        """Send the object from its location straight to ``dest``; updates and returns self."""
        __tracebackhide__ = True
        ptr = _live_child(self)
        dest = _workers_arg((dest,))[0]
        if dest.id == ptr.location_id:
            return self
        if dest.id == ptr.owner.id:
            return self.get()
        new_id = ptr.send_to_location(m.Move(ptr.id_at_location, dest.id))
        ptr.forget_grad()
        ptr.location_id = dest.id
        ptr.id_at_location = new_id
        return self

    def remote_get(self) -> torch.Tensor:
        """On a chain, make the middle worker pull the object to itself; returns self."""
        __tracebackhide__ = True
        ptr = _live_child(self)
        d = ptr.send_to_location(m.RemoteGet(ptr.id_at_location))
        ptr.forget_grad()
        ptr.update(d)
        return self

    def copy(self) -> torch.Tensor:
        """A new pointer to a copy of the object, on the same worker."""
        return self.clone()

    @property
    def garbage_collect_data(self) -> bool:
        """Whether the remote object is deleted when this pointer dies."""
        return _child(self).garbage_collect_data

    @garbage_collect_data.setter
    def garbage_collect_data(self, value: bool) -> None:
        _child(self).garbage_collect_data = bool(value)


class ParameterWrapper(Wrapper, torch.nn.Parameter):
    """A model's ``Parameter`` after ``model.send``: the same object, now a pointer."""

    def __repr__(self) -> str:
        return f"Parameter containing:\n(Wrapper)>{_child(self)!r}"

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
        __tracebackhide__ = True
        raise PointerChainError("send the tensor itself to several workers, not a multi-pointer")

    def move(self, dest: BaseWorker) -> Any:
        __tracebackhide__ = True
        raise PointerChainError("move each worker's pointer (x.child.child['bob']) on its own")

    def remote_get(self) -> torch.Tensor:
        __tracebackhide__ = True
        raise PointerChainError("remote_get works on a chain of single pointers")


def _wrap_multi(children: dict[str, torch.Tensor]) -> torch.Tensor:
    first = next(iter(children.values()))
    w = torch.Tensor._make_subclass(MultiWrapper, _empty(_child(first).dtype))
    w.child = MultiPointerTensor(children)
    return w


def _live_child(w: Wrapper) -> PointerTensor:
    __tracebackhide__ = True
    ptr = w.__dict__.get("child")
    if not isinstance(ptr, PointerTensor):
        raise PointerChainError("this operation needs a single pointer")
    if ptr.id_at_location is None:
        raise ObjectNotFoundError(
            f"the pointer {ptr.owner.id}:{ptr.id} was already used with .get(): its object "
            f"now lives with you, not on {ptr.location_id}. Use the value .get() returned."
        )
    if ptr.generation != worker.current_generation:
        raise ObjectNotFoundError(
            f"the pointer {ptr.owner.id}:{ptr.id} was made before sy.reset(); "
            f"{ptr.location_id} no longer holds its object. Send the tensor again."
        )
    return ptr


def _workers_arg(workers: tuple) -> list[BaseWorker]:
    if len(workers) == 1 and isinstance(workers[0], (list, tuple)):
        workers = tuple(workers[0])
    if not workers:
        raise TypeError("say where to send it, e.g. x.send(bob)")
    out = []
    for w in workers:
        if isinstance(w, str):
            w = worker.get_worker(w)
        if not isinstance(w, BaseWorker):
            raise TypeError(
                f"expected a worker such as bob = sy.VirtualWorker(hook, id='bob'), "
                f"got {type(w).__name__}"
            )
        out.append(w)
    return out


# Imported last, as a module: dispatch needs the classes above (one mechanism, two files).
from fedlab import dispatch as _dispatch  # noqa: E402
