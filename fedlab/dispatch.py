"""Dispatch: where a torch call on a pointer runs.

Metadata a pointer caches (shape, dtype, ...) is answered here without a message;
calls that would reveal values are refused; everything else travels to the worker
that holds the data as one ``RunOp`` message, after the collocation and allowlist
checks, and comes back as new pointers (or the same pointer, for in-place calls).
"""

from __future__ import annotations

from typing import Any

import torch

from fedlab import allowlist, events, serde, worker
from fedlab import messages as m
from fedlab.exceptions import (
    OperationNotAllowedError,
    RemoteValueError,
    TensorsNotCollocatedException,
)
from fedlab.messages import RunOp, Stored
from fedlab.oprequest import encode_op, flat_value
from fedlab.pointer import PointerTensor
from fedlab.serde import DTYPES
from fedlab.worker import BaseWorker, get_worker
from fedlab.wrapper import (
    MultiWrapper,
    ParameterWrapper,
    Wrapper,
    _child,
    _empty,
    _live_child,
    _wrap_multi,
    is_pointer,
    wrap,
)


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
        __tracebackhide__ = True
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


# Operations that may change which tensor some ``.grad`` is (or whether there is one).
GRAD_CHANGING = frozenset(
    f"Tensor.{n}"
    for n in "backward grad.__set__ data.__set__ requires_grad_ requires_grad.__set__ "
    "retain_grad detach_".split()
)


def _grad(w: Wrapper) -> Any:
    """``w.grad``: a pointer to the remote gradient, cached until a gradient may change.

    An optimizer reads ``p.grad`` several times per step; asking once per change keeps
    the message log to what a student would expect. Like torch, it is the same object
    each time.
    """
    __tracebackhide__ = True
    ptr = _live_child(w)
    if not ptr.owner.caches_grads:
        return run_remote("Tensor.grad.__get__", (w,), {})
    cached = ptr.grad_cache
    if ptr.grad_epoch == worker.grad_epoch:
        if cached is None:
            return None
        c = cached.__dict__.get("child")
        # Still usable: not fetched with .get(), not moved away, not from before a reset.
        usable = c.id_at_location is not None and c.location_id == ptr.location_id
        if usable and c.generation == worker.current_generation:
            return cached
    value = run_remote("Tensor.grad.__get__", (w,), {})
    ptr.grad_cache, ptr.grad_epoch = value, worker.grad_epoch
    return value


def dispatch(func, args: tuple, kwargs: dict) -> Any:
    """Run a torch call that involves a wrapper: locally for metadata, else on its location."""
    __tracebackhide__ = True
    name = allowlist.name_of(func)
    if name == "Tensor.grad.__get__" and type(args[0]) in (Wrapper, ParameterWrapper):
        return _grad(args[0])
    local = LOCAL.get(name)
    if local is not None and args and isinstance(args[0], Wrapper):
        if isinstance(args[0], MultiWrapper):
            first = next(iter(args[0].child.child.values()))
            return local(first, *args[1:], **kwargs)
        return local(*args, **kwargs)
    return run_remote(name, args, kwargs)


def _flat_refs(
    values: Any,
    ptrs: list,
    codes: bytearray,
    numbers: list,
    texts: bytearray,
    loc: str | None = None,
) -> str | None:
    """One pass over flat values (the common case): their request codes, and the location.

    Codes and values are those of ``fedlab.oprequest``: pointers travel as their ids.
    Returns "" to go the long way, which also explains every problem (a local tensor,
    pointers on two workers, a pointer that is no longer usable). A value with no code
    (a dtype, a slice) is marked 0: the request is then encoded as a general message.
    """
    gen = worker.current_generation
    for a in values:
        t = type(a)
        if t is Wrapper or t is ParameterWrapper:
            ptr = a.__dict__.get("child")
            if type(ptr) is not PointerTensor or ptr.id_at_location is None:
                return ""
            if ptr.generation != gen or (loc is not None and ptr.location_id != loc):
                return ""
            loc = ptr.location_id
            ptrs.append(a)
            codes.append(82)  # R
            numbers.append(ptr.id_at_location)
        elif isinstance(a, (torch.Tensor, list, tuple, dict)):
            return ""
        elif not flat_value(a, codes, numbers, texts):
            codes.append(0)
    return loc


def run_remote(name: str, args: tuple, kwargs: dict) -> Any:
    """Send the operation ``name`` to where its pointer arguments live and wrap the result."""
    __tracebackhide__ = True
    ptrs: list = []  # the wrappers involved: an in-place result is one of them
    codes, numbers, texts = bytearray(), [], bytearray()
    loc = _flat_refs(args, ptrs, codes, numbers, texts)
    if kwargs and loc != "":
        loc = _flat_refs(kwargs.values(), ptrs, codes, numbers, texts, loc)
    if not loc:
        ptrs = []
        plains: list = []
        multis: list = []
        _scan(args, ptrs, plains, multis)
        _scan(kwargs, ptrs, plains, multis)
        if multis:
            return _run_multi(name, args, kwargs, multis, ptrs, plains)
        if plains:
            raise _not_collocated(name, ptrs[0], plains[0])
        loc = _child(ptrs[0]).location_id
        for p in ptrs[1:]:
            if _child(p).location_id != loc:
                raise _not_collocated(name, ptrs[0], p)
        codes.append(0)  # the long way's values go as a general message
    owner = _child(ptrs[0]).owner
    if name not in allowlist.OPS:
        allowlist.lookup(name)  # raises the clear "not on the allowlist" error
    if name in GRAD_CHANGING:
        worker.grads_changed()
    grad = torch.is_grad_enabled()
    data = None
    if 0 not in codes:  # the usual request: written straight from the values, no RunOp
        data = encode_op(owner.id, loc, name, grad, len(args), tuple(kwargs), codes, numbers, texts)
    if data is None or events.bus.callbacks:  # (listeners see the message itself)
        # raises if a pointer is no longer usable (the long way)
        msg = RunOp(name, _to_refs(args), _to_refs(kwargs), grad)
        if data is None:
            data = serde.encode_envelope(owner.id, loc, msg)
    else:
        msg = None
    value = owner.send_bytes(data, get_worker(loc), msg)
    return _from_reply(value, owner, loc, ptrs)


def _from_reply(value: Any, owner: BaseWorker, loc: str, ptrs: list) -> Any:
    if type(value) is Stored:
        if value.existing:
            for p in ptrs:
                if _child(p).id_at_location == value.id:
                    _child(p).update(value)
                    return p
        return wrap(
            PointerTensor(
                owner,
                loc,
                value.id,
                value.shape,
                DTYPES[value.dtype],
                value.requires_grad,
                value.is_leaf,
            )
        )
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(_from_reply(v, owner, loc, ptrs) for v in value)
    raise OperationNotAllowedError(f"unexpected reply from {loc}: {value!r}")


def _run_multi(name, args, kwargs, multis, ptrs, plains) -> Any:
    __tracebackhide__ = True
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
