"""Securing federated learning: fixed precision, additive secret sharing, Beaver triples.

``x.fix_precision()`` encodes floats as integers; ``x.share(bob, alice,
crypto_provider=james)`` splits them into random int64 shares that sum to x modulo
2**64, one per worker; ``+ - * @``, comparisons, ``relu`` and ``argmax`` then run on
the shares, and ``.get()`` adds them up again. Models and optimizers follow
(``model.fix_precision().share(...)``, ``optim.SGD(...).fix_precision()``).

Everything is built on the public pointer API (send, remote operations, move, get),
like a student could: see ``shared.py`` (sharing), ``linear.py`` (what needs no help),
``beaver.py`` (products and division, with the crypto provider), ``compare.py``
(comparisons), ``precision.py`` and ``fixed_ops.py`` (fixed precision),
``autograd.py`` (training) and ``models.py``.

What it protects, and from whom: a party sees only its own shares, which are
uniformly random whatever the secret; the crypto provider sees only the randomness
it makes. That holds against honest-but-curious parties, as long as no party
colludes with the provider and not all parties collude. See the README.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fedlab.secure import autograd, beaver, compare, fixed_ops, linear  # noqa: F401 (their ops)
from fedlab.secure.audit import carries, received
from fedlab.secure.errors import SecureError
from fedlab.secure.labels import label
from fedlab.secure.models import (
    module_fix_precision,
    module_float_precision,
    module_share,
    optimizer_fix_precision,
)
from fedlab.secure.precision import FixedPrecisionTensor, fix_precision
from fedlab.secure.shared import AdditiveSharingTensor, share
from fedlab.secure.wrapper import SecureParameter, SecureWrapper, is_secure

__all__ = [
    "AdditiveSharingTensor",
    "FixedPrecisionTensor",
    "SecureError",
    "SecureParameter",
    "SecureWrapper",
    "carries",
    "install",
    "is_secure",
    "label",
    "received",
]

FixedPrecisionTensor.OPS["backward"] = autograd.backward
_SHARE_OPTIONS = {"field": (None, 2**64), "dtype": (None, "long"), "protocol": None}


def _tensor_share(self: torch.Tensor, *workers: Any, crypto_provider: Any = None,
                  requires_grad: bool = False, **kwargs: Any) -> Any:  # fmt: skip
    """Split this integer tensor (or the one a pointer points to) into additive shares."""
    __tracebackhide__ = True
    for key, value in kwargs.items():
        allowed = _SHARE_OPTIONS.get(key, ())
        if key not in _SHARE_OPTIONS or (allowed is not None and value not in allowed):
            raise SecureError(
                f"share() does not take {key}={value!r}: fedlab's shares are int64 tensors, "
                "added modulo 2**64"
            )
    if requires_grad:
        raise SecureError("requires_grad=True is for fixed-precision tensors: x.fix_prec().share()")
    return share(self, workers, crypto_provider)


def _tensor_fix_precision(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    """Encode this float tensor (or the one a pointer points to) as fixed-precision integers."""
    __tracebackhide__ = True
    return fix_precision(self, *args, **kwargs)


def _tensor_float_precision(self: torch.Tensor) -> Any:
    """Refused: only a fixed-precision tensor can be decoded."""
    __tracebackhide__ = True
    raise SecureError("this tensor is not fixed-precision: float_precision() decodes x.fix_prec()")


def install() -> None:
    """Add ``fix_precision``/``fix_prec``/``float_precision``/``float_prec``/``share`` to
    ``torch.Tensor`` and ``nn.Module``, and ``fix_precision`` to optimizers (only adds)."""
    tensor_methods = {
        "fix_precision": _tensor_fix_precision,
        "fix_prec": _tensor_fix_precision,
        "float_precision": _tensor_float_precision,
        "float_prec": _tensor_float_precision,
        "share": _tensor_share,
    }
    module_methods = {
        "fix_precision": module_fix_precision,
        "fix_prec": module_fix_precision,
        "float_precision": module_float_precision,
        "float_prec": module_float_precision,
        "share": module_share,
    }
    for name, fn in tensor_methods.items():
        setattr(torch.Tensor, name, fn)
    for name, fn in module_methods.items():
        setattr(nn.Module, name, fn)
    torch.optim.Optimizer.fix_precision = optimizer_fix_precision
    torch.optim.Optimizer.fix_prec = optimizer_fix_precision


install()
