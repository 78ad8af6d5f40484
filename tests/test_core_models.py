"""Models and optimizers on remote data: the course's toy federated learning and more."""

from __future__ import annotations

import pytest
import torch
from torch import nn, optim

import fedlab as sy
from fedlab.exceptions import PointerChainError, StatefulOptimizerError


def keys(w):
    return sorted(w._objects)


def test_model_send_is_in_place_and_keeps_the_optimizer_working(workers):
    bob, *_ = workers
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    params = list(model.parameters())
    opt = optim.SGD(model.parameters(), lr=0.1)
    assert model.send(bob) is model
    assert list(model.parameters()) == params and all(
        a is b for a, b in zip(params, model.parameters())
    )
    assert all(isinstance(p, nn.Parameter) and sy.is_pointer(p) for p in params)
    assert model.location.id == "bob"
    assert len(bob._objects) == 2
    data = torch.tensor([[1.0, 1.0], [0.0, 1.0]]).send(bob)
    target = torch.tensor([[1.0], [1.0]]).send(bob)
    opt.zero_grad()
    pred = model(data)
    assert isinstance(pred, sy.Wrapper) and pred.location.id == "bob"
    loss = ((pred - target) ** 2).sum()
    loss.backward()
    opt.step()
    assert model.get() is model
    assert model.location is None
    assert all(type(p) is nn.Parameter and p.grad is not None for p in model.parameters())
    del pred, loss
    assert keys(bob) == [data.id_at_location, target.id_at_location]


def test_model_get_brings_values_and_grads_back(workers):
    bob, *_ = workers
    model = nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    model.send(bob)
    x = torch.ones(4, 3).send(bob)
    model(x).sum().backward()
    model.get()
    local = nn.Linear(3, 2)
    with torch.no_grad():
        for p, b in zip(local.parameters(), before):
            p.copy_(b)
    local(torch.ones(4, 3)).sum().backward()
    for p, q in zip(model.parameters(), local.parameters()):
        assert torch.equal(p.detach(), q.detach()) and torch.equal(p.grad, q.grad)
    assert bob._objects.keys() == {x.id_at_location}


def test_sequential_of_common_layers(workers):
    bob, *_ = workers
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * 3 * 3, 4),
        nn.BatchNorm1d(4),
        nn.Tanh(),
        nn.Dropout(0.0),
        nn.Linear(4, 3),
        nn.LogSoftmax(dim=1),
    )
    ref = nn.Sequential(*[m for m in model])  # same module objects, used before the send
    x = torch.randn(5, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 0, 1])
    import copy

    twin = copy.deepcopy(model)
    local_loss = nn.functional.nll_loss(twin(x), y)
    local_loss.backward()
    model.send(bob)
    loss = nn.functional.nll_loss(model(x.send(bob)), y.send(bob))
    loss.backward()
    assert torch.equal(loss.get().detach(), local_loss.detach())
    model.get()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p.grad, q.grad)
    for a, b in zip(model.buffers(), twin.buffers()):
        assert torch.equal(a, b)  # BatchNorm's running stats were updated on bob
    assert ref[0] is model[0]


def test_model_move_copy_and_location(workers):
    bob, alice, _ = workers
    model = nn.Linear(2, 2)
    values = [p.detach().clone() for p in model.parameters()]
    model.send(bob)
    twin = model.copy()
    assert twin.location.id == "bob" and twin is not model
    assert len(bob._objects) == 4
    model.move(alice)
    assert model.location.id == "alice" and len(bob._objects) == 2 and len(alice._objects) == 2
    model.get()
    twin.get()
    for p, q, v in zip(model.parameters(), twin.parameters(), values):
        assert torch.equal(p.detach(), v) and torch.equal(q.detach(), v)
    assert bob._objects == {} and alice._objects == {}


def test_sending_a_remote_model_elsewhere_says_to_move(workers):
    bob, alice, _ = workers
    model = nn.Linear(2, 1).send(bob)
    with pytest.raises(PointerChainError, match=r"model\.move\(alice\)"):
        model.send(alice)
    assert model.send(bob) is model
    assert len(bob._objects) == 2 and alice._objects == {}


def test_a_failed_model_send_leaves_the_model_as_it_was(workers):
    model = nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(sy.exceptions.WorkerNotFoundError):
        model.send("nobody")
    assert all(type(p) is nn.Parameter for p in model.parameters())
    assert all(torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before))


def test_plain_sgd_follows_the_model_between_workers(workers):
    bob, alice, _ = workers
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    for w in (bob, alice, bob):
        model.send(w)
        opt.zero_grad()
        model(torch.ones(1, 2).send(w)).sum().backward()
        opt.step()
        model.get()
    assert bob._objects == {} and alice._objects == {}


def test_a_stateful_optimizer_whose_state_lives_elsewhere_gets_a_clear_error(workers):
    bob, alice, _ = workers
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.send(bob)
    opt.zero_grad()
    model(torch.ones(1, 2).send(bob)).sum().backward()
    opt.step()  # momentum buffers are now made on bob
    model.get()
    model.send(alice)
    opt.zero_grad()
    model(torch.ones(1, 2).send(alice)).sum().backward()
    with pytest.raises(StatefulOptimizerError, match="one optimizer per worker"):
        opt.step()


def test_an_optimizer_made_after_the_send_works_on_that_worker(workers):
    bob, *_ = workers
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    twin = nn.Linear(2, 1)
    twin.load_state_dict(model.state_dict())
    model.send(bob)
    opt = optim.Adam(model.parameters(), lr=0.01)
    topt = optim.Adam(twin.parameters(), lr=0.01)
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    for _ in range(3):
        opt.zero_grad()
        model(x.send(bob)).pow(2).sum().backward()
        opt.step()
        topt.zero_grad()
        twin(x).pow(2).sum().backward()
        topt.step()
    model.get()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p.detach(), q.detach())
