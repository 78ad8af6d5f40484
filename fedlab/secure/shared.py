"""Additive secret sharing: a value x kept as random int64 shares that sum to x mod 2**64.

A share is an ordinary int64 tensor in a worker's store; an ``AdditiveSharingTensor``
is the record of where the shares are: one pointer per party, and the crypto
provider who helps with multiplications and comparisons. Everything here uses the
pointer API only (send, remote torch operations, move, get), so every share travels
as a message the trace and the panel show.

Linear operations need no help: each party adds (or scales, or reshapes) its own
share. Multiplication and comparison are in ``beaver.py`` and ``compare.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch

from fedlab import registry
from fedlab.secure import labels
from fedlab.secure.errors import SecureError
from fedlab.secure.wrapper import SecureWrapper, is_secure, wrap
from fedlab.worker import BaseWorker
from fedlab.wrapper import is_pointer

LOW = -(2**63)  # ``random_(LOW, None)``: uniform over all 2**64 int64 values
_numbers = itertools.count(1)


class AdditiveSharingTensor:
    """The record of a secret-shared int64 tensor: ``child`` maps party id to its share."""

    dtype = torch.int64
    OPS: dict[str, Callable[..., Any]] = {}
    SUPPORTED = "+ - * @ (mm, matmul, linear), // by a public integer, comparisons, relu, "
    SUPPORTED += "max/argmax, sum and shape operations"

    def __init__(self, shares: dict[str, Any], crypto_provider: Any, holder: str | None = None):
        self.child = shares
        self.crypto_provider = crypto_provider
        self.holder = holder  # a worker that shared a value it held: hand over with .get()
        self.number = next(_numbers)
        labels.register_shares(self)

    # -- what it is ---------------------------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        """The shape of the secret (every share has it)."""
        return torch.Size(next(iter(self.child.values())).shape)

    @property
    def parties(self) -> list[str]:
        """The ids of the workers holding shares, in order."""
        return list(self.child)

    @property
    def location(self) -> list[Any]:
        """The workers holding the shares."""
        return [registry.get_worker(w) for w in self.child]

    locations = location

    def __repr__(self) -> str:
        held = f" held by {self.holder}: .get() it to use it" if self.holder else ""
        out = f"[AdditiveSharingTensor #{self.number}{held}]"
        for ptr in self.child.values():
            out += f"\n\t-> {ptr!r}"
        return out + f"\n\t*crypto provider: {self.crypto_provider.id}*"

    def like(self, shares: dict[str, Any]) -> AdditiveSharingTensor:
        """A new record with the same parties and provider."""
        return AdditiveSharingTensor(shares, self.crypto_provider)

    def assign(self, other: AdditiveSharingTensor) -> None:
        """Take over another record's shares (an in-place operation's result)."""
        same(self, other)
        self.child = other.child
        labels.register_shares(self)

    def copy(self) -> AdditiveSharingTensor:
        """Fresh copies of every share, on the same parties."""
        return self.like({w: p.copy() for w, p in usable(self).child.items()})

    # -- the course's methods --------------------------------------------------------
    def get_wrapped(self, w: SecureWrapper) -> Any:
        """``.get()``: the record comes home, or (if home) the shares are fetched and summed."""
        if self.holder is not None:
            self.holder = None  # the pointers were always ours; only the record moves
            return w
        return reconstruct(self)

    def share_wrapped(self, w: SecureWrapper, *workers: Any, **kwargs: Any) -> Any:
        """Refused: a shared tensor is shared already."""
        raise SecureError("this tensor is already shared; .get() it first to share it again")

    def float_precision(self) -> Any:
        """Refused: an integer shared tensor has no encoding to undo."""
        raise SecureError("an integer shared tensor has no precision: .get() gives its values")


def same(a: AdditiveSharingTensor, b: AdditiveSharingTensor) -> None:
    """Refuse to combine shared tensors of different parties or crypto providers."""
    if list(a.child) != list(b.child):
        raise SecureError(
            f"these shared tensors are held by different parties ({', '.join(a.child)} and "
            f"{', '.join(b.child)}); share both among the same workers, in the same order"
        )
    if a.crypto_provider.id != b.crypto_provider.id:
        raise SecureError(
            f"these shared tensors have different crypto providers ({a.crypto_provider.id} "
            f"and {b.crypto_provider.id}); share both with the same crypto_provider="
        )


def usable(a: AdditiveSharingTensor) -> AdditiveSharingTensor:
    """The record itself, once it is home (see ``holder``)."""
    if a.holder is not None:
        raise SecureError(
            f"this shared tensor's record is still with {a.holder}, who shared it; call "
            ".get() on it first (that brings home the pointers to the shares, never a value)"
        )
    return a


# -- making and ending a sharing ------------------------------------------------------------
def workers_arg(workers: tuple) -> list[Any]:
    """The parties of ``share(*workers)`` as worker objects, with a clear error if wrong."""
    if len(workers) == 1 and isinstance(workers[0], (list, tuple)):
        workers = tuple(workers[0])
    out = [registry.get_worker(w) if isinstance(w, str) else w for w in workers]
    if len(out) < 2:
        raise SecureError("share among two workers at least, e.g. x.share(bob, alice)")
    if not all(isinstance(w, BaseWorker) for w in out):
        raise SecureError("share() takes workers, e.g. x.share(bob, alice, crypto_provider=james)")
    if len({w.id for w in out}) != len(out):
        raise SecureError("each worker can hold one share: name every party once")
    return out


def share(secret: torch.Tensor, workers: tuple, crypto_provider: Any = None) -> SecureWrapper:
    """Split an integer tensor (local, or a pointer) into shares for ``workers``."""
    parties = workers_arg(workers)
    me = registry.local_worker()
    provider = crypto_provider if crypto_provider is not None else me
    if isinstance(provider, str):
        provider = registry.get_worker(provider)
    if any(w.id == me.id for w in parties):
        raise SecureError("me cannot hold a share: share among other workers")
    if secret.dtype.is_floating_point:
        raise SecureError(
            "share() splits integers, and this tensor holds floats: encode it first with "
            "x.fix_precision().share(...) (or fix_prec())"
        )
    if is_pointer(secret):
        return wrap(_share_where_it_lives(secret, parties, provider))
    if is_secure(secret) or type(secret) is not torch.Tensor:
        raise SecureError(f"share() takes a tensor or a pointer, not {type(secret).__name__}")
    x = secret.detach().long()
    # The randomness is made where the secret is (here); each message carries one share.
    shares = [torch.empty_like(x).random_(LOW, None) for _ in parties[1:]]
    shares.insert(0, x - sum(shares, torch.zeros_like(x)))
    return wrap(AdditiveSharingTensor(
        {w.id: s.send(w) for w, s in zip(parties, shares)}, provider
    ))  # fmt: skip


def _share_where_it_lives(secret: Any, parties: list[Any], provider: Any) -> Any:
    """Share a value that lives on a worker: its random shares are made there, and each
    goes from there straight to its party (``move``): the value never passes through me."""
    home = secret.location.id
    x = secret if secret.dtype == torch.int64 else secret.long()
    keeper = home if home in [w.id for w in parties] else parties[0].id
    shares = {w.id: torch.zeros_like(x).random_(LOW, None) for w in parties if w.id != keeper}
    rest = x
    for s in shares.values():
        rest = rest - s
    shares[keeper] = rest
    for w in parties:
        if w.id != home:
            shares[w.id].move(w)
    return AdditiveSharingTensor({w.id: shares[w.id] for w in parties}, provider, holder=home)


def reconstruct(a: AdditiveSharingTensor) -> torch.Tensor:
    """Fetch every share (they leave their workers) and add them up: the secret, mod 2**64."""
    values = [p.get() for p in a.child.values()]
    labels.forget(a)
    total = values[0].clone()
    for v in values[1:]:
        total += v  # int64 addition wraps around, which is addition mod 2**64
    return total


# -- helpers for the protocols -----------------------------------------------------------------
def ast_of(x: Any) -> AdditiveSharingTensor | None:
    """The record inside a shared wrapper (None for anything else)."""
    if isinstance(x, SecureWrapper) and isinstance(x.child, AdditiveSharingTensor):
        return usable(x.child)
    return None


def on_each(a: AdditiveSharingTensor, fn: Callable[[Any], Any]) -> SecureWrapper:
    """Apply ``fn`` to every party's share (a local step: no share leaves its worker)."""
    return wrap(a.like({w: fn(p) for w, p in a.child.items()}))


def public_on(value: Any, worker_id: str) -> Any:
    """A public value as a party can use it: a number as is, a tensor sent there."""
    if isinstance(value, torch.Tensor):
        if value.dtype.is_floating_point:
            raise SecureError(
                "a shared integer tensor mixes only with integers; encode floats with "
                "fix_precision() on both sides"
            )
        return value.long().send(registry.get_worker(worker_id))
    return value


def check_public(value: Any) -> Any:
    """A plain number or tensor that may be combined with shares (else a clear error)."""
    if isinstance(value, bool) or (isinstance(value, float) and value.is_integer()):
        return int(value)
    if isinstance(value, int) or (type(value) is torch.Tensor and not value.is_floating_point()):
        return value
    if is_pointer(value):
        raise SecureError(
            "this mixes a shared tensor with a pointer to one worker's tensor; share that "
            "tensor among the same parties first"
        )
    if isinstance(value, SecureWrapper):
        raise SecureError(
            "this mixes an integer shared tensor with a fixed-precision one; encode both "
            "the same way (fix_precision() before share())"
        )
    raise SecureError(
        f"an integer shared tensor mixes only with integers or other shared tensors, "
        f"not {type(value).__name__} {value!r}: encode floats with fix_precision()"
    )


def widen(a: AdditiveSharingTensor, shape: torch.Size) -> AdditiveSharingTensor:
    """Every share broadcast to ``shape`` (when a public operand is bigger than the secret)."""
    if a.shape == shape:
        return a
    return a.like({w: p.expand(shape).contiguous() for w, p in a.child.items()})
