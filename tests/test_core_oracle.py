"""The oracle: the course's programs give bit-identical results on workers and locally."""

from __future__ import annotations

import torch
from torch import nn, optim


def remote_arithmetic(send):
    x = send(torch.tensor([1, 2, 3, 4, 5]))
    y = send(torch.tensor([1, 1, 1, 1, 1]))
    out = [x + y, torch.add(x, y), x * y - x, (x**2).sum()]
    a = send(torch.tensor([15.0, 12, 4, 6, 78], requires_grad=True))
    b = send(torch.tensor([1.0, 1, 1, 1, 1], requires_grad=True))
    z = (a + b).sum()
    z.backward()
    return out, a, b


def linear_model(send, steps=20):
    inp = send(torch.tensor([[1.0, 1.0], [0, 1.0], [1.0, 0.0], [0, 0]], requires_grad=True))
    target = send(torch.tensor([[1.0], [1], [0], [0]], requires_grad=True))
    weights = send(torch.tensor([[0.0], [0]], requires_grad=True))
    losses = []
    for _ in range(steps):
        pred = inp.mm(weights)
        loss = ((pred - target) ** 2).sum()
        loss.backward()
        weights.data.sub_(weights.grad * 0.1)
        weights.grad.zero_()
        losses.append(loss)
    return losses, weights


def toy_federated(placements, iterations=10):
    torch.manual_seed(42)
    data = torch.tensor([[1.0, 1], [0, 1], [1, 0], [0, 0]], requires_grad=True)
    target = torch.tensor([[1.0], [1], [0], [0]], requires_grad=True)
    datasets = [(place(data[0:2]), place(target[0:2])) for place in placements[:1]] + [
        (place(data[2:4]), place(target[2:4])) for place in placements[1:]
    ]
    model = nn.Linear(2, 1)
    opt = optim.SGD(params=model.parameters(), lr=0.1)
    losses = []
    for _ in range(iterations):
        for _data, _target in datasets:
            remote = hasattr(_data, "location")
            if remote:
                model.send(_data.location)
            opt.zero_grad()
            pred = model(_data)
            loss = ((pred - _target) ** 2).sum()
            loss.backward()
            opt.step()
            if remote:
                model.get()
                loss = loss.get()
            losses.append(loss.detach())
    return losses, model


def test_remote_arithmetic_and_autograd_match_local(workers):
    bob, *_ = workers
    (out_r, a_r, b_r), (out_l, a_l, b_l) = (
        remote_arithmetic(lambda t: t.send(bob)),
        remote_arithmetic(lambda t: t),
    )
    for r, loc in zip(out_r, out_l):
        assert torch.equal(r.get(), loc)
    a_r, b_r = a_r.get(), b_r.get()
    assert torch.equal(a_r.grad, a_l.grad) and torch.equal(b_r.grad, b_l.grad)


def test_linear_model_trained_on_bob_is_bit_identical(workers):
    bob, *_ = workers
    losses_r, w_r = linear_model(lambda t: t.send(bob))
    losses_l, w_l = linear_model(lambda t: t)
    for r, loc in zip(losses_r, losses_l):
        assert torch.equal(r.get().detach(), loc.detach())
    assert torch.equal(w_r.get().detach(), w_l.detach())
    assert losses_l[-1].item() < losses_l[0].item()


def test_toy_federated_learning_is_bit_identical(workers):
    bob, alice, _ = workers
    losses_r, model_r = toy_federated([lambda t: t.send(bob), lambda t: t.send(alice)])
    losses_l, model_l = toy_federated([lambda t: t, lambda t: t])
    assert len(losses_r) == len(losses_l) == 20
    for r, loc in zip(losses_r, losses_l):
        assert torch.equal(r, loc)
    for p, q in zip(model_r.parameters(), model_l.parameters()):
        assert torch.equal(p.detach(), q.detach())
        assert torch.equal(p.grad, q.grad)
