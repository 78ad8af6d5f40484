"""Exercises that train: a linear model on bob, toy federated learning, a trusted aggregator.

The data's targets carry a little noise that no linear model can fit exactly, so a
trained prediction never equals the targets by chance (the privacy checks compare values).
"""

from __future__ import annotations

import torch
from torch import nn

from fedlab.grading.claims import Model
from fedlab.grading.criteria import (
    LOSS,
    TRAINED,
    Context,
    Criterion,
    Exercise,
    Failed,
    Private,
    Release,
    foreign_sources,
    location_of,
    mse,
    sent_from_me,
)
from fedlab.grading.provenance import Transfer

DATA = torch.tensor([[1.0, 1], [0, 1], [1, 0], [0, 0]])
TARGET = torch.tensor([[2.1], [0.9], [0.9], [0.1]])
THRESHOLD = 0.05  # the best possible mean squared error is 0.01
DATA_NAME, TARGET_NAME = "bob's data", "bob's targets"
LOSS_BOB = f"mean squared error below {THRESHOLD}"

# -- 2. a linear model on bob --------------------------------------------------------------


def _params_on_bob(ctx: Context) -> str:
    for name, numel in (("weights", 2), ("bias", 1)):
        p = ctx.var(name)
        if location_of(p) != "bob":
            raise Failed(f"`{name}` should be a pointer to bob, but it is on {location_of(p)}")
        if ctx.value_of(p) is None or ctx.value_of(p).numel() != numel:
            raise Failed(f"`{name}` should point to {numel} number(s) on bob")
    return "weights and bias are on bob"


def _updated_remotely(ctx: Context) -> str:
    params = [ctx.obj("bob", ctx.var(n).id) for n in ("weights", "bias")]
    if any(p is None for p in params):
        raise Failed("the log never saw weights and bias arrive on bob: run the cells again")
    w = params[0]
    backward = [s for s in w.history if s.what == "backward"]
    if not backward:
        raise Failed("no .backward() on bob reached the weights")
    changed = [s for s in w.history if s.what == "op" and s.index > backward[0].index]
    if not changed:
        raise Failed("the weights on bob still hold the values they were sent with")
    missing = sorted({DATA_NAME, TARGET_NAME} - w.private)
    if missing:
        raise Failed(f"the weights were never trained on {missing[0]}")
    own = {f"sent@{p.born.index}" for p in params}
    foreign = foreign_sources(w, own) or foreign_sources(params[1], own)
    if foreign:
        raise Failed(
            f"the weights on bob were set from a tensor you sent in {ctx.entry(foreign[0])}, "
            "not learnt from bob's data"
        )
    return "bob ran .backward() and the weights changed there"


def _loss_bob(ctx: Context) -> str:
    w, b = ctx.value_of(ctx.var("weights")), ctx.value_of(ctx.var("bias"))
    error = mse(DATA @ w.reshape(2, 1) + b.reshape(1), TARGET)
    if not error < THRESHOLD:
        raise Failed(f"the mean squared error is {error:.3f}; it should be below {THRESHOLD}")
    return f"the mean squared error is {error:.3f}"


def _stayed_on_bob(ctx: Context) -> str:
    log = ctx.log
    if not (sent_from_me(log, "bob", DATA) and sent_from_me(log, "bob", TARGET)):
        raise Failed("bob never received the data: run the first cells again")
    leaks = ctx.leaks()
    if leaks:
        raise Failed(leaks[0])
    return "no message from bob carried the data or the targets"


LINEAR_MODEL = Exercise(
    "linear-model",
    "A linear model on bob's machine",
    (
        Criterion("weights and bias live on bob", 1, _params_on_bob,
                  "Create them with requires_grad=True, then .send(bob)."),
        Criterion("the weights were updated on bob", 1, _updated_remotely,
                  "Call loss.backward() on the remote loss and change the weights in place "
                  "(e.g. weights -= lr * weights.grad under torch.no_grad()).",
                  requires=("weights and bias live on bob",)),
        Criterion(LOSS_BOB, 2, _loss_bob,
                  "Train for more steps, or with a larger learning rate; reset the gradients "
                  "to zero after each step.",
                  requires=("the weights were updated on bob",)),
        Criterion("the training data and targets never left bob", 2, _stayed_on_bob,
                  "Everything you compute from the data stays on bob unless you .get() it; "
                  "bring back only what you may see, such as the loss.",
                  requires=("the weights were updated on bob", LOSS_BOB)),
    ),
    workers=("bob",),
    reads=("weights", "bias"),
    private=(Private(DATA_NAME, "bob", DATA), Private(TARGET_NAME, "bob", TARGET)),
    releases=(LOSS, TRAINED),
)  # fmt: skip


# -- 3. toy federated learning -----------------------------------------------------------------
HOMES = {"bob": (DATA[:2], TARGET[:2]), "alice": (DATA[2:], TARGET[2:])}


def _local_model(ctx: Context) -> Model:
    model = ctx.var("model")
    if not isinstance(model, Model):
        raise Failed("`model` should be an nn.Module such as nn.Linear(2, 1)")
    return model


def _model_home(ctx: Context) -> str:
    model = _local_model(ctx)
    away = {location_of(p) for p in model.parameters()} - {"me"}
    if away:
        raise Failed(f"the model is still on {', '.join(sorted(away))}: bring it back with .get()")
    return "the model is here on me"


def _loss_all(ctx: Context) -> str:
    model = _local_model(ctx)
    # Read the parameters wherever they are, so the error is known before the model is home.
    values = [ctx.value_of(getattr(model, n, None)) for n in ("weight", "bias")]
    if any(v is None for v in values):
        raise Failed("some of the model's parameters point to objects that no longer exist")
    error = mse(DATA @ values[0].reshape(1, 2).T + values[1].reshape(1), TARGET)
    if not error < THRESHOLD:
        raise Failed(
            f"the mean squared error on all the data is {error:.3f}; aim below {THRESHOLD}"
        )
    return f"the mean squared error on all the data is {error:.3f}"


def _trained_at(ctx: Context, home: str) -> list[Transfer]:
    """The parameters me sent that came back from ``home`` trained on its data."""
    return [
        t for t in ctx.transfers
        if t.frm == home and t.to == "me" and t.how == "fetch" and TRAINED.allows(t, ctx)
        and {f"{home}'s data", f"{home}'s targets"} <= t.obj.private
        and any(s.what == "backward" for s in t.obj.history)
    ]  # fmt: skip


def _stayed_home(ctx: Context) -> str:
    log = ctx.log
    for home, (data, target) in HOMES.items():
        if not (sent_from_me(log, home, data) and sent_from_me(log, home, target)):
            raise Failed(f"{home} never received its data: run the first cells again")
        if not _trained_at(ctx, home):
            raise Failed(f"the model never came back from {home} trained on {home}'s data")
    leaks = ctx.leaks()
    if leaks:
        raise Failed(leaks[0])
    # The model on me is the one that came back last, not one trained here afterwards.
    model = _local_model(ctx)
    last = {}
    for t in ctx.transfers:
        if t.to == "me" and t.value is not None and t in _trained_at(ctx, t.frm):
            last[tuple(t.value.shape)] = t.value
    for name in ("weight", "bias"):
        p = getattr(model, name, None)
        if not isinstance(p, torch.Tensor) or not torch.equal(last.get(tuple(p.shape), p + 1), p):
            raise Failed(
                f"model.{name} is not the value that last came back from a worker: the model "
                "changed here on me after its last visit"
            )
    return "the model trained on each worker; no data left bob or alice"


FEDERATED = Exercise(
    "federated",
    "Toy federated learning",
    (
        Criterion(f"mean squared error on all the data below {THRESHOLD}", 2, _loss_all,
                  "Train for more rounds, visiting every worker in each round."),
        Criterion("the trained model is back on me", 1, _model_home,
                  "After each worker's step, model.get() brings the improved model home.",
                  requires=(f"mean squared error on all the data below {THRESHOLD}",)),
        Criterion("the model went to the data; each worker's data stayed home", 2, _stayed_home,
                  "Send the model to the data (model.send(data.location)), never the data to you.",
                  requires=(f"mean squared error on all the data below {THRESHOLD}",)),
    ),
    workers=("bob", "alice"),
    reads=("model",),
    private=tuple(
        Private(f"{home}'s {what}", home, t)
        for home, pair in HOMES.items() for what, t in zip(("data", "targets"), pair)
    ),
    releases=(LOSS, TRAINED),
)  # fmt: skip


# -- 6. trusted aggregator ---------------------------------------------------------------------


def given_models() -> dict[str, torch.Tensor]:
    """bob's and alice's models as the notebook makes them (seed 0), by parameter."""
    with torch.random.fork_rng(devices=[]):  # the student's random state stays as it was
        torch.manual_seed(0)
        models = {owner: nn.Linear(2, 1) for owner in ("bob", "alice")}
    return {
        f"{owner}'s {pname}": getattr(model, pname).detach().clone()
        for owner, model in models.items() for pname in ("weight", "bias")
    }  # fmt: skip


GIVEN = given_models()
AVERAGES = {p: (GIVEN[f"bob's {p}"] + GIVEN[f"alice's {p}"]) / 2 for p in ("weight", "bias")}


def _is_average(t: Transfer, ctx: Context) -> bool:
    v = t.value
    return v is not None and any(
        v.shape == a.shape and torch.allclose(v, a, rtol=0, atol=1e-6) for a in AVERAGES.values()
    )


def _average(ctx: Context) -> str:
    model = _local_model(ctx)
    if {location_of(p) for p in model.parameters()} != {"me"}:
        raise Failed("`model` should stay here on me and receive the averaged values")
    for pname, mean in AVERAGES.items():
        got = getattr(model, pname, None)
        if not isinstance(got, torch.Tensor) or not torch.allclose(got, mean, rtol=0, atol=1e-6):
            raise Failed(f"model.{pname} is not the average of bob's and alice's")
    return "model holds the average of the two models"


def _went_to_secure(ctx: Context) -> str:
    for owner in ("bob", "alice"):
        moved = any(
            t.frm == owner and t.to == "secure_worker" and f"{owner}'s weight" in t.obj.private
            for t in ctx.transfers
        )
        if not moved:
            raise Failed(f"{owner}'s model never went from {owner} to the secure worker")
    return "both models went straight to the secure worker"


def _only_average(ctx: Context) -> str:
    if not any(t.to == "me" and _is_average(t, ctx) for t in ctx.transfers):
        raise Failed("the average never came back from the secure worker with .get()")
    leaks = ctx.leaks()
    if leaks:
        raise Failed(leaks[0])
    return "no message to me carried an individual model"


TRUSTED_AGGREGATOR = Exercise(
    "trusted-aggregator",
    "A trusted aggregator",
    (
        Criterion("model holds the average of bob's and alice's models", 2, _average,
                  "Average weight and bias separately: (a + b) / 2."),
        Criterion("both models went to the secure worker", 1, _went_to_secure,
                  "model.move(secure_worker) sends a model's parameters straight there."),
        Criterion("me received only the average, never an individual model", 2, _only_average,
                  "Compute the average where both models are, then .get() only the result.",
                  requires=("model holds the average of bob's and alice's models",)),
    ),
    workers=("bob", "alice", "secure_worker"),
    reads=("model",),
    private=tuple(Private(name, name.split("'")[0], t) for name, t in GIVEN.items()),
    releases=(Release("the average of both models", _is_average),),
    routes=(("bob", "secure_worker"), ("alice", "secure_worker")),
)  # fmt: skip
