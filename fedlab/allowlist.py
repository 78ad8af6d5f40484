"""The operations a worker will run: an explicit allowlist, and nothing else.

An operation travels by name (``"Tensor.add"``, ``"torch.cat"``, ``"F.linear"``); a
worker looks the name up here and refuses any name it does not find. That is fedlab's
security boundary: a peer can make a worker compute, never run code.

The list is every function of ``torch.nn.functional`` and every pointwise, reduction,
linear-algebra, shape and random operation of torch on tensors (the functions torch
itself lets a tensor subclass intercept), minus those written out in ``EXCLUDED`` with
the reason: they would read or change memory outside a tensor's values, reveal values,
run Python functions, or need a device or tensor kind no worker holds. Operations that
would hand out uninitialised memory (``new_empty``, ``empty_like``) give zeros instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.overrides import get_overridable_functions

from fedlab.exceptions import OperationNotAllowedError

_REASONS = {
    "it reads or changes memory outside the tensor's own values": """Tensor.set_ Tensor.resize_
        Tensor.resize Tensor.resize_as_ Tensor.resize_as Tensor.as_strided Tensor.as_strided_
        Tensor.as_strided_scatter torch.as_strided_copy torch.as_strided_scatter
        Tensor.share_memory_ Tensor.pin_memory Tensor.is_pinned Tensor.is_shared
        Tensor.record_stream Tensor.data_ptr Tensor.const_data_ptr Tensor.storage
        Tensor.untyped_storage Tensor.storage_type Tensor.storage_offset Tensor.is_set_to
        Tensor.module_load Tensor.new Tensor.new_empty_strided Tensor.__setstate__
        Tensor.__reduce_ex__
        Tensor.__deepcopy__ Tensor.__dlpack__ Tensor.__dlpack_device__ Tensor.as_subclass
        torch.sym_float torch.sym_int torch.sym_ite torch.sym_max torch.sym_min torch.sym_not
        torch.sym_sum""",
    "the size of its result depends on the values, so no limit can be checked": """
        Tensor.bincount torch.bincount""",
    "it gives the values themselves, which only .get() may bring back": """Tensor.item
        Tensor.tolist Tensor.numpy Tensor.__array__ Tensor.__array_wrap__ Tensor.__bool__
        Tensor.__nonzero__ Tensor.__float__ Tensor.__int__ Tensor.__long__ Tensor.__index__
        Tensor.__complex__ Tensor.__format__ Tensor.__repr__ Tensor.__len__
        Tensor.__contains__ Tensor.__reversed__ Tensor.__iter__ Tensor.__hash__""",
    "it runs a Python function, and code never travels": """Tensor.apply_ Tensor.map_
        Tensor.map2_ Tensor.register_hook Tensor.register_post_accumulate_grad_hook
        F.handle_torch_function F.has_torch_function F.has_torch_function_unary
        F.has_torch_function_variadic F.boolean_dispatch F.assert_int_or_pair torch.autocast""",
    "it needs a GPU, or a sparse, quantized or packed tensor, which workers do not hold": """
        Tensor.cuda Tensor.xpu Tensor.ipu Tensor.mtia Tensor.hpu Tensor.mps Tensor.to_mkldnn
        Tensor.to_sparse Tensor.to_sparse_csr Tensor.to_sparse_csc Tensor.to_sparse_bsr
        Tensor.to_sparse_bsc Tensor.to_sparse_coo
        Tensor.coalesce Tensor.sparse_mask Tensor.sparse_resize_ Tensor.resize_as_sparse_
        Tensor.sparse_resize_and_clear_ Tensor.dequantize Tensor.int_repr Tensor.qscheme
        Tensor.q_scale Tensor.q_zero_point Tensor.q_per_channel_axis
        Tensor.q_per_channel_scales Tensor.q_per_channel_zero_points F.grouped_mm
        F.scaled_mm F.scaled_grouped_mm""",
}
EXCLUDED: dict[str, str] = {n: why for why, names in _REASONS.items() for n in names.split()}
# Prefixes excluded whole, for the same reasons: GPU kernels, quantization, packed weights.
_EXCLUDED_PREFIXES = ("torch.miopen", "torch.fbgemm", "torch.quantize", "torch.quantized",
                      "torch.q_", "torch.fake_quantize", "torch.fused_moving", "torch.choose_q",
                      "torch.dequantize", "torch.int_repr", "torch.sym_", "torch._")  # fmt: skip

_SPACES = {torch: "torch.", torch.functional: "torch.", torch.linalg: "torch.linalg.",
           torch.special: "torch.special.", torch.fft: "torch.fft."}  # fmt: skip
# Operators torch does not list as interceptable, yet are, and random ``*_like`` functions.
_EXTRA = "Tensor.__pow__ Tensor.__rtruediv__ Tensor.__itruediv__ Tensor.__ipow__ \
Tensor.__neg__ Tensor.__pos__ Tensor.__abs__ torch.rand_like torch.randn_like torch.randint_like"
# Attribute access travels as operations too (``w.grad``, ``w.data = ...``, ``w.T``).
_GETTERS = "grad data T mT H mH real imag".split()


def _build() -> dict[str, Callable]:
    overridable = get_overridable_functions()
    found: list[tuple[str, object]] = []
    for space, prefix in _SPACES.items():  # (named as their module names them)
        mine = {id(f) for f in overridable.get(space, ())}  # (all alive: torch's functions)
        found += [(prefix + n, f) for n in dir(space) if id(f := getattr(space, n)) in mine]
    found += [(f"F.{n}", getattr(F, n)) for n in dir(F) if _is_function(getattr(F, n))]
    operators = {f.__name__ for f in overridable[torch.Tensor] if hasattr(f, "__name__")}
    for n in dir(torch.Tensor):  # methods; of the dunders, only torch's operators
        if (n in operators or not n.startswith("_")) and callable(getattr(torch.Tensor, n)):
            found.append((f"Tensor.{n}", getattr(torch.Tensor, n)))
    for name in _EXTRA.split():
        space, attr = name.rsplit(".", 1)
        found.append((name, getattr(torch.Tensor if space == "Tensor" else torch, attr)))
    ops = {}
    for name, fn in found:
        private = name.split(".")[-1].startswith("_") and not name.endswith("__")
        if not private and name not in EXCLUDED and not name.startswith(_EXCLUDED_PREFIXES):
            ops.setdefault(name, fn)
    # ``empty`` kinds give zeros: never memory that another tensor left behind.
    ops["Tensor.new_empty"] = lambda t, *a, **k: torch.Tensor.new_empty(t, *a, **k).zero_()
    ops["torch.empty_like"] = lambda t, *a, **k: torch.empty_like(t, *a, **k).zero_()
    for attr in _GETTERS:
        ops[f"Tensor.{attr}.__get__"] = getattr(torch.Tensor, attr).__get__
    for attr in ("grad", "data", "requires_grad"):
        ops[f"Tensor.{attr}.__set__"] = lambda t, value, attr=attr: setattr(t, attr, value)
    return ops


def _is_function(obj: object) -> bool:
    return callable(obj) and not isinstance(obj, type) and "torch" in (obj.__module__ or "")


OPS: dict[str, Callable] = _build()

# Reverse lookup, from what ``__torch_function__`` receives to the name that travels.
# (Property getters and setters arrive as fresh method-wrappers: ``name_of`` names them.)
NAMES: dict[object, str] = {}
for _name, _fn in OPS.items():
    if not _name.endswith(("__get__", "__set__")):
        NAMES.setdefault(_fn, _name)
NAMES[torch.Tensor.new_empty] = "Tensor.new_empty"
NAMES[torch.empty_like] = "torch.empty_like"


def name_of(func: Callable) -> str:
    """The travelling name of a torch callable (allowed or not), for messages and errors."""
    name = NAMES.get(func)
    if name is not None:
        return name
    if type(func).__name__ == "method-wrapper":  # a property's __get__ / __set__
        return f"Tensor.{func.__self__.__name__}.{func.__name__}"
    qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func))
    module = getattr(func, "__module__", None) or ""
    if module.startswith("torch.nn.functional"):
        return f"F.{qual}"
    if qual.startswith(("TensorBase.", "Tensor.")):
        return "Tensor." + qual.split(".", 1)[1]
    return f"torch.{qual.rsplit('.', 1)[-1]}" if "VariableFunctions" in qual else qual


def lookup(name: str) -> Callable:
    """The callable for an allowed operation name; anything else is refused."""
    fn = OPS.get(name) if isinstance(name, str) else None
    if fn is None:
        why = EXCLUDED.get(name) if isinstance(name, str) else None
        raise OperationNotAllowedError(
            f"the operation {name!r} is not on fedlab's allowlist, so no worker will run it"
            + (f": {why}. " if why else ". ")
            + "Workers run tensor arithmetic, shape, reduction, linear algebra, autograd and "
            "layer operations; to use something else, .get() the tensor and run it locally."
        )
    return fn


def short(name: str) -> str:
    """A student-friendly name: ``Tensor.__add__`` -> ``__add__``, ``F.linear`` -> ``F.linear``."""
    return name.removeprefix("Tensor.").removeprefix("torch.")
