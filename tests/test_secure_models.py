"""Encrypted models: inference, training, and secure aggregation, against plain torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn, optim

import fedlab as sy


@pytest.fixture
def ws(me):
    return [sy.VirtualWorker(me.hook, id=i) for i in ("bob", "alice", "james")]


class Net(nn.Module):
    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


DATA = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]])
TARGET = torch.tensor([[0], [0], [1], [1.0]])


def test_encrypted_inference_matches_the_plain_model(ws):
    bob, alice, james = ws
    torch.manual_seed(0)
    model = Net(20)
    want = model(DATA).detach()
    encrypted = model.fix_precision().share(alice, bob, crypto_provider=james)
    assert encrypted is model and isinstance(model.fc1.weight, nn.Parameter)
    assert "Parameter>FixedPrecisionTensor>(Wrapper)>[AdditiveSharingTensor #" in repr(
        model.fc1.weight
    )
    got = model(DATA.fix_precision().share(alice, bob, crypto_provider=james))
    # 3 fractional digits, two layers: a few thousandths at most
    assert (got.get().float_precision() - want).abs().max() < 0.02
    model.get()  # the parameters come home, still encoded
    assert sy.is_pointer(model.fc1.weight.child.child) is False
    model.float_precision()
    assert type(model.fc1.weight) is nn.Parameter and model.fc1.weight.requires_grad
    assert bob._objects == {} and alice._objects == {}


def test_encrypted_training_follows_plain_training(ws):
    """PySyft's Part 12: model and data shared with requires_grad=True, autograd through
    the shares, and a fixed-precision SGD."""
    bob, alice, james = ws
    torch.manual_seed(1)
    model, ref = Net(2), Net(2)
    ref.load_state_dict(model.state_dict())
    data = DATA.fix_precision().share(bob, alice, crypto_provider=james, requires_grad=True)
    target = TARGET.fix_precision().share(bob, alice, crypto_provider=james, requires_grad=True)
    model = model.fix_precision().share(bob, alice, crypto_provider=james, requires_grad=True)
    opt = optim.SGD(params=model.parameters(), lr=0.1).fix_precision()
    ref_opt = optim.SGD(params=ref.parameters(), lr=0.1)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = ((model(data) - target) ** 2).sum()
        loss.backward()
        opt.step()
        ref_opt.zero_grad()
        ref_loss = ((ref(DATA) - TARGET) ** 2).sum()
        ref_loss.backward()
        ref_opt.step()
        losses.append((loss.get().float_precision().item(), ref_loss.item()))
    assert all(abs(a - b) < 0.02 for a, b in losses), losses
    assert losses[-1][0] < losses[0][0]
    model.float_precision()
    assert torch.allclose(model.fc1.weight, ref.fc1.weight, atol=0.01)


def test_gradients_match_torch_for_each_supported_operation(ws):
    bob, alice, james = ws
    torch.manual_seed(2)
    x, w = torch.randn(3, 4), torch.randn(4, 2)
    b = torch.randn(2)
    xs = [t.requires_grad_() for t in (x.clone(), w.clone(), b.clone())]
    torch.nn.functional.mse_loss(F.relu(xs[0] @ xs[1] + xs[2]) * 2 - 1, torch.ones(3, 2)).backward()

    def share(t):
        return t.fix_prec().share(bob, alice, crypto_provider=james, requires_grad=True)

    ss = [share(t) for t in (x, w, b)]
    loss = F.mse_loss(F.relu(ss[0].mm(ss[1]) + ss[2]) * 2 - 1, torch.ones(3, 2))
    loss.backward()
    for s, t in zip(ss, xs):
        assert (s.grad.get().float_precision() - t.grad).abs().max() < 0.02


def test_secure_aggregation_where_the_updates_live(ws):
    """PySyft's Part 10: each worker shares its own parameters; only the average comes
    home, and no message carries a worker's parameters."""
    bob, alice, james = ws
    torch.manual_seed(3)
    models = [Net(4), Net(4)]
    params = [list(m.parameters()) for m in models]
    plain = [[p.detach().clone() for p in ps] for ps in params]
    models[0].send(bob)
    models[1].send(alice)
    with sy.trace() as t:
        new = []
        for i in range(len(params[0])):
            spdz = [
                params[k][i].copy().fix_precision().share(bob, alice, crypto_provider=james).get()
                for k in range(2)
            ]
            new.append((spdz[0] + spdz[1]).get().float_precision() / 2)
    for i, n in enumerate(new):
        assert (n - (plain[0][i] + plain[1][i]) / 2).abs().max() <= 0.001
    for ps in plain:
        for p in ps:
            enc = torch.round(p.double() * 1000).long()
            assert sy.secure.carries(t, p) == [] and sy.secure.carries(t, enc) == []
    assert james._objects == {}


def test_a_model_encoded_on_its_worker_decodes_there(ws):
    bob, *_ = ws
    torch.manual_seed(4)
    model = Net(3)
    want = [p.detach().clone() for p in model.parameters()]
    model.send(bob).fix_precision()
    assert sy.is_pointer(model.fc1.weight.child.child)
    assert bob._objects and all(t.dtype == torch.int64 for t in bob._objects.values())
    model.float_precision()
    assert sy.is_pointer(model.fc1.weight)
    model.get()
    for p, w in zip(model.parameters(), want):
        assert (p - w).abs().max() <= 0.0005
    assert bob._objects == {}
