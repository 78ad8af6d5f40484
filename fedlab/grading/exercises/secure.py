"""Exercise 8: secure aggregation of three workers' models, checked from the message log.

Provenance (``ctx.leaks``) cannot grade this one: every share derives from a model, yet a
single share says nothing about it. So the privacy check reads the values that travelled
and asks, for each worker's model: did anyone else receive it, in floats or in fixed
precision (any number of digits), or receive *all* of its shares, i.e. tensors that add
up to its encoding modulo 2**64? The models are the given cell's (seed 0), recomputed
here, so a notebook cannot change what is checked.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from fedlab.grading.criteria import Context, Criterion, Exercise, Failed, location_of, same_values

OWNERS = ("bob", "alice", "carol")
PROVIDER = "james"
NAMES = ("weight", "bias")
DIGITS = range(1, 9)  # fixed-precision encodings a solution might use (base 10)
MAX_SET = 4  # the largest set of received tensors tried as "all the shares"


def given_models() -> dict[str, dict[str, torch.Tensor]]:
    """The three workers' models as the given cell makes them (seed 0), by parameter."""
    with torch.random.fork_rng(devices=[]):  # the student's random state stays as it was
        torch.manual_seed(0)
        models = {owner: nn.Linear(4, 2) for owner in OWNERS}
    return {o: {n: getattr(m, n).detach().clone() for n in NAMES} for o, m in models.items()}


GIVEN = given_models()


def _average(ctx: Context) -> str:
    model = ctx.var("model")
    params = getattr(model, "params", None)
    if params is None or {location_of(p) for _, p in params} != {"me"}:
        raise Failed("`model` should be the global model, here on me")
    for name in NAMES:
        mean = sum(GIVEN[o][name] for o in OWNERS) / len(OWNERS)
        got = getattr(model, name, None)
        if not isinstance(got, torch.Tensor) or got.shape != mean.shape:
            raise Failed(f"model.{name} should have the shape of the workers' {name}")
        if not (got - mean).abs().max() <= 0.002:
            raise Failed(f"model.{name} is not the average of the three models (to 0.002)")
    return "model holds the average of the three models"


def _shared_where_it_lives(ctx: Context) -> str:
    for owner in OWNERS:
        sent = [
            e for e in ctx.log
            if e.sender == owner and e.receiver not in (owner, "me") and e.kind == "send"
            and e.tensor is not None and e.tensor.dtype == torch.int64
        ]  # fmt: skip
        if not sent:
            raise Failed(
                f"{owner} never sent a share to another worker: share each model where it "
                "lives, e.g. p.copy().fix_precision().share(bob, alice, carol, crypto_provider="
                "james).get()"
            )
    return "every worker made its shares and sent them straight to the others"


def _encodings(value: torch.Tensor) -> dict[int, torch.Tensor]:
    """The update in fixed precision, by number of digits (never all zeros: a zero tensor
    would match anything that cancels out)."""
    out = {d: torch.round(value.double() * 10**d).long() for d in DIGITS}
    return {d: e for d, e in out.items() if e.any()}


def _all_shares(received: list[torch.Tensor], encodings: list[torch.Tensor]) -> bool:
    """True when some set of up to MAX_SET received tensors adds up to an encoding."""
    for k in range(2, min(MAX_SET, len(received)) + 1):
        for group in itertools.combinations(received, k):
            total = group[0].clone()
            for t in group[1:]:
                total += t  # int64: addition modulo 2**64
            if any(torch.equal(total, enc) for enc in encodings):
                return True
    return False


def _private(ctx: Context) -> str:
    log = ctx.log
    for owner, params in GIVEN.items():
        for name, value in params.items():
            secrets = {f"{owner}'s {name}": value}
            for d, enc in _encodings(value).items():
                secrets[f"{owner}'s {name} in fixed precision ({d} digits)"] = enc
            for e in log:
                if e.tensor is None or e.receiver == owner or e.sender == e.receiver:
                    continue
                for what, secret in secrets.items():
                    if same_values(e.tensor, secret):
                        raise Failed(f"{what} reached {e.receiver} in {e.describe()}")
            encodings = list(_encodings(value).values())
            by_receiver: dict[str, list[torch.Tensor]] = {}
            for e in log:
                t = e.tensor
                if t is None or e.sender == e.receiver or e.receiver == owner:
                    continue
                if t.dtype == torch.int64 and t.shape == value.shape:
                    by_receiver.setdefault(e.receiver, []).append(t)
            for receiver, received in by_receiver.items():
                if _all_shares(received, encodings):
                    raise Failed(
                        f"{receiver} received all the shares of {owner}'s {name}: together "
                        "they give it away. Each party should hold one share of it."
                    )
    return "no message gave anyone a worker's model, or all of its shares"


def _nothing_left(ctx: Context) -> str:
    snap = ctx.recorder.marks.get("given")
    if snap is None:
        raise Failed("run the given cells first (the last one ends with mark())")
    for w in (*OWNERS, PROVIDER):
        extra = set(ctx.store(w)) - set(snap.stores.get(w, {}))
        if extra:
            raise Failed(
                f"{w} still holds {len(extra)} object(s) made by the aggregation (shares?): "
                "a pointer to them is still alive in some variable; del it"
            )
    return "the workers hold only their models again"


AVERAGE = "model holds the average of the three models"
SECURE_AGGREGATION = Exercise(
    "secure-aggregation",
    "Secure aggregation of three workers' models",
    (
        Criterion(AVERAGE, 2, _average,
                  "Share each parameter, add the three shared values, .get() the sum, decode "
                  "with float_precision() and divide by 3; copy the result into model."),
        Criterion("each model was shared where it lives", 1, _shared_where_it_lives,
                  "Call fix_precision() and share() on the pointer itself: the worker then "
                  "makes the shares and sends them on. Never .get() a worker's model."),
        Criterion("no one received a worker's model, or all of its shares", 3, _private,
                  "Only the sum may be decrypted. Each party must hold exactly one share of "
                  "each model: share among the workers, and add shared values only.",
                  requires=(AVERAGE,)),
        Criterion("nothing is left on the workers", 1, _nothing_left,
                  "When the average is computed, delete the lists and variables that hold "
                  "shared values (del ...), so their shares are deleted on the workers.",
                  requires=(AVERAGE,)),
    ),
    workers=(*OWNERS, PROVIDER),
    reads=("model",),
)  # fmt: skip
