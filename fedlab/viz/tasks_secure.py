"""The practice tasks of the secure lessons (16-20): ``practice.check("shared-product")``.

Like ``fedlab.viz.tasks``: each task reads the notebook's variables, peeks at the
workers' stores (a shared value is the sum of its parties' shares there, modulo 2**64)
and at the message log the student recorded, and yields one ``(passed, sentence)`` per
step, in the order a student does them. Every answer is compared exactly with the same
computation done here in plain Python or torch. Nothing is sent and nothing changes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import combinations
from typing import Any

import torch

from fedlab.secure.audit import carries, received
from fedlab.secure.precision import FixedPrecisionTensor
from fedlab.secure.shared import AdditiveSharingTensor
from fedlab.secure.wrapper import is_secure
from fedlab.viz.steps import Namespace, Step, location, peek, same, task
from fedlab.wrapper import is_pointer

# -- reading secrets without a message ------------------------------------------------------


def _layers(x: Any) -> tuple[FixedPrecisionTensor | None, AdditiveSharingTensor | None]:
    """The fixed-precision layer and the sharing record of a secure tensor (or None)."""
    child = getattr(x, "__dict__", {}).get("child")
    fixed = child if isinstance(child, FixedPrecisionTensor) else None
    if fixed is not None:
        child = getattr(fixed.child, "__dict__", {}).get("child")
    return fixed, child if isinstance(child, AdditiveSharingTensor) else None


def _secret(record: AdditiveSharingTensor) -> torch.Tensor | None:
    """The sum of the shares in the parties' stores (int64 wraps: mod 2**64); None if gone."""
    total = None
    for ptr in record.child.values():
        value = peek(ptr)
        if type(value) is not torch.Tensor:
            return None
        total = value.clone() if total is None else total + value
    return total


def _encode(values: torch.Tensor, scale: int) -> torch.Tensor:
    """What ``fix_precision`` keeps: the nearest integers to values * scale."""
    return torch.round(values.detach().double() * scale).long()


def _shown(t: torch.Tensor) -> str:
    """A short tensor as a list of its values; a bigger one by its shape."""
    if t.dim() == 1 and t.numel() <= 8:
        return str([round(v, 4) for v in t.tolist()])
    return f"other values (of shape {list(t.shape)})"


def _shared_as(
    ns: Namespace,
    name: str,
    values: torch.Tensor,
    parties: tuple[str, ...],
    provider: str,
    what: str = "",
) -> Iterator[Step]:
    """Steps: ``name`` is fixed-precision, shared by ``parties`` with ``provider``, holding
    ``values`` (its shares, read in the stores, add up to their encoding); ``what`` names
    the values in a sentence (else they are listed)."""
    x = ns[name]
    how = f".share({', '.join(parties)}, crypto_provider={provider})"
    fixed, record = _layers(x)
    if record is None or fixed is None:
        if fixed is not None:
            yield False, f"`{name}` is encoded but not shared yet: add {how}"
        elif is_secure(x):
            yield (
                False,
                f"`{name}` is shared integers: encode the floats first, .fix_precision(){how}",
            )
        else:
            yield False, f"`{name}` is not shared yet: encode and share it, .fix_precision(){how}"
        return
    who, by = record.parties, record.crypto_provider.id
    ok = sorted(who) == sorted(parties) and by == provider
    text = f"`{name}` is shared between {' and '.join(parties)}, with {provider} as crypto provider"
    if not ok:
        text = f"`{name}` is shared between {' and '.join(who)}, with {by}: share it with {how}"
    yield ok, text
    secret = _secret(record)
    if secret is None:
        yield False, f"`{name}`'s shares are gone from the workers (was it .get()?): share it again"
        return
    ok = same(secret, _encode(values, fixed.scale))
    what = what or _shown(values)
    text = f"`{name}` holds {what}, in shares"
    got = _shown(secret.double() / fixed.scale)
    yield ok, text if ok else f"`{name}`'s shares add up to {got}, not {what}"


def _decrypted(ns: Namespace, name: str) -> Iterator[Step]:
    """A step: ``name`` is a plain tensor here (decrypted and decoded)."""
    x = ns[name]
    fixed, record = _layers(x)
    if record is not None:
        yield False, f"`{name}` is still shared: decrypt it with .get(), then .float_precision()"
    elif fixed is not None:
        yield False, f"`{name}` is still encoded: decode it with .float_precision()"
    elif is_pointer(x):
        yield False, f"`{name}` is a pointer to {location(x)}: bring the value here"
    elif type(x) is not torch.Tensor:
        yield False, f"`{name}` should be a tensor, but it is a {type(x).__name__}"
    else:
        yield True, f"`{name}` is a tensor here on me, decrypted"


def _to_me(trace: Any) -> list[torch.Tensor]:
    """The tensors that messages of the trace brought to me."""
    return [t for e, t in received(trace) if e.receiver == "me"]


# -- lesson 16: shares by hand ----------------------------------------------------------------


def _split(secret: int, n: int, q: int, rng: random.Random) -> tuple[int, ...]:
    shares = [rng.randrange(q) for _ in range(n - 1)]
    return (*shares, (secret - sum(shares)) % q)


def _share_by_share(
    name: str, fn: Callable, args: tuple, want: tuple[int, ...], q: int, what: str, rule: str
) -> Iterator[Step]:
    got = fn(*args)
    if got is None:
        yield False, f"`{name}` returns nothing yet: write its body above and run that cell again"
        return
    if not isinstance(got, (tuple, list)) or len(got) != len(want):
        yield False, f"`{name}` should return a tuple with one share per party ({len(want)} here)"
        return
    total, secret = sum(got) % q, sum(want) % q
    ok = total == secret
    text = f"`{name}`'s shares decrypt to {secret} = {what}"
    yield ok, text if ok else f"`{name}`'s shares decrypt to {total}, but {what} = {secret}"
    got = tuple(got)
    if got == want:
        yield True, f"`{name}` works share by share: party i's share is {rule}"
    elif all(g % q == w for g, w in zip(got, want)):
        yield False, f"`{name}`'s shares are right but not between 0 and Q: take each modulo Q"
    else:
        yield (
            False,
            (
                f"`{name}`'s shares are not {rule}: each party may use only its own shares "
                "(and nobody decrypts)"
            ),
        )


@task("share-arithmetic")
def share_arithmetic(ns: Namespace) -> Iterator[Step]:
    """Lesson 16: sub and imul on shared numbers, each party using only its own shares."""
    q = ns["Q"]
    rng = random.Random(16)  # the check's own shares (the notebook's random stays untouched)
    a, b = _split(12, 3, q, rng), _split(5, 3, q, rng)
    want = tuple((ai - bi) % q for ai, bi in zip(a, b))
    yield from _share_by_share("sub", ns["sub"], (a, b), want, q, "12 - 5", "(a_i - b_i) % Q")
    want = tuple(ai * 3 % q for ai in a)
    yield from _share_by_share("imul", ns["imul"], (a, 3), want, q, "12 * 3", "(a_i * 3) % Q")


# -- lesson 17: a product at fixed precision ----------------------------------------------------


@task("fixed-precision-product")
def fixed_precision_product(ns: Namespace) -> Iterator[Step]:
    """Lesson 17: mul of two encoded numbers, signed, truncated with //, exact."""
    mul, q = ns["mul"], ns["Q"]
    scale = ns["BASE"] ** ns["PRECISION"]

    def signed(v: int) -> int:
        return v if v <= q // 2 else v - q

    def case(u: str, v: str) -> tuple[str, Any, int, int]:
        a, b = (round(Decimal(s) * scale) for s in (u, v))
        return f"mul({u}, {v})", mul(a % q, b % q), (a * b // scale) % q, a * b % q

    def decoded(v: int) -> str:
        return f"{Decimal(signed(v)) / scale:f}"

    text, got, want, untruncated = case("1.5", "2.5")
    if got is None:
        yield False, "`mul` returns nothing yet: write its body above and run that cell again"
        return
    if type(got) is not int:
        yield False, f"`mul` returned {got!r}: keep integers, and divide with // (not /)"
        return
    yield True, "`mul` returns an integer"
    if got == want:
        yield True, f"{text} is {got}, the encoding of 3.75"
    elif got == untruncated:
        yield False, f"{text} is {got}, at twice the scale: divide the product by BASE**PRECISION"
    else:
        yield False, f"{text} is {got}; the encoding of 3.75 is {want}"
    for u, v in [("-0.5", "3.0"), ("-1.25", "-0.4")]:
        text, got, want, _ = case(u, v)
        if got != want and isinstance(got, int) and not 0 <= got < q:
            yield (
                False,
                f"{text} is {got}: take the result modulo Q (a negative n is kept as Q - n)",
            )
        elif got != want:
            yield (
                False,
                (
                    f"{text} decodes to {decoded(got)}, not {decoded(want)}: make a and b signed "
                    "first (v - Q when v > Q / 2), then multiply"
                ),
            )
    yield True, "negative numbers work: mul(-0.5, 3.0) decodes to -1.5"
    for u, v in [("0.0003", "2.5"), ("-1.25", "0.0003")]:
        text, got, want, _ = case(u, v)
        if got != want:
            yield (
                False,
                (
                    f"{text} decodes to {decoded(got)}, not {decoded(want)}: the truncation drops "
                    "the extra digits with floor division, // BASE**PRECISION"
                ),
            )
    yield True, "the truncation drops the extra digits, as // does: 0.0003 * 2.5 -> 0.0007"
    text, got, want, _ = case("123456789.1234", "98765.4321")
    if got == want:
        yield True, "large numbers are exact too: no float on the way"
    else:
        off = abs(signed(got) - signed(want)) if isinstance(got, int) else "some"
        yield (
            False,
            (
                f"{text} is off by {off} steps: a float cannot hold it exactly; stay with "
                "integers (// rather than / or decode)"
            ),
        )


# -- lesson 18: a product on shares -------------------------------------------------------------

X18, Y18 = torch.tensor([0.5, -1.25, 2.0]), torch.tensor([4.0, 0.5, -0.75])


@task("shared-product")
def shared_product(ns: Namespace) -> Iterator[Step]:
    """Lesson 18: two fixed-precision tensors shared with a provider, multiplied, decrypted."""
    parties, provider = ("bob", "alice"), "secure_worker"
    yield from _shared_as(ns, "my_x", X18, parties, provider)
    yield from _shared_as(ns, "my_y", Y18, parties, provider)
    dealt = any(e.sender == provider for e, _ in received(ns["my_trace"]))
    text = f"{provider} dealt a Beaver triple for the product"
    yield dealt, text if dealt else f"{provider} sent nothing in the with block: multiply there"
    yield from _decrypted(ns, "my_product")
    want, got = X18 * Y18, ns["my_product"]
    ok = same(got, want)
    text = f"`my_product` is {_shown(want)}, as plain torch computes x * y"
    yield ok, text if ok else f"`my_product` is {_shown(got)}, but x * y is {_shown(want)}"


# -- lesson 19: secure aggregation --------------------------------------------------------------


def _came_as_shares(to_me: list[torch.Tensor], secret: torch.Tensor, n: int) -> bool:
    """True when some (up to ``n``) of the tensors that reached me add up to ``secret``."""
    fits = [t for t in to_me if t.dtype == secret.dtype and t.shape == secret.shape]
    for k in range(1, n + 1):
        for group in combinations(fits, k):
            if torch.equal(sum(group[1:], group[0].clone()), secret):
                return True
    return False


@task("encrypted-average")
def encrypted_average(ns: Namespace) -> Iterator[Step]:
    """Lesson 19: two workers' updates averaged on shares; only the sum is decrypted."""
    ns["my_average"]  # (not written yet: say so first)
    trace = ns["my_trace"]
    updates = {}
    for w, other in (("bob", "alice"), ("alice", "bob")):
        name = f"{w}_update"
        x = ns[name]
        value = peek(x) if is_pointer(x) and location(x) == w else None
        if type(value) is not torch.Tensor:
            yield False, f"`{name}` is no longer on {w}: run the cell again, and leave it there"
            return
        updates[w] = value
        leaks = carries(trace, value.detach()) + carries(trace, _encode(value, 1000))
        if leaks:
            e = leaks[0]
            yield (
                False,
                (
                    f"{w}'s update travelled ({e.sender} -> {e.receiver}, {e.kind}): share it "
                    "where it lives instead of fetching it"
                ),
            )
        went = any(e.sender == w and e.receiver == other for e, _ in received(trace))
        text = f"{w}'s update was shared where it lives: only a random share left {w}"
        yield (
            went,
            text
            if went
            else (
                f"no share went from {w} to {other}: share {w}'s update on {w}, "
                f"{name}.copy().fix_precision().share(bob, alice, crypto_provider=james)"
            ),
        )
    to_me = _to_me(trace)
    seen = [w for w, v in updates.items() if _came_as_shares(to_me, _encode(v, 1000), 2)]
    yield (
        not seen,
        "only the shares of the sum came to you"
        if not seen
        else (
            f"you decrypted {seen[0]}'s update on its own: add the two shared updates first, "
            "and decrypt only the sum"
        ),
    )
    yield from _decrypted(ns, "my_average")
    want, got = (updates["bob"] + updates["alice"]) / 2, ns["my_average"]
    ok = same(got, want)
    text = f"`my_average` is {_shown(want)}, the plain average of the two updates"
    yield (
        ok,
        text
        if ok
        else (
            f"`my_average` is {_shown(got)}, but the average of the updates is {_shown(want)}: "
            "add the shared updates, decrypt the sum, divide by 2"
        ),
    )


# -- lesson 20: encrypted inference -------------------------------------------------------------


@task("encrypted-prediction")
def encrypted_prediction(ns: Namespace) -> Iterator[Step]:
    """Lesson 20: the shared model classifies shared images; only the digits are decrypted."""
    images = ns["client_x"][50:55]
    parties = ("alice", "bob")
    yield from _shared_as(ns, "my_images", images, parties, "crypto_provider", "client_x[50:55]")
    shapes = sorted({tuple(t.shape) for t in _to_me(ns["my_trace"])})
    if shapes == [(5,)]:
        yield True, "only the 5 predicted digits came to you, in shares"
    elif not shapes:
        yield False, "nothing came to you in the with block: decrypt the predictions there"
    else:
        yield (
            False,
            (
                f"values of shape {list(shapes[-1])} came to you: take the argmax on the shares, "
                "then decrypt only its result"
            ),
        )
    yield from _decrypted(ns, "my_prediction")
    want, got = ns["plain_predictions"][50:55], ns["my_prediction"]
    ok = same(got, want)
    text = f"`my_prediction` is {want.tolist()}, the plain model's predictions"
    yield (
        ok,
        text
        if ok
        else f"`my_prediction` is {_shown(got)}, but the plain model predicts {want.tolist()}",
    )
