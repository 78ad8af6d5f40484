"""Torch integration: ``TorchHook`` and the pointer wrapper whose torch calls run remotely.

A pointer is held in a ``Wrapper``: an instance of a ``torch.Tensor`` subclass with
a classmethod ``__torch_function__``, so only calls that involve a wrapper are
intercepted (operators, methods, ``torch.*``, ``F.*`` and property access) and
plain tensors pay nothing. ``TorchHook`` only *adds* methods (``send``, ``get``,
``move``, ...) to ``torch.Tensor`` and ``nn.Module``; it replaces no torch function.
"""

from __future__ import annotations

import functools
import operator
import warnings
from typing import Any

import torch

from fedlab import allowlist, worker
from fedlab import messages as m
from fedlab.exceptions import (
    ObjectNotFoundError,
    OperationNotAllowedError,
    PointerChainError,
    RemoteValueError,
    TensorsNotCollocatedException,
)
from fedlab.pointer import MultiPointerTensor, PointerTensor, pointer_from_ref
from fedlab.worker import BaseWorker, VirtualWorker

# One empty tensor per dtype backs every wrapper: a wrapper holds no data of its own.
_EMPTY: dict[torch.dtype, torch.Tensor] = {}


def _empty(dtype: torch.dtype) -> torch.Tensor:
    t = _EMPTY.get(dtype)
    if t is None:
        t = _EMPTY[dtype] = torch.empty(0, dtype=dtype)
    return t


def wrap(ptr: PointerTensor, cls: type | None = None) -> torch.Tensor:
    """A tensor-like wrapper around the pointer ``ptr``."""
    w = torch.Tensor._make_subclass(cls or Wrapper, _empty(ptr.dtype))
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
        return dispatch(func, args, kwargs or {})

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
        ptr = _live_child(self)
        value = ptr.send_to_location(m.Fetch(ptr.id_at_location))
        ptr.garbage_collect_data = False
        ptr.id_at_location = None  # spent: using this pointer again is a clear error
        if isinstance(value, m.PointerRef):
            return pointer_from_ref(ptr.owner, value)
        return value

    def move(self, dest: BaseWorker) -> Any:
        """Send the object from its location straight to ``dest``; updates and returns self."""
        ptr = _live_child(self)
        dest = _workers_arg((dest,))[0]
        if dest.id == ptr.location_id:
            return self
        if dest.id == ptr.owner.id:
            return self.get()
        new_id = ptr.send_to_location(m.Move(ptr.id_at_location, dest.id))
        ptr.location_id = dest.id
        ptr.id_at_location = new_id
        return self

    def remote_get(self) -> torch.Tensor:
        """On a chain, make the middle worker pull the object to itself; returns self."""
        ptr = _live_child(self)
        d = ptr.send_to_location(m.RemoteGet(ptr.id_at_location))
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
        values = [w.get() for w in self.child.child.values()]
        return functools.reduce(operator.add, values) if sum_results else values

    def send(self, *workers: BaseWorker) -> torch.Tensor:
        raise PointerChainError("send the tensor itself to several workers, not a multi-pointer")

    def move(self, dest: BaseWorker) -> Any:
        raise PointerChainError("move each worker's pointer (x.child.child['bob']) on its own")

    def remote_get(self) -> torch.Tensor:
        raise PointerChainError("remote_get works on a chain of single pointers")


def _wrap_multi(children: dict[str, torch.Tensor]) -> torch.Tensor:
    first = next(iter(children.values()))
    w = torch.Tensor._make_subclass(MultiWrapper, _empty(_child(first).dtype))
    w.child = MultiPointerTensor(children)
    return w


def _live_child(w: Wrapper) -> PointerTensor:
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


# -- dispatch --------------------------------------------------------------------


def _scan(value: Any, ptrs: list, plains: list, multis: list) -> None:
    if isinstance(value, Wrapper):
        (multis if isinstance(value, MultiWrapper) else ptrs).append(value)
    elif isinstance(value, torch.Tensor):
        plains.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _scan(v, ptrs, plains, multis)
    elif isinstance(value, dict):
        for v in value.values():
            _scan(v, ptrs, plains, multis)


def _to_refs(value: Any) -> Any:
    if isinstance(value, Wrapper):
        return m.ObjRef(_live_child(value).id_at_location)
    t = type(value)
    if t is tuple or t is list or isinstance(value, tuple):
        return tuple(_to_refs(v) for v in value) if t is not list else [_to_refs(v) for v in value]
    if t is dict:
        return {k: _to_refs(v) for k, v in value.items()}
    return value


def _where(w: torch.Tensor) -> str:
    return f"{_child(w).location_id}" if is_pointer(w) else "me (it is a local tensor)"


def _not_collocated(name: str, a: torch.Tensor, b: torch.Tensor) -> TensorsNotCollocatedException:
    op = allowlist.short(name)
    if not is_pointer(b):
        loc = _child(a).location_id
        return TensorsNotCollocatedException(
            f"{op} mixes a pointer to a tensor on {loc} with a local tensor.\n"
            f"  pointer: {a!r}\n  local:   {b!r}\n"
            f"Both must be in the same place: send the local tensor there with "
            f".send({loc}), or bring the remote one here with .get()."
        )
    la, lb = _child(a).location_id, _child(b).location_id
    return TensorsNotCollocatedException(
        f"{op} involves tensors on two different workers: one is on {la}, the other on "
        f"{lb}.\n  {a!r}\n  {b!r}\n"
        f"Put them on the same worker first, e.g. with .move({la}) or .move({lb}), "
        f"or .get() both."
    )


def _shape_of(w):
    return _child(w).shape


def _size(w, dim=None):
    shape = _child(w).shape
    return shape if dim is None else shape[dim]


def _len(w):
    shape = _child(w).shape
    if not shape:
        raise TypeError("len() of a 0-d tensor")
    return shape[0]


def _numel(w):
    return _child(w).shape.numel()


def _reveal(name):
    def refuse(w, *args, **kwargs):
        raise RemoteValueError(
            f"{allowlist.short(name)} needs the values, and they live on "
            f"{_child(w).location_id}, not here. Bring the tensor back first: x.get()"
            f"{'.' + allowlist.short(name) + '()' if not name.startswith('Tensor.__') else ''}."
        )

    return refuse


def _static(name):
    attr = name.split(".")[1]

    def answer(w, *args, **kwargs):
        return getattr(_empty(_child(w).dtype), attr)

    return answer


def _format(w, spec=""):
    return format(repr(w), spec)


def _iter(w):
    return iter(w.unbind(0))


def _set_requires_grad(w, value):
    run_remote("Tensor.requires_grad.__set__", (w, value), {})
    _child(w).requires_grad = bool(value)


# Answered here, without a message: metadata that a pointer caches, and refusals.
LOCAL: dict[str, Any] = {
    "Tensor.size": _size,
    "Tensor.dim": lambda w: len(_child(w).shape),
    "Tensor.ndimension": lambda w: len(_child(w).shape),
    "Tensor.numel": _numel,
    "Tensor.nelement": _numel,
    "torch.numel": _numel,
    "Tensor.__len__": _len,
    "Tensor.shape.__get__": _shape_of,
    "Tensor.ndim.__get__": lambda w: len(_child(w).shape),
    "Tensor.dtype.__get__": lambda w: _child(w).dtype,
    "Tensor.requires_grad.__get__": lambda w: _child(w).requires_grad,
    "Tensor.is_leaf.__get__": lambda w: _child(w).is_leaf,
    "Tensor.retains_grad.__get__": lambda w: False,
    "Tensor.grad_fn.__get__": lambda w: None,
    "Tensor.is_floating_point": lambda w: _child(w).dtype.is_floating_point,
    "torch.is_floating_point": lambda w: _child(w).dtype.is_floating_point,
    "Tensor.is_complex": lambda w: _child(w).dtype.is_complex,
    "torch.is_complex": lambda w: _child(w).dtype.is_complex,
    "Tensor.element_size": lambda w: _empty(_child(w).dtype).element_size(),
    "Tensor.is_contiguous": lambda w, *a, **k: True,
    "Tensor.__hash__": lambda w: id(w),
    "Tensor.__format__": _format,
    "Tensor.__repr__": lambda w, *a, **k: repr(w),
    "Tensor.__iter__": _iter,
    "Tensor.requires_grad.__set__": _set_requires_grad,
    **{
        f"Tensor.{a}.__get__": _static(f"Tensor.{a}.__get__")
        for a in [
            "device",
            "layout",
            "is_sparse",
            "is_cuda",
            "is_cpu",
            "is_meta",
            "is_quantized",
            "is_mkldnn",
            "is_nested",
            "is_mps",
            "is_xpu",
            "is_sparse_csr",
            "itemsize",
            "is_xla",
            "is_ipu",
            "is_vulkan",
            "is_maia",
            "is_mtia",
        ]
    },
    **{
        n: _reveal(n)
        for n in [
            "Tensor.__bool__",
            "Tensor.item",
            "Tensor.tolist",
            "Tensor.numpy",
            "Tensor.__float__",
            "Tensor.__int__",
            "Tensor.__index__",
            "Tensor.__array__",
            "Tensor.__complex__",
            "Tensor.__contains__",
            "Tensor.data_ptr",
            "Tensor.storage",
            "Tensor.untyped_storage",
            "Tensor.__array_wrap__",
        ]
    },
}


def dispatch(func, args: tuple, kwargs: dict) -> Any:
    """Run a torch call that involves a wrapper: locally for metadata, else on its location."""
    name = allowlist.name_of(func)
    local = LOCAL.get(name)
    if local is not None and args and isinstance(args[0], Wrapper):
        if isinstance(args[0], MultiWrapper):
            first = next(iter(args[0].child.child.values()))
            return local(first, *args[1:], **kwargs)
        return local(*args, **kwargs)
    return run_remote(name, args, kwargs)


def _flat_refs(args: tuple, ptrs: list) -> tuple | None:
    """One pass over flat arguments (the common case): their refs, or None to go the long way."""
    refs = []
    for a in args:
        if type(a) is Wrapper or type(a) is ParameterWrapper:
            ptrs.append(a)
            refs.append(m.ObjRef(_live_child(a).id_at_location))
        elif isinstance(a, (torch.Tensor, list, tuple, dict)):
            return None
        else:
            refs.append(a)
    return tuple(refs)


def run_remote(name: str, args: tuple, kwargs: dict) -> Any:
    """Send the operation ``name`` to where its pointer arguments live and wrap the result."""
    ptrs: list = []
    refs = None if kwargs else _flat_refs(args, ptrs)
    if refs is None:
        ptrs = []
        plains: list = []
        multis: list = []
        _scan(args, ptrs, plains, multis)
        _scan(kwargs, ptrs, plains, multis)
        if multis:
            return _run_multi(name, args, kwargs, multis, ptrs, plains)
        if plains:
            raise _not_collocated(name, ptrs[0], plains[0])
    first = ptrs[0]
    loc = _child(first).location_id
    for p in ptrs[1:]:
        if _child(p).location_id != loc:
            raise _not_collocated(name, first, p)
    if name not in allowlist.OPS:
        allowlist.lookup(name)  # raises the clear "not on the allowlist" error
    owner = _child(first).owner
    ptr = _live_child(first)
    if refs is None:
        refs, kw = _to_refs(args), _to_refs(kwargs)
    else:
        kw = {}
    msg = m.RunOp(name, refs, kw, torch.is_grad_enabled())
    value = ptr.send_to_location(msg)
    return _from_reply(value, owner, loc, ptrs)


def _from_reply(value: Any, owner: BaseWorker, loc: str, ptrs: list) -> Any:
    if value is None:
        return None
    if type(value) is m.Stored:
        if value.existing:
            for p in ptrs:
                if _child(p).id_at_location == value.id:
                    _child(p).update(value)
                    return p
        ptr = PointerTensor(owner, loc, value.id, value.shape, torch.float32)
        ptr.update(value)
        return wrap(ptr)
    if isinstance(value, tuple):
        return tuple(_from_reply(v, owner, loc, ptrs) for v in value)
    raise OperationNotAllowedError(f"unexpected reply from {loc}: {value!r}")


def _run_multi(name, args, kwargs, multis, ptrs, plains) -> Any:
    keys = list(multis[0].child.child)
    for mw in multis[1:]:
        if list(mw.child.child) != keys:
            raise TensorsNotCollocatedException(
                f"{allowlist.short(name)} mixes multi-pointers on different workers "
                f"({', '.join(keys)} vs {', '.join(mw.child.child)}); they must be on the "
                "same workers, in the same order."
            )
    if ptrs or plains:
        other = (ptrs or plains)[0]
        raise TensorsNotCollocatedException(
            f"{allowlist.short(name)} mixes a multi-pointer (on {', '.join(keys)}) with a "
            f"tensor on {_where(other)}; combine multi-pointers only with each other."
        )

    def pick(value, key):
        if isinstance(value, MultiWrapper):
            return value.child.child[key]
        if isinstance(value, (list, tuple)):
            return type(value)(pick(v, key) for v in value)
        if isinstance(value, dict):
            return {k: pick(v, key) for k, v in value.items()}
        return value

    results = {k: run_remote(name, pick(args, k), pick(kwargs, k)) for k in keys}
    return _combine(results)


def _combine(results: dict[str, Any]) -> Any:
    first = next(iter(results.values()))
    if first is None:
        return None
    if isinstance(first, tuple):
        return tuple(_combine({k: v[i] for k, v in results.items()}) for i in range(len(first)))
    return _wrap_multi(results)


# -- the hook ----------------------------------------------------------------------

_hook: TorchHook | None = None


def _tensor_send(self: torch.Tensor, *workers: Any) -> torch.Tensor:
    """Send a copy of this tensor to one worker (a pointer) or several (a multi-pointer)."""
    if isinstance(self, Wrapper):  # reached through torch.Tensor.send on a subclass
        return Wrapper.send(self, *workers)
    dests = _workers_arg(workers)
    me = local_worker()
    if len(dests) > 1:
        if len({d.id for d in dests}) != len(dests):
            raise TypeError("each worker can appear once in x.send(...)")
        return _wrap_multi({d.id: _tensor_send(self, d) for d in dests})
    dest = dests[0]
    if dest is me:
        raise PointerChainError("this tensor is already here on me; send it to another worker")
    new_id = me.send_msg(m.SendObject(self.detach() if not self.is_leaf else self), dest)
    ptr = PointerTensor(me, dest.id, new_id, self.shape, self.dtype, self.requires_grad)
    return wrap(ptr)


def _tensor_get(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """Plain tensors are already here; ``get`` is for pointers."""
    raise PointerChainError(
        "this tensor is already here on me, not a pointer, so there is nothing to .get(); "
        "did you call .get() twice?"
    )


def _tensor_move(self: torch.Tensor, dest: Any) -> torch.Tensor:
    """A local tensor moves to a worker by ``send``."""
    raise PointerChainError("this tensor is here on me: use x.send(worker) to give it away")


def local_worker() -> BaseWorker:
    """The local worker ``me`` (made by ``TorchHook``)."""
    if _hook is None:
        raise RuntimeError("hook torch first: hook = sy.TorchHook(torch)")
    return _hook.local_worker


class TorchHook:
    """Adds fedlab's methods to torch and creates the local worker ``me``."""

    def __new__(cls, torch_module: Any = torch, *args: Any, **kwargs: Any):
        if _hook is not None:
            warnings.warn(
                "torch is already hooked; reusing the existing hook and its local worker 'me'",
                stacklevel=2,
            )
            return _hook
        return super().__new__(cls)

    def __init__(
        self, torch_module: Any = torch, local_worker: BaseWorker | None = None, **kwargs: Any
    ) -> None:
        global _hook
        if _hook is self:
            return
        if torch_module is not torch:
            raise TypeError("pass the torch module itself: sy.TorchHook(torch)")
        self.torch = torch_module
        self.local_worker = local_worker or VirtualWorker(self, id="me")
        for w in worker.all_workers():
            w.hook = w.hook or self
        torch.Tensor.send = _tensor_send
        torch.Tensor.get = _tensor_get
        torch.Tensor.move = _tensor_move
        from fedlab import module

        module.install()
        _hook = self

    def __repr__(self) -> str:
        return f"<TorchHook local_worker:{self.local_worker.id}>"
