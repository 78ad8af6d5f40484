"""Exercises that train: a linear model on bob, toy federated learning, a trusted aggregator.

The data's targets carry a little noise that no linear model can fit exactly, so a
trained prediction never equals the targets by chance (the privacy checks compare values).
"""

from __future__ import annotations

import torch
from torch import nn

from fedlab.grading.criteria import (
    Context,
    Criterion,
    Exercise,
    Failed,
    carriers,
    location_of,
    mse,
    same_values,
    sent_from_me,
    value_of,
)
from fedlab.wrapper import is_pointer

DATA = torch.tensor([[1.0, 1], [0, 1], [1, 0], [0, 0]])
TARGET = torch.tensor([[2.1], [0.9], [0.9], [0.1]])
THRESHOLD = 0.05  # the best possible mean squared error is 0.01
LOSS_BOB = f"mean squared error below {THRESHOLD}"

# -- 2. a linear model on bob --------------------------------------------------------------


def _params_on_bob(ctx: Context) -> str:
    for name, numel in (("weights", 2), ("bias", 1)):
        p = ctx.var(name)
        if location_of(p) != "bob":
            raise Failed(f"`{name}` should be a pointer to bob, but it is on {location_of(p)}")
        if value_of(p) is None or value_of(p).numel() != numel:
            raise Failed(f"`{name}` should point to {numel} number(s) on bob")
    return "weights and bias are on bob"


def _updated_remotely(ctx: Context) -> str:
    rec = ctx.recorder
    if not any(e.kind == "op" and e.receiver == "bob" and "backward" in e.op for e in rec.log):
        raise Failed("no .backward() ran on bob")
    w = ctx.var("weights")
    arrived = rec.sent.get(("bob", w.child.id_at_location))
    if arrived is not None and same_values(arrived, value_of(w)):
        raise Failed("the weights on bob still hold the values they were sent with")
    return "bob ran .backward() and the weights changed there"


def _loss_bob(ctx: Context) -> str:
    w, b = value_of(ctx.var("weights")), value_of(ctx.var("bias"))
    error = mse(DATA @ w.reshape(2, 1) + b.reshape(1), TARGET)
    if not error < THRESHOLD:
        raise Failed(f"the mean squared error is {error:.3f}; it should be below {THRESHOLD}")
    return f"the mean squared error is {error:.3f}"


def _stayed_on_bob(ctx: Context) -> str:
    log = ctx.log
    if not (sent_from_me(log, "bob", DATA) and sent_from_me(log, "bob", TARGET)):
        raise Failed("bob never received the data: run the first cells again")
    leaks = carriers(log, {"the data": DATA, "the targets": TARGET}, sender="bob")
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
                  requires=("weights and bias live on bob",)),
        Criterion("the training data and targets never left bob", 2, _stayed_on_bob,
                  "Everything you compute from the data stays on bob unless you .get() it; "
                  "bring back only what you may see, such as the loss.",
                  requires=("the weights were updated on bob", LOSS_BOB)),
    ),
)  # fmt: skip


# -- 3. toy federated learning -----------------------------------------------------------------
HOMES = {"bob": (DATA[:2], TARGET[:2]), "alice": (DATA[2:], TARGET[2:])}


def _local_model(ctx: Context) -> nn.Module:
    model = ctx.var("model")
    if not isinstance(model, nn.Module):
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
    values = [value_of(p) if is_pointer(p) else p.detach() for p in (model.weight, model.bias)]
    if any(v is None for v in values):
        raise Failed("some of the model's parameters point to objects that no longer exist")
    error = mse(DATA @ values[0].reshape(1, 2).T + values[1].reshape(1), TARGET)
    if not error < THRESHOLD:
        raise Failed(
            f"the mean squared error on all the data is {error:.3f}; aim below {THRESHOLD}"
        )
    return f"the mean squared error on all the data is {error:.3f}"


def _stayed_home(ctx: Context) -> str:
    log = ctx.log
    for home, (data, target) in HOMES.items():
        if not (sent_from_me(log, home, data) and sent_from_me(log, home, target)):
            raise Failed(f"{home} never received its data: run the first cells again")
        secrets = {f"{home}'s data": data, f"{home}'s targets": target}
        leaks = carriers(log, secrets, sender=home)
        if leaks:
            raise Failed(leaks[0])
        if not any(e.kind == "op" and e.receiver == home and "backward" in e.op for e in log):
            raise Failed(f"no training step (.backward()) ran on {home}")
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
)  # fmt: skip


# -- 6. trusted aggregator ---------------------------------------------------------------------


def _individuals(ctx: Context) -> dict[str, torch.Tensor]:
    found = {}
    for owner in ("bob", "alice"):
        model = ctx.var(f"{owner}_model")
        for pname in ("weight", "bias"):
            p = getattr(model, pname, None)
            value = value_of(p) if is_pointer(p) else p
            if not isinstance(value, torch.Tensor):
                raise Failed(f"cannot find {owner}_model.{pname} any more: keep that variable")
            found[f"{owner}'s {pname}"] = value.detach()
    return found


def _average(ctx: Context) -> str:
    model = _local_model(ctx)
    if {location_of(p) for p in model.parameters()} != {"me"}:
        raise Failed("`model` should stay here on me and receive the averaged values")
    ind = _individuals(ctx)
    for pname in ("weight", "bias"):
        mean = (ind[f"bob's {pname}"] + ind[f"alice's {pname}"]) / 2
        if not torch.allclose(getattr(model, pname).detach(), mean, atol=1e-6):
            raise Failed(f"model.{pname} is not the average of bob's and alice's")
    return "model holds the average of the two models"


def _went_to_secure(ctx: Context) -> str:
    ind = _individuals(ctx)
    for owner in ("bob", "alice"):
        moved = any(
            e.sender == owner and e.receiver == "secure_worker"
            and same_values(e.tensor, ind[f"{owner}'s weight"])
            for e in ctx.log
        )  # fmt: skip
        if not moved:
            raise Failed(f"{owner}'s model never went from {owner} to the secure worker")
    return "both models went straight to the secure worker"


def _only_average(ctx: Context) -> str:
    leaks = carriers(ctx.log, _individuals(ctx), receiver="me")
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
)  # fmt: skip
