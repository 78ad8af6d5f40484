"""Exercise 7: a training step as a plan, on bob and in a federated round.

The checks never trust a hard-coded number: the data and the starting model are made again
from the notebook's seeds, and the student's own ``train_step`` function runs here in plain
torch, on local copies, as the reference that the plans' results must equal bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fedlab import events
from fedlab.grading.criteria import (
    Context,
    Criterion,
    Exercise,
    Failed,
    carriers,
    location_of,
    same_values,
    sent_from_me,
)
from fedlab.grading.recorder import Entry
from fedlab.plans import Plan
from fedlab.wrapper import is_pointer

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


def _own_step(ctx: Context) -> Callable:
    """The Python function behind ``train_step`` (what a plan was traced from)."""
    fn = ctx.var("train_step")
    fn = fn.fn if isinstance(fn, Plan) else fn
    if not callable(fn):
        raise Failed("`train_step` should be a function of (w, b, x, y), made a plan")
    return fn


def _own_training(ctx: Context, start: tuple, x, y, steps: int) -> list:
    try:
        return train(_own_step(ctx), start, x, y, steps)
    except Failed:
        raise
    except Exception as e:
        raise Failed(f"train_step failed on plain tensors here: {type(e).__name__}: {e}") from None


def _home(ctx: Context, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    t = ctx.var(name)
    if is_pointer(t):
        raise Failed(f"`{name}` still points to {location_of(t)}: bring it home with .get()")
    if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
        raise Failed(f"`{name}` should be a tensor of shape {list(shape)} here on me")
    return t.detach()


# -- the criteria ----------------------------------------------------------------------------


def _bob_trained(ctx: Context) -> str:
    w, b = _home(ctx, "w", (1, 4)), _home(ctx, "b", (1,))
    x, y = given()[0]["bob"]
    start = (torch.zeros(1, 4), torch.zeros(1))
    own = _own_training(ctx, start, x, y, 3 * BOB_STEPS)
    equal = [k + 1 for k, (ow, ob) in enumerate(own) if torch.equal(w, ow) and torch.equal(b, ob)]
    if BOB_STEPS not in equal:
        if equal:
            raise Failed(
                f"w and b are those of {equal[0]} steps, not {BOB_STEPS}: run the cell again "
                f"(it starts from zeros) and call the plan {BOB_STEPS} times"
            )
        raise Failed(
            f"w and b are not what {BOB_STEPS} calls of train_step give in plain torch, "
            "from zeros, on bob's data"
        )
    ref = train(reference_step, start, x, y, BOB_STEPS)[-1]
    if not all(torch.allclose(a, r, rtol=0, atol=1e-5) for a, r in zip((w, b), ref)):
        raise Failed(
            f"train_step is not the step asked for: {BOB_STEPS} steps of SGD with lr={LR} "
            "on the mean squared error give other weights"
        )
    loss = F.mse_loss(F.linear(x, w, b), y)
    return f"w and b equal {BOB_STEPS} steps of train_step in plain torch (loss now {loss:.4f})"


def _sent_ids(ctx: Context, to: str, value: torch.Tensor) -> list[int]:
    """The ids under which ``to`` stored a tensor that ``me`` sent with ``value``'s values."""
    sent = ctx.recorder.sent.items()
    return sorted(
        i for (w, i), t in sent if w == to and t.shape == value.shape and same_values(t, value)
    )


def _latest(ctx: Context, to: str, values: tuple[torch.Tensor, ...], missing: str) -> set[int]:
    """The ids on ``to`` of the latest copies of ``values`` sent there (cells may run again)."""
    found = [_sent_ids(ctx, to, v) for v in values]
    if not all(found):
        raise Failed(missing)
    return {ids[-1] for ids in found}


def _plan_calls(log: list[Entry], where: str, ids: set[int], what: str) -> int:
    """How many plan messages ``where`` ran on the tensors ``ids``; no op may touch them."""
    named = [e for e in log if e.receiver == where and ids & set(e.ids)]
    ops = [e for e in named if e.kind == "op"]
    if ops:
        raise Failed(f"{what} trained op by op, e.g. in {ops[0].describe()}")
    plans = sum(1 for e in named if e.kind == "plan")
    if not plans:
        raise Failed(f"{what} never went into a plan message to {where}")
    return plans


def _one_message(ctx: Context) -> str:
    if not isinstance(ctx.var("train_step"), Plan):
        raise Failed(
            "`train_step` is a plain function, so each operation in it is a message of its "
            "own: make it a plan"
        )
    log = ctx.log
    missing = "w_ptr and b_ptr never reached bob: run the step 2 cell from its top"
    zeros = _latest(ctx, "bob", (torch.zeros(1, 4), torch.zeros(1)), missing)
    on_bob = _plan_calls(log, "bob", zeros, "bob's w_ptr and b_ptr were")
    start = tuple(p.detach() for p in given()[1].parameters())
    counts = []
    for home in WORKERS:
        missing = (
            f"bob's training was {on_bob} plan messages, but no copy of model's starting "
            f"weight and bias went to {home} yet: in the round, every worker trains a copy "
            "of the same starting model, sent with p.send(worker)"
        )
        ids = _latest(ctx, home, start, missing)
        counts.append(f"{_plan_calls(log, home, ids, f'the copy on {home} was')} on {home}")
    return f"bob's training was {on_bob} plan messages; the round's, {', '.join(counts)}"


def _average(ctx: Context) -> str:
    model = ctx.var("model")
    if not isinstance(model, nn.Module) or not hasattr(model, "weight"):
        raise Failed("`model` should be the nn.Linear(4, 1) the round cell makes")
    if {location_of(p) for p in model.parameters()} != {"me"}:
        raise Failed("`model` should stay here on me and receive the averaged values")
    shards, start = given()
    start = tuple(p.detach() for p in start.parameters())
    got = (model.weight.detach(), model.bias.detach())
    if all(torch.equal(g, s) for g, s in zip(got, start)):
        raise Failed(
            "model still holds its starting values: copy the average into it "
            "(p.copy_(...) under torch.no_grad())"
        )
    runs = [_own_training(ctx, start, *shards[h], 3 * ROUND_STEPS) for h in WORKERS]

    def average_after(k: int) -> bool:  # model is the average of copies trained k steps each
        means = [sum(r[k - 1][i] for r in runs) / len(runs) for i in (0, 1)]
        return all(torch.allclose(g, m, rtol=0, atol=1e-6) for g, m in zip(got, means))

    if not average_after(ROUND_STEPS):
        steps = [k for k in range(1, len(runs[0]) + 1) if average_after(k)]
        if steps:
            raise Failed(
                f"model is the average of copies trained by {steps[0]} call(s) of train_step "
                f"each, not {ROUND_STEPS}"
            )
        raise Failed(
            "model is not the average of the three copies, each trained from model's starting "
            f"values by {ROUND_STEPS} calls of train_step on its worker"
        )
    return f"model holds the average of the copies trained on {', '.join(WORKERS)}"


def _stayed_home(ctx: Context) -> str:
    log = ctx.log
    for home, (x, y) in given()[0].items():
        if not (sent_from_me(log, home, x) and sent_from_me(log, home, y)):
            raise Failed(f"{home} never received its data: run the first cells again")
        leaks = carriers(log, {f"{home}'s data": x, f"{home}'s targets": y}, sender=home)
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


TRAINED_ON_BOB = f"w and b equal {BOB_STEPS} steps of train_step in plain torch, bit for bit"
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
                  "pointers (never its .fn, never the step's operations one by one)."),
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
)  # fmt: skip
