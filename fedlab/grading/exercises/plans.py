"""Exercise 7: a training step as a plan, on bob and in a federated round.

The checks read the whole run, not only its end: the weights that came home must be the
very objects that started at zero (or at the model's values) on a worker and were then
changed by exactly 20 (or 5) training steps on that worker's data, each step counted from
the messages (a plan's ``backward`` steps, or ``backward`` operations). The data and the
starting model are made again from the notebook's seeds, and the step must be the one asked
for: plain-torch SGD from the same start gives the same weights (to rounding).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fedlab import events
from fedlab.grading.claims import Model, PlanClaim
from fedlab.grading.criteria import (
    LOSS,
    TRAINED,
    Context,
    Criterion,
    Exercise,
    Failed,
    Private,
    foreign_sources,
    is_pointer,
    location_of,
    same_values,
    sent_from_me,
    training_steps,
)
from fedlab.grading.provenance import Transfer

WORKERS = ("bob", "alice", "carol")
BOB_STEPS = 20  # calls of train_step on bob
ROUND_STEPS = 5  # calls of train_step on each worker in the federated round
LR = 0.1
TRUE_WEIGHT, TRUE_BIAS = torch.tensor([[2.0, -1.0, 0.5, 3.0]]), torch.tensor([1.0])


def given() -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], nn.Linear]:
    """Each worker's data and the round's starting model, made as the notebook makes them."""
    with torch.random.fork_rng(devices=[]):  # the student's random state stays as it was
        torch.manual_seed(0)
        shards = {}
        for name in WORKERS:
            x = torch.randn(8, 4)
            shards[name] = x, F.linear(x, TRUE_WEIGHT, TRUE_BIAS) + 0.1 * torch.randn(8, 1)
        torch.manual_seed(1)
        return shards, nn.Linear(4, 1)


def reference_step(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
    """The step the exercise asks for, in plain torch: SGD on the mean squared error."""
    opt = torch.optim.SGD([w, b], lr=LR)
    opt.zero_grad()
    F.mse_loss(F.linear(x, w, b), y).backward()
    opt.step()


def train(step: Callable, start: tuple[torch.Tensor, ...], x, y, steps: int) -> list:
    """``steps`` calls of ``step`` on local copies of ``start``; returns [w, b] after each."""
    w, b = (t.detach().clone().requires_grad_(True) for t in start)
    after = []
    for _ in range(steps):
        step(w, b, x.clone(), y.clone())
        after.append([w.detach().clone(), b.detach().clone()])
    return after


def _home(ctx: Context, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    t = ctx.var(name)
    if is_pointer(t):
        raise Failed(f"`{name}` still points to {location_of(t)}: bring it home with .get()")
    if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
        raise Failed(f"`{name}` should be a tensor of shape {list(shape)} here on me")
    return t.detach()


def _came_home(
    ctx: Context, where: str, value: torch.Tensor, start: torch.Tensor
) -> list[Transfer]:
    """Fetches from ``where`` of objects me sent with ``start``'s values, equal to ``value``."""
    return [
        t for t in ctx.transfers
        if t.frm == where and t.to == "me" and t.how == "fetch" and TRAINED.allows(t, ctx)
        and t.obj.sent is not None and same_values(t.obj.sent, start)
        and t.obj.sent.shape == start.shape and same_values(t.value, value)
    ]  # fmt: skip


def _trajectory(
    ctx: Context, pair: tuple[Transfer, ...], where: str, what: str, steps: int
) -> None:
    """Check that both objects of ``pair`` were trained ``steps`` times on ``where``'s data."""
    own = {f"sent@{t.obj.born.index}" for t in pair}
    for t, name in zip(pair, ("weight", "bias")):
        _trained(ctx, t, where, f"{what}'s {name}", steps, own)


def _trained(ctx: Context, t: Transfer, where: str, what: str, steps: int, own: set) -> None:
    planned, by_ops, _ = training_steps(t.obj)
    done = planned + by_ops
    if done != steps:
        unit = "step" if done == 1 else "steps"
        raise Failed(f"{what} took {done} training {unit} on {where}, not {steps}")
    missing = {f"{where}'s x", f"{where}'s y"} - t.obj.private
    if missing:
        raise Failed(f"{what} was never trained on {sorted(missing)[0]}")
    foreign = foreign_sources(t.obj, own)
    if foreign:
        raise Failed(f"{what} was set from a tensor you sent in {ctx.entry(foreign[0])}")


def _close(got: tuple[torch.Tensor, ...], ref: list[torch.Tensor]) -> bool:
    return all(torch.allclose(a, r, rtol=0, atol=1e-5) for a, r in zip(got, ref))


def _bob_run(ctx: Context) -> tuple[list[Transfer], torch.Tensor, torch.Tensor]:
    w, b = _home(ctx, "w", (1, 4)), _home(ctx, "b", (1,))
    found = [_came_home(ctx, "bob", v, torch.zeros_like(v)) for v in (w, b)]
    for name, hits in zip(("w", "b"), found):
        if not hits:
            raise Failed(
                f"`{name}` is not what came home from bob's {name}_ptr (sent as zeros) with "
                f".get(): run the step 2 cell from its top"
            )
    return [hits[-1] for hits in found], w, b


# -- the criteria ----------------------------------------------------------------------------


def _bob_trained(ctx: Context) -> str:
    (tw, tb), w, b = _bob_run(ctx)
    _trajectory(ctx, (tw, tb), "bob", "bob's model", BOB_STEPS)
    x, y = given()[0]["bob"]
    ref = train(reference_step, (torch.zeros(1, 4), torch.zeros(1)), x, y, BOB_STEPS)[-1]
    if not _close((w, b), ref):
        raise Failed(
            f"train_step is not the step asked for: {BOB_STEPS} steps of SGD with lr={LR} "
            "on the mean squared error give other weights"
        )
    loss = F.mse_loss(F.linear(x, w, b), y)
    return f"w and b are bob's after {BOB_STEPS} steps of train_step (loss now {loss:.4f})"


def _round_copies(ctx: Context, model: Model) -> dict[str, list[Transfer]]:
    """For each worker, the copies of model's start that came home trained there."""
    start = [p.detach() for p in given()[1].parameters()]
    out = {}
    for home in WORKERS:
        hits = [
            t for t in ctx.transfers
            if t.frm == home and t.to == "me" and TRAINED.allows(t, ctx) and t.value is not None
            and t.obj.sent is not None and any(same_values(t.obj.sent, s) for s in start)
        ]  # fmt: skip
        if not hits:
            raise Failed(
                f"no copy of model's starting weight and bias came home from {home}: in the "
                "round, every worker trains a copy of the same starting model, sent with "
                "p.send(worker), then .get() brings it home"
            )
        out[home] = hits
    return out


def _last_pair(hits: list[Transfer]) -> tuple[Transfer, Transfer]:
    ws = [t for t in hits if t.value.shape == (1, 4)]
    bs = [t for t in hits if t.value.shape == (1,)]
    if not ws or not bs:
        raise Failed("a worker's trained copy came home without its weight or its bias")
    return ws[-1], bs[-1]


def _average(ctx: Context) -> str:
    model = ctx.var("model")
    if not isinstance(model, Model) or not isinstance(getattr(model, "weight", None), torch.Tensor):
        raise Failed("`model` should be the nn.Linear(4, 1) the round cell makes, here on me")
    shards, start = given()
    start = tuple(p.detach() for p in start.parameters())
    got = (model.weight, model.bias)
    if all(torch.equal(g, s) for g, s in zip(got, start)):
        raise Failed(
            "model still holds its starting values: copy the average into it "
            "(p.copy_(...) under torch.no_grad())"
        )
    copies = []
    for home, hits in _round_copies(ctx, model).items():
        pair = _last_pair(hits)
        _trajectory(ctx, pair, home, f"the copy trained on {home}", ROUND_STEPS)
        ref = train(reference_step, start, *shards[home], ROUND_STEPS)[-1]
        if not _close((pair[0].value, pair[1].value), ref):
            raise Failed(
                f"the copy trained on {home} is not {ROUND_STEPS} SGD steps with lr={LR} "
                "from model's starting values"
            )
        copies.append((pair[0].value, pair[1].value))
    means = [sum(c[i] for c in copies) / len(copies) for i in (0, 1)]
    if not all(torch.allclose(g, m, rtol=0, atol=1e-6) for g, m in zip(got, means)):
        raise Failed(
            "model is not the average of the three copies that came home, each trained from "
            f"model's starting values by {ROUND_STEPS} calls of train_step on its worker"
        )
    return f"model holds the average of the copies trained on {', '.join(WORKERS)}"


def _one_message(ctx: Context) -> str:
    if not isinstance(ctx.var("train_step"), PlanClaim):
        raise Failed(
            "`train_step` is a plain function, so each operation in it is a message of its "
            "own: make it a plan"
        )
    (tw, _), _, _ = _bob_run(ctx)
    by_ops = training_steps(tw.obj)[1]
    if by_ops:
        raise Failed(f"bob's w_ptr was trained op by op ({by_ops} backward operations)")
    plans = sum(1 for s in tw.obj.history if s.what == "plan")
    counts = []
    model = ctx.var("model")
    for home, hits in _round_copies(ctx, model).items():
        t = _last_pair(hits)[0]
        planned_h, by_ops_h, _ = training_steps(t.obj)
        if by_ops_h or not planned_h:
            raise Failed(f"the copy on {home} was trained op by op, not in plan messages")
        counts.append(f"{sum(1 for s in t.obj.history if s.what == 'plan')} on {home}")
    return f"bob's training was {plans} plan messages; the round's, {', '.join(counts)}"


def _stayed_home(ctx: Context) -> str:
    log = ctx.log
    for home, (x, y) in given()[0].items():
        if not (sent_from_me(log, home, x) and sent_from_me(log, home, y)):
            raise Failed(f"{home} never received its data: run the first cells again")
    leaks = ctx.leaks()
    if leaks:
        raise Failed(leaks[0])
    return "no message from bob, alice or carol carried their data or targets"


def _nothing_left(ctx: Context) -> str:
    problems = []
    for home, (x, y) in given()[0].items():
        for i, v in sorted(ctx.store(home).items()):
            if not (same_values(v, x) or same_values(v, y)):
                problems.append(f"{home}:{i} ({' '.join(events.describe(v))})")
    if problems:
        raise Failed(f"besides their data, the workers still hold {', '.join(problems)}")
    return "bob, alice and carol hold only their data"


TRAINED_ON_BOB = f"w and b are bob's, trained by {BOB_STEPS} steps of train_step"
ROUND = "model holds the average of one round on bob, alice and carol"

PLANS = Exercise(
    "plans",
    "Plans: a training step in one message",
    (
        Criterion(TRAINED_ON_BOB, 2, _bob_trained,
                  "One SGD step with lr=0.1 on F.mse_loss(F.linear(x, w, b), y); call the plan "
                  f"{BOB_STEPS} times on the pointers, then .get() w_ptr and b_ptr."),
        Criterion("each training call was one plan message to the data's worker", 1,
                  _one_message,
                  "@sy.func2plan() above the def makes train_step a plan; call it with the "
                  "pointers (never its .fn, never the step's operations one by one).",
                  requires=(TRAINED_ON_BOB,)),
        Criterion(ROUND, 1, _average,
                  "For each worker: send a copy of model's weight and bias (p.send(worker)), "
                  f"call the plan {ROUND_STEPS} times, .get() the copies; then copy the average "
                  "of the three into model."),
        Criterion("the data never left bob, alice or carol", 1, _stayed_home,
                  "Bring back only the losses and the trained weights, never x or y.",
                  requires=(TRAINED_ON_BOB, ROUND)),
        Criterion("nothing is left behind on the workers", 1, _nothing_left,
                  "Every tensor a plan returns stays on its worker until you .get() it or its "
                  "last pointer dies (del it; a pointer shown as a cell's result lives on in Out).",
                  requires=(TRAINED_ON_BOB, ROUND)),
    ),
    workers=WORKERS,
    reads=("w", "b", "model", "train_step"),
    private=tuple(
        Private(f"{home}'s {what}", home, t)
        for home, pair in given()[0].items() for what, t in zip("xy", pair)
    ),
    releases=(LOSS, TRAINED),
)  # fmt: skip
