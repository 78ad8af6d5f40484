"""``.grad`` on a pointer: one object per gradient, asked for once, and always right."""

from __future__ import annotations

import torch
from torch import nn, optim

import fedlab as sy


def messages(fn):
    """The kinds of the requests ``fn`` sends (replies left out), and its result."""
    seen = []
    with sy.subscribe(lambda e: seen.append(e) if type(e).__name__ == "Exchange" else None):
        result = fn()
    return [e.kind for e in sy.log.messages(seen) if e.kind != "reply"], result


def test_a_fresh_pointer_knows_it_has_no_gradient_without_asking(workers):
    bob, *_ = workers
    w = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
    sent, grad = messages(lambda: w.grad)
    assert grad is None and sent == []


def test_grad_is_one_object_until_a_gradient_may_change(workers):
    bob, *_ = workers
    w = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
    (w * w).sum().backward()
    sent, g1 = messages(lambda: w.grad)
    assert sent == ["op"]
    sent, g2 = messages(lambda: w.grad)
    assert g2 is g1 and sent == []  # like torch: the same object, and no message

    (w * 3).sum().backward()  # accumulates: the next read asks again
    sent, g3 = messages(lambda: w.grad)
    assert sent == ["op"]
    local = torch.tensor([1.0, 2.0], requires_grad=True)
    (local * local).sum().backward()
    held = local.grad
    (local * 3).sum().backward()
    assert torch.equal(g3.get(), local.grad)
    assert torch.equal(g1.get(), held)  # a held gradient reads as torch's does


def test_setting_or_fetching_the_gradient_is_seen_by_the_next_read(workers):
    bob, *_ = workers
    w = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
    (w * w).sum().backward()
    g = w.grad
    assert torch.equal(g.get(), torch.tensor([2.0, 4.0]))
    again = w.grad  # g was fetched: a fresh pointer, not the spent one
    assert again is not g and torch.equal(again.get(), torch.tensor([2.0, 4.0]))
    w.grad = None
    assert w.grad is None
    (w * 2).sum().backward()
    assert torch.equal(w.grad.get(), torch.tensor([2.0, 2.0]))


def test_a_moved_parameter_reads_its_gradient_where_it_now_lives(workers):
    bob, alice, _ = workers
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    p = w.send(bob)
    g = p.grad
    assert g.location.id == "bob"
    p.move(alice)
    moved = p.grad
    assert moved is not g and moved.location.id == "alice"
    assert torch.equal(moved.get(), torch.tensor([2.0, 4.0]))


def test_an_sgd_step_reads_each_gradient_once_and_leaves_nothing_behind(workers):
    bob, *_ = workers
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    local = nn.Linear(3, 1)
    local.load_state_dict(model.state_dict())
    x, y = torch.randn(4, 3), torch.randn(4, 1)
    px, py = x.send(bob), y.send(bob)
    model.send(bob)
    opt = optim.SGD(model.parameters(), lr=0.1)
    local_opt = optim.SGD(local.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.mse_loss(model(px), py).backward()
        sent, _ = messages(opt.step)
        assert sent.count("op") == 4  # per parameter: read its gradient, add_ the step
        local_opt.zero_grad()
        nn.functional.mse_loss(local(x), y).backward()
        local_opt.step()
    model.get()
    for p, q in zip(model.parameters(), local.parameters()):
        assert torch.equal(p.detach(), q.detach()) and torch.equal(p.grad, q.grad)
    assert bob._objects.keys() == {px.id_at_location, py.id_at_location}


def test_a_chain_gives_a_fresh_pointer_for_each_read(workers):
    bob, alice, _ = workers
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    chain = w.send(bob).send(alice)
    g1 = chain.grad
    (chain * 1.0).sum().backward()
    g2 = chain.grad  # alice stores a new pointer: the two never share an id
    assert g1.id_at_location != g2.id_at_location
    del g1
    assert torch.equal(g2.get().get(), torch.tensor([3.0, 5.0]))
