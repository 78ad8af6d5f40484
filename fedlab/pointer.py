"""Pointers: a reference, held by one worker (the owner), to an object on another (the location).

A ``PointerTensor`` is the plain record (owner, location, id_at_location, id, and the
remote tensor's shape and dtype). A worker keeps it in its store as it is (the middle of
a chain); a student holds it inside a tensor-like wrapper (``fedlab.wrapper``), whose
``child`` it is. Either way, ``remote`` sends an operation on pointers to their location
and gives back pointers to the results. When a pointer dies and ``garbage_collect_data``
is set, its location deletes the object; ``get`` and ``move`` hand the object over.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import torch

from fedlab import messages as m
from fedlab import registry
from fedlab.exceptions import ObjectNotFoundError, SerdeError, TensorsNotCollocatedException
from fedlab.serde import DTYPE_NAMES, DTYPES

if TYPE_CHECKING:
    from fedlab.worker import BaseWorker

_live: weakref.WeakSet[PointerTensor] = weakref.WeakSet()  # every pointer alive here


class PointerTensor:
    """A pointer to the object ``id_at_location`` on the worker ``location``."""

    __slots__ = ("__weakref__", "description", "dtype", "garbage_collect_data", "generation",
                 "grad_cache", "grad_epoch", "id", "id_at_location", "is_leaf", "location_id",
                 "owner", "requires_grad", "shape", "tags")  # fmt: skip

    def __init__(self, owner: BaseWorker, location_id: str, id_at_location: int, shape: Any,
                 dtype: torch.dtype, requires_grad: bool = False, is_leaf: bool = True,
                 pointer_id: int | None = None) -> None:  # fmt: skip
        self.owner = owner
        self.location_id = location_id
        self.id_at_location = id_at_location
        self.id = owner.new_id() if pointer_id is None else pointer_id
        self.shape = torch.Size(shape)
        self.dtype = dtype
        self.requires_grad = requires_grad
        self.is_leaf = is_leaf
        self.garbage_collect_data = True
        self.generation = registry.current_generation
        # The wrapped pointer ``.grad`` gave (None: no gradient), valid while
        # ``grad_epoch`` is the current one; see ``fedlab.dispatch``.
        self.grad_cache: Any = None
        self.grad_epoch = 0
        self.tags: list[str] | None = None  # what the object's tags were when last seen
        self.description: str | None = None
        _live.add(self)

    @property
    def location(self) -> BaseWorker:
        """The worker that holds the object."""
        return registry.get_worker(self.location_id)

    def update(self, d: m.Stored) -> None:
        """Refresh the cached metadata from a reply."""
        self.shape, self.dtype = torch.Size(d.shape), DTYPES[d.dtype]
        self.requires_grad, self.is_leaf = d.requires_grad, d.is_leaf

    def knows_no_grad(self) -> None:
        """Record that the remote tensor has no gradient now (it was just sent without one)."""
        self.grad_cache, self.grad_epoch = None, registry.grad_epoch

    def forget_grad(self) -> None:
        """Drop the cached ``.grad`` pointer (the pointer moved, or was fetched)."""
        self.grad_cache, self.grad_epoch = None, 0

    def as_ref(self) -> m.PointerRef:
        """This pointer as a value that can travel to another worker."""
        return m.PointerRef(self.location_id, self.id_at_location, tuple(self.shape),
                            DTYPE_NAMES[self.dtype], self.requires_grad, self.is_leaf,
                            self.tags, self.description)  # fmt: skip

    def send(self, msg: Any) -> Any:
        """Deliver ``msg`` from the owner to the location and return the reply's value."""
        __tracebackhide__ = True
        return self.owner.send_msg(msg, self.location)

    def __repr__(self) -> str:
        where = f"{self.location_id}:{self.id_at_location}"
        text = f"[PointerTensor | {self.owner.id}:{self.id} -> {where}]"
        if self.tags or self.description:  # (as PySyft shows a tagged pointer)
            text += f"\n\tTags: {' '.join(self.tags or ())}\n\tShape: {self.shape}"
            text += f"\n\tDescription: {self.description}" if self.description else ""
        return text

    def __del__(self) -> None:
        if not self.garbage_collect_data or self.generation != registry.current_generation:
            return
        try:
            self.send(m.Delete(self.id_at_location, f"pointer {self.owner.id}:{self.id} died"))
        except Exception:  # at interpreter exit, or the location is gone: nothing to free
            pass


class MultiPointerTensor:
    """Pointers to copies of one tensor on several workers; ``.child`` maps worker id to pointer."""

    def __init__(self, children: dict[str, Any]) -> None:
        self.child = children

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self.child.items())
        return f"MultiPointerTensor>{{{inner}}}"


def record_of(obj: Any) -> PointerTensor | None:
    """The pointer an object is (a worker's stored pointer) or holds (a student's wrapper)."""
    if type(obj) is PointerTensor:
        return obj
    child = (
        obj.__dict__.get("child")
        if isinstance(obj, torch.Tensor) and type(obj) is not torch.Tensor
        else None
    )
    return child if type(child) is PointerTensor else None


def usable(p: PointerTensor) -> PointerTensor:
    """``p``, if it still names an object; else a clear error (after ``get``, or a reset)."""
    __tracebackhide__ = True
    if p.id_at_location is None:
        raise ObjectNotFoundError(
            f"the pointer {p.owner.id}:{p.id} was already used with .get(): its object now "
            f"lives with you, not on {p.location_id}. Use the value .get() returned."
        )
    if p.generation != registry.current_generation:
        raise ObjectNotFoundError(
            f"the pointer {p.owner.id}:{p.id} was made before sy.reset(); "
            f"{p.location_id} no longer holds its object. Send the tensor again."
        )
    return p


def from_ref(owner: BaseWorker, ref: m.PointerRef, pointer_id: int | None = None) -> PointerTensor:
    """A new pointer, owned by ``owner``, to what ``ref`` points at."""
    if ref.dtype not in DTYPES or not all(type(d) is int and d >= 0 for d in ref.shape) or (
            ref.tags is not None and {type(t) for t in ref.tags} - {str}):  # fmt: skip
        raise SerdeError("a pointer in the message is malformed")
    p = PointerTensor(owner, ref.location, ref.id_at_location, ref.shape, DTYPES[ref.dtype],
                      ref.requires_grad, ref.is_leaf, pointer_id)  # fmt: skip
    p.tags, p.description = ref.tags, ref.description
    return p


def remote(op: str, args: Any, kwargs: dict, grad: bool) -> Any:
    """Run ``op`` where its pointer arguments live; pointers to the results come back.

    Pointers (or wrappers holding them) may appear anywhere in ``args`` and ``kwargs``,
    all to one worker, with no local tensor beside them. The pointers' owner sends one
    ``RunOp``; an in-place result comes back as the argument itself (its pointer refreshed).
    """
    __tracebackhide__ = True
    ptrs: list = []  # (pointer, the argument that holds it)
    refs = _refs(args, ptrs), _refs(kwargs, ptrs)
    if not ptrs:
        raise TensorsNotCollocatedException(f"{op} names no pointer to run it with")
    loc = ptrs[0][0].location_id
    other = next((p.location_id for p, _ in ptrs if p.location_id != loc), None)
    if other is not None:
        raise TensorsNotCollocatedException(
            f"{op} involves pointers to two workers ({loc} and {other}); move them together first"
        )
    owner = ptrs[0][0].owner
    value = owner.send_msg(m.RunOp(op, *refs, grad), registry.get_worker(loc))
    return results(value, owner, loc, ptrs)


def _refs(value: Any, ptrs: list) -> Any:
    """``value`` with each pointer as an ``ObjRef`` (collected in ``ptrs``); no local tensors."""
    t = type(value)
    if t is tuple or t is list:
        return t(_refs(v, ptrs) for v in value)
    if t is dict:
        return {k: _refs(v, ptrs) for k, v in value.items()}
    p = record_of(value) if t is PointerTensor or isinstance(value, torch.Tensor) else None
    if p is not None:
        ptrs.append((usable(p), value))
        return m.ObjRef(p.id_at_location)
    if isinstance(value, torch.Tensor):
        raise TensorsNotCollocatedException(
            "an operation mixes a pointer with a tensor held here; send the tensor to the "
            "pointer's worker first, or .get() the pointer"
        )
    return value


def results(value: Any, owner: BaseWorker, loc: str, ptrs: list) -> Any:
    """Pointers for what a worker stored (``Stored``), from the reply's ``value``.

    ``ptrs`` are the arguments' (pointer, holder) pairs: an argument's own result comes
    back as its holder (a student's wrapper, or a worker's stored pointer).
    """
    if type(value) is m.Stored:
        if value.existing:
            for p, holder in ptrs:
                if p.id_at_location == value.id:
                    p.update(value)
                    return holder
        return PointerTensor(owner, loc, value.id, value.shape, DTYPES[value.dtype],
                             value.requires_grad, value.is_leaf)  # fmt: skip
    if type(value) is tuple:
        return tuple(results(v, owner, loc, ptrs) for v in value)
    if value is None:
        return None
    raise SerdeError(f"{loc} answered an operation with {type(value).__name__}, not pointers")


def fetch(ptr: PointerTensor) -> Any:
    """``get``: the object comes here and leaves its location (a tensor, or a pointer)."""
    __tracebackhide__ = True
    value = ptr.send(m.Fetch(ptr.id_at_location))
    ptr.forget_grad()  # the gradient came along with the tensor
    ptr.garbage_collect_data = False
    ptr.id_at_location = None  # spent: using this pointer again is a clear error
    return from_ref(ptr.owner, value) if type(value) is m.PointerRef else value


def all_pointers() -> list[PointerTensor]:
    """Every pointer alive in this process, whatever it points to."""
    return list(_live)


def live_pointers() -> list[PointerTensor]:
    """Every pointer alive in this process that still frees its object when it dies."""
    gen = registry.current_generation
    return [p for p in list(_live) if p.garbage_collect_data and p.generation == gen]
