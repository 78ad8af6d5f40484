"""Fixed precision: floats kept as integers, x -> round(x * base**precision_fractional).

With base 10 and 3 fractional digits, 0.1 is kept as 100 and -2.5 as -2500. Adding
two encoded numbers adds the integers; multiplying them multiplies the scales too
(0.1 * 0.1 -> 100 * 100 = 10000, which means 0.01 at scale 10**6), so a product is
divided back by the scale: floor division, the "truncation" (for a shared tensor, see
``beaver.divide``). Comparisons give 0 or 1, encoded (0 or 1000).

The encoded integers (the ``child``) can be a plain int64 tensor, a pointer to one on
a worker (every operation then runs there), or an ``AdditiveSharingTensor``: this
layer is written once for all three, with torch operations on its child.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fedlab.secure.errors import SecureError
from fedlab.secure.shared import AdditiveSharingTensor, reconstruct, share
from fedlab.secure.wrapper import SecureWrapper, is_secure, wrap
from fedlab.wrapper import is_pointer

LIMIT = 2**62  # encoded values must stay well inside int64


def _kind(child: Any) -> str:
    if is_pointer(child):
        return f"a pointer to {child.location.id}"
    return "shared" if is_secure(child) else "here"


def encode(x: Any, base: int = 10, precision_fractional: int = 3) -> Any:
    """The int64 encoding of a tensor (a pointer's is made on its worker)."""
    scale = base**precision_fractional
    if is_pointer(x):
        if x.dtype.is_floating_point:
            return (x.double() * scale).round().long()
        return x.long() * scale
    if not isinstance(x, torch.Tensor):
        x = torch.tensor(x)
    if x.dtype.is_floating_point:
        y = torch.round(x.detach().double() * scale)
    else:
        y = x.detach().double() * scale
    if not torch.isfinite(y).all() or (y.numel() and y.abs().max() >= LIMIT):
        raise SecureError(
            f"fix_precision() keeps values up to {LIMIT / scale:.3g} (at base {base}, "
            f"{precision_fractional} fractional digits); this tensor has larger, infinite "
            "or NaN values"
        )
    return y.long() if x.dtype.is_floating_point else x.detach().long() * scale


def decode(child: Any, scale: int) -> Any:
    """Floats back from encoded integers (a pointer's are decoded on its worker)."""
    return (child.double() / scale).float()


class FixedPrecisionTensor:
    """Numbers with ``precision_fractional`` digits after the point, as int64 ``child``."""

    dtype = torch.float32  # it stands for floats: autograd and optimizers treat it so
    OPS: dict[str, Callable[..., Any]] = {}
    SUPPORTED = "+ - * / @ (mm, matmul, linear), ** n, comparisons, relu, abs, max/argmax, "
    SUPPORTED += "sum, mean and shape operations"

    def __init__(self, child: Any, base: int = 10, precision_fractional: int = 3) -> None:
        if isinstance(base, bool) or not isinstance(base, int) or base < 2:
            raise SecureError(f"base must be an integer of 2 or more, not {base!r}")
        if not isinstance(precision_fractional, int) or not 0 <= precision_fractional <= 9:
            raise SecureError("precision_fractional must be an integer from 0 to 9")
        if base**precision_fractional >= 2**31:
            raise SecureError("base**precision_fractional must stay below 2**31")
        self.child = child
        self.base = base
        self.precision_fractional = precision_fractional

    @property
    def scale(self) -> int:
        """base**precision_fractional: what 1.0 is encoded as."""
        return self.base**self.precision_fractional

    @property
    def shape(self) -> torch.Size:
        """The shape of the values."""
        return torch.Size(self.child.shape)

    @property
    def location(self) -> Any:
        """Where the encoded integers are: a worker, the parties, or None (here)."""
        if is_pointer(self.child) or is_secure(self.child):
            return self.child.location
        return None

    def __repr__(self) -> str:
        return f"FixedPrecisionTensor>{self.child!r}"

    def like(self, child: Any) -> FixedPrecisionTensor:
        """The same encoding around another child."""
        return FixedPrecisionTensor(child, self.base, self.precision_fractional)

    def assign(self, other: FixedPrecisionTensor) -> None:
        """Take over another tensor's values (the result of an in-place operation)."""
        same_encoding(self, other)
        if is_secure(self.child) and is_secure(other.child):
            self.child.child.assign(other.child.child)
        else:
            self.child = other.child

    def copy(self) -> FixedPrecisionTensor:
        """A copy (on the same worker, or with fresh shares)."""
        child = self.child
        return self.like(child.clone() if _plain(child) else child.copy())

    # -- the course's methods ----------------------------------------------------------
    def get_wrapped(self, w: SecureWrapper) -> SecureWrapper:
        """``.get()``: the encoded integers come home (a shared tensor's are rebuilt)."""
        if _plain(self.child):
            raise SecureError(
                "this fixed-precision tensor is already here; .float_precision() decodes it"
            )
        got = self.child.get()
        return w if got is self.child else wrap(self.like(got))

    def float_precision(self) -> Any:
        """Decode to floats (here, or on the worker the pointer points to)."""
        if is_secure(self.child):
            raise SecureError(
                "a shared tensor cannot be decoded where it is: .get() it first, then "
                ".float_precision() (x.get().float_precision())"
            )
        return decode(self.child, self.scale)

    def bring_home(self) -> bool:
        """Fetch a shared encoding's shares and add them up here (still encoded)."""
        if is_secure(self.child) and isinstance(self.child.child, AdditiveSharingTensor):
            self.child = reconstruct(self.child.child)
            return True
        return False

    def share_wrapped(self, w: SecureWrapper, *workers: Any, **kwargs: Any) -> SecureWrapper:
        """``.share(*workers, crypto_provider=..., requires_grad=...)`` of the encoding."""
        if is_secure(self.child):
            raise SecureError("this tensor is already shared; .get() it first to share it again")
        requires_grad = bool(kwargs.pop("requires_grad", False))
        provider = kwargs.pop("crypto_provider", None)
        kwargs.pop("protocol", None)  # PySyft's choice of protocol: fedlab has one
        if kwargs:
            raise SecureError(f"share() does not take {', '.join(kwargs)}")
        return wrap(self.like(share(self.child, workers, provider)), requires_grad)


def _plain(child: Any) -> bool:
    return type(child) is torch.Tensor


def same_encoding(a: FixedPrecisionTensor, b: FixedPrecisionTensor) -> None:
    """Refuse to mix encodings (the integers would mean different numbers)."""
    if (a.base, a.precision_fractional) != (b.base, b.precision_fractional):
        raise SecureError(
            f"these fixed-precision tensors use different encodings (base {a.base}, "
            f"{a.precision_fractional} digits vs base {b.base}, {b.precision_fractional}); "
            "fix_precision() both the same way"
        )


def fix_precision(x: Any, base: int = 10, precision_fractional: int = 3, **kwargs: Any) -> Any:
    """``x.fix_precision()``: a fixed-precision tensor (a pointer's is encoded on its worker)."""
    kwargs.pop("check_range", None)
    kwargs.pop("dtype", None)
    if kwargs:
        raise SecureError(f"fix_precision() does not take {', '.join(kwargs)}")
    if not is_pointer(x) and type(x) not in (torch.Tensor, torch.nn.Parameter):
        raise SecureError(f"fix_precision() takes a tensor or a pointer, not {type(x).__name__}")
    fpt = FixedPrecisionTensor(None, base, precision_fractional)
    fpt.child = encode(x if is_pointer(x) else x.detach(), base, precision_fractional)
    # (Like PySyft, gradients are tracked again only with share(..., requires_grad=True).)
    return wrap(fpt)
