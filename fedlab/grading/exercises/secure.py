"""Exercise 8: secure aggregation of three workers' models, checked from the message log.

The privacy check reads every tensor that travelled and asks, for each worker's model:
did anyone else receive it, in floats or in fixed precision (any number of digits), or
receive *all* of its shares, i.e. tensors that add up to its encoding modulo 2**64?
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from fedlab.grading.criteria import Context, Criterion, Exercise, Failed, carriers, value_of
from fedlab.hook import is_pointer

OWNERS = ("bob", "alice", "carol")
PROVIDER = "james"
NAMES = ("weight", "bias")
DIGITS = range(1, 9)  # fixed-precision encodings a solution might use (base 10)
MAX_SET = 4  # the largest set of received tensors tried as "all the shares"


def _updates(ctx: Context) -> dict[str, dict[str, torch.Tensor]]:
    """Each worker's model parameters, read from its store (no message)."""
    models = ctx.var("models")
    if not isinstance(models, dict) or set(models) != set(OWNERS):
        raise Failed(
            "`models` should map 'bob', 'alice' and 'carol' to their models: run the given cells"
        )
    found = {}
    for owner, m in models.items():
        found[owner] = {}
        for name in NAMES:
            p = getattr(m, name, None)
            value = value_of(p) if is_pointer(p) else None
            if value is None:
                raise Failed(
                    f"{owner}'s model should stay on {owner} (it is gone, or was fetched): run "
                    "the given cells again and leave `models` as it is"
                )
            found[owner][name] = value
    return found


def _average(ctx: Context) -> str:
    model = ctx.var("model")
    if not isinstance(model, nn.Module) or any(is_pointer(p) for p in model.parameters()):
        raise Failed("`model` should be the global model, here on me")
    updates = _updates(ctx)
    for name in NAMES:
        mean = sum(u[name] for u in updates.values()) / len(updates)
        got = getattr(model, name).detach()
        if got.shape != mean.shape or not (got - mean).abs().max() <= 0.002:
            raise Failed(f"model.{name} is not the average of the three models (to 0.002)")
    return "model holds the average of the three models"


def _shared_where_it_lives(ctx: Context) -> str:
    log = ctx.log
    for owner in OWNERS:
        sent = [
            e for e in log
            if e.sender == owner and e.receiver != owner and e.kind == "send"
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
    updates = _updates(ctx)
    log = ctx.log
    for owner, params in updates.items():
        secrets = {f"{owner}'s {n}": v for n, v in params.items()}
        for n, v in params.items():
            for d, enc in _encodings(v).items():
                secrets[f"{owner}'s {n} in fixed precision ({d} digits)"] = enc
        leaks = [s for s in carriers(log, secrets) if not s.split(" -> ")[1].startswith(owner)]
        if leaks:
            raise Failed(leaks[0])
        for name, value in params.items():
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
)  # fmt: skip
