"""Optims: one optimizer per worker (PySyft 0.2's syft.federated.floptimizer), checked
against the same training with one plain torch optimizer per data owner."""

from __future__ import annotations

import pytest
import torch
from torch import nn, optim

import fedlab as sy
from fedlab.exceptions import StatefulOptimizerError
from fedlab.federated.floptimizer import Optims

DATA = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]])
TARGET = torch.tensor([[0], [0], [1], [1.0]])


def _model() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(2, 1)


def _train(model, datasets, get_opt, remote: bool, rounds: int = 5) -> list[torch.Tensor]:
    """Part 2's loop: the model visits each worker's data; returns the losses."""
    losses = []
    for _ in range(rounds):
        for name, (data, target) in datasets.items():
            if remote:
                model.send(data.location)
            opt = get_opt(name)
            opt.zero_grad()
            loss = ((model(data) - target) ** 2).sum()
            loss.backward()
            opt.step()
            if remote:
                model.get()
                loss = loss.get()
            losses.append(loss.detach())
    return losses


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.Adam(ps, lr=0.1),
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: optim.RMSprop(ps, lr=0.01),
    ],
    ids=["Adam", "SGD-momentum", "RMSprop"],
)
def test_optims_trains_like_one_plain_optimizer_per_owner(bob, alice, make):
    model = _model()
    remote = {"bob": (DATA[:2].send(bob), TARGET[:2].send(bob))}
    remote["alice"] = (DATA[2:].send(alice), TARGET[2:].send(alice))
    optims = Optims(["bob", "alice"], optim=make(model.parameters()))
    losses = _train(model, remote, optims.get_optim, remote=True)

    twin = _model()
    local = {"bob": (DATA[:2], TARGET[:2]), "alice": (DATA[2:], TARGET[2:])}
    plain = {name: make(twin.parameters()) for name in local}
    expected = _train(twin, local, plain.__getitem__, remote=False)

    assert torch.equal(torch.stack(losses), torch.stack(expected))
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)
    assert sum(losses[-2:]) < sum(losses[:2])  # the last round beats the first
    # Each optimizer's state lives on its own worker.
    for name in ("bob", "alice"):
        for state in optims.get_optim(name).state.values():
            for value in state.values():
                if sy.is_pointer(value):
                    assert value.location.id == name


def test_one_stateful_optimizer_for_two_workers_is_refused(bob, alice):
    model = _model()
    remote = {"bob": (DATA[:2].send(bob), TARGET[:2].send(bob))}
    remote["alice"] = (DATA[2:].send(alice), TARGET[2:].send(alice))
    opt = optim.Adam(model.parameters(), lr=0.1)
    with pytest.raises(StatefulOptimizerError, match="one optimizer per worker"):
        _train(model, remote, lambda name: opt, remote=True, rounds=1)


def test_each_copy_has_its_own_settings_and_state(bob):
    model = _model()
    original = optim.Adam(model.parameters(), lr=0.1)
    optims = Optims([bob, "alice"], optim=original)  # workers or their ids
    assert optims.count() == 2
    b, a = optims.get_optim("bob"), optims.get_optim(sy.get_worker("bob"))
    assert b is a and optims.get_optim("alice") is not b
    b.param_groups[0]["lr"] = 0.5
    assert optims.get_optim("alice").param_groups[0]["lr"] == 0.1
    assert original.param_groups[0]["lr"] == 0.1
    assert all(p is q for p, q in zip(b.param_groups[0]["params"], model.parameters()))
    with pytest.raises(KeyError, match="made for"):
        optims.get_optim("carol")
    with pytest.raises(TypeError, match="optimizer object"):
        Optims(["bob"], optim=optim.Adam)


def test_optims_is_where_the_course_imports_it():
    import fedlab.federated.floptimizer as floptimizer

    assert sy.Optims is floptimizer.Optims is Optims
