"""Pointers: a reference, held by one worker (the owner), to an object on another (the location).

A ``PointerTensor`` is the plain record (owner, location, id_at_location, id, and the
remote tensor's shape and dtype). Students hold it inside a tensor-like wrapper
(``fedlab.hook.Wrapper``), so torch calls on it are dispatched to the location.
When a pointer dies and ``garbage_collect_data`` is set, its location deletes the
object; ``get`` and ``move`` hand the object over instead.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import torch

from fedlab import events, serde, worker
from fedlab import messages as m

if TYPE_CHECKING:
    from fedlab.worker import BaseWorker

# Every pointer alive in this process (for the "nothing left behind" checks and the views),
# by ``id()``: a weak reference each, which the pointer removes as it dies. (Cheaper than
# a ``WeakSet``, whose entries carry callbacks; a pointer is made on every operation.)
_live: dict[int, weakref.ref] = {}


class PointerTensor:
    """A pointer to the object ``id_at_location`` on the worker ``location``."""

    __slots__ = (
        "__weakref__",
        "dtype",
        "garbage_collect_data",
        "generation",
        "grad_cache",
        "grad_epoch",
        "id",
        "id_at_location",
        "is_leaf",
        "location_id",
        "owner",
        "requires_grad",
        "shape",
    )

    def __init__(
        self,
        owner: BaseWorker,
        location_id: str,
        id_at_location: int,
        shape: tuple,
        dtype: torch.dtype,
        requires_grad: bool = False,
        is_leaf: bool = True,
        pointer_id: int | None = None,
    ) -> None:
        self.owner = owner
        self.location_id = location_id
        self.id_at_location = id_at_location
        self.id = next(owner._counter) if pointer_id is None else pointer_id
        self.shape = torch.Size(shape)
        self.dtype = dtype
        self.requires_grad = requires_grad
        self.is_leaf = is_leaf
        self.garbage_collect_data = True
        self.generation = worker.current_generation
        # The wrapped pointer ``.grad`` gave (None: no gradient), valid while
        # ``grad_epoch`` is the current one; see ``fedlab.dispatch``.
        self.grad_cache: Any = None
        self.grad_epoch = 0
        _live[id(self)] = weakref.ref(self)

    @property
    def location(self) -> BaseWorker:
        """The worker that holds the object."""
        return worker.get_worker(self.location_id)

    def update(self, d: m.Stored) -> None:
        """Refresh the cached metadata from a reply."""
        self.shape = torch.Size(d.shape)
        self.dtype = serde.DTYPES[d.dtype]
        self.requires_grad = d.requires_grad
        self.is_leaf = d.is_leaf

    def knows_no_grad(self) -> None:
        """Record that the remote tensor has no gradient now (it was just sent without one)."""
        self.grad_cache, self.grad_epoch = None, worker.grad_epoch

    def forget_grad(self) -> None:
        """Drop the cached ``.grad`` pointer (the pointer moved, or was fetched)."""
        self.grad_cache, self.grad_epoch = None, 0

    def as_ref(self) -> m.PointerRef:
        """This pointer as a value that can travel to another worker."""
        return m.PointerRef(
            self.location_id,
            self.id_at_location,
            tuple(self.shape),
            serde.DTYPE_NAMES[self.dtype],
            self.requires_grad,
            self.is_leaf,
        )

    def send_to_location(self, msg: Any) -> Any:
        """Deliver ``msg`` from the owner to the location and return the reply's value."""
        return self.owner.send_msg(msg, self.location)

    def __repr__(self) -> str:
        where = f"{self.location_id}:{self.id_at_location}"
        return f"[PointerTensor | {self.owner.id}:{self.id} -> {where}]"

    def __del__(self) -> None:
        _live.pop(id(self), None)
        if not self.garbage_collect_data or self.generation != worker.current_generation:
            return
        try:
            owner, obj_id = self.owner, self.id_at_location
            reason = f"pointer {owner.id}:{self.id} died"
            data = serde.delete_bytes(owner.id, self.location_id, obj_id, reason)
            msg = m.Delete(obj_id, reason) if events.bus.callbacks else None  # (for listeners)
            owner.send_bytes(data, self.location, msg)
        except Exception:  # at interpreter exit, or the location is gone: nothing to free
            pass


class MultiPointerTensor:
    """Pointers to copies of one tensor on several workers; ``.child`` maps worker id to pointer."""

    def __init__(self, children: dict[str, Any]) -> None:
        self.child = children

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self.child.items())
        return f"MultiPointerTensor>{{{inner}}}"


def pointer_from_ref(
    owner: BaseWorker, ref: m.PointerRef, pointer_id: int | None = None
) -> torch.Tensor:
    """A new pointer, owned by ``owner``, to what ``ref`` points at (wrapped)."""
    from fedlab.wrapper import wrap

    if not isinstance(ref.location, str) or type(ref.id_at_location) is not int:
        raise serde.SerdeError("a pointer in the message is malformed")
    if ref.dtype not in serde.DTYPES:
        raise serde.SerdeError(f"unknown dtype {ref.dtype!r} in the message")
    ptr = PointerTensor(
        owner,
        ref.location,
        ref.id_at_location,
        tuple(ref.shape),
        serde.DTYPES[ref.dtype],
        bool(ref.requires_grad),
        bool(ref.is_leaf),
        pointer_id,
    )
    return wrap(ptr)


def all_pointers() -> list[PointerTensor]:
    """Every pointer alive in this process, whatever it points to."""
    return [p for p in (r() for r in list(_live.values())) if p is not None]


def live_pointers() -> list[PointerTensor]:
    """Every pointer alive in this process that still frees its object when it dies."""
    gen = worker.current_generation
    return [p for p in all_pointers() if p.garbage_collect_data and p.generation == gen]
