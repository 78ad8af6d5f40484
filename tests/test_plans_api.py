"""The rest of PySyft 0.2's plan API: plan classes, state, sent plans, and args_shape with -1."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fedlab as sy
from fedlab.exceptions import PlanError


def requests(log) -> list[str]:
    kinds = [e.kind for e in sy.log.messages(log)]
    return [k for k in kinds if k not in ("reply", "delete")]


class Net(sy.Plan):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(2, 3)
        self.fc2 = nn.Linear(3, 2)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return F.log_softmax(x, dim=0)


def plain_net(net: Net, x: torch.Tensor) -> torch.Tensor:
    return nn.Module.__call__(net, x)  # the same module as plain torch runs it


def test_a_plan_class_runs_here_and_on_a_worker_bit_for_bit(workers):
    bob = workers[0]
    net = Net()
    x = torch.tensor([1.0, 2.0])
    net.build(x)
    assert net.is_built and [p.requires_grad for p in net.parameters()] == [True] * 4
    assert torch.equal(net(x), plain_net(net, x))
    log: list = []
    xp = x.send(bob)
    with sy.subscribe(log.append):
        out = net(xp)  # not sent: the plan and its state travel with the call
    assert requests(log) == ["plan"]
    assert torch.equal(out.get(), plain_net(net, x))
    assert repr(net.state) == "State: fc1_weight, fc1_bias, fc2_weight, fc2_bias"


def test_a_sent_plan_runs_by_reference_with_its_state_kept_there(workers):
    bob = workers[0]
    net = Net().build(torch.tensor([1.0, 2.0]))
    before = len(bob.objects())
    ptr_plan = net.send(bob)
    assert len(bob.objects()) == before + 5  # four state tensors and the plan
    log: list = []
    xs = [torch.tensor([1.0, 2.0]), torch.tensor([-3.0, 0.5])]
    with sy.subscribe(log.append):
        outs = [ptr_plan(x.send(bob)) for x in xs]
    assert requests(log) == ["send", "plan", "send", "plan"]
    plan_msgs = [e for e in sy.log.messages(log) if e.kind == "plan"]
    assert all(e.nbytes < 64 for e in plan_msgs)  # references only: no steps, no state
    for out, x in zip(outs, xs):
        assert torch.equal(out.get(), plain_net(net, x))
    del ptr_plan, outs
    assert len(bob.objects()) == before  # the plan and its state are freed with its pointer


def test_sending_a_plan_that_is_not_built_gives_pysyfts_message(bob):
    @sy.func2plan()
    def plan_double_abs(x):
        return torch.abs(x + x)

    assert not plan_double_abs.is_built
    with pytest.raises(PlanError, match="A plan needs to be built before being sent"):
        plan_double_abs.send(bob)
    assert bob.objects() == {}


def test_state_is_read_inside_the_plan_and_travels_with_it(workers):
    bob = workers[0]

    @sy.func2plan(args_shape=[(1,)], state=(torch.tensor([1]),))
    def plan_abs(x, state):
        (bias,) = state.read()
        return x.abs() + bias

    assert plan_abs.is_built
    ptr = plan_abs.send(bob)
    assert ptr(torch.tensor([-1, 0]).send(bob)).get().tolist() == [2, 1]  # (a -1 size: any)
    named = sy.func2plan(args_shape=[(2,)], state={"bias": torch.tensor([1.0, 2.0])})(
        lambda x, state: x * state.read("bias")
    )
    assert named(torch.tensor([3.0, 4.0])).tolist() == [3.0, 8.0]
    assert named(torch.tensor([3.0, 4.0]).send(bob)).get().tolist() == [3.0, 8.0]


def test_a_minus_one_takes_any_size_and_each_size_is_traced_once(workers):
    bob = workers[0]

    @sy.func2plan(args_shape=[(-1, 1)])
    def plan_double_abs(x):
        return torch.abs(x + x)

    assert plan_double_abs.is_built
    for n in (3, 5, 3):
        x = torch.randn(n, 1)
        assert torch.equal(plan_double_abs(x), torch.abs(x + x))
        assert torch.equal(plan_double_abs(x.send(bob)).get(), torch.abs(x + x))
    assert len(plan_double_abs._traces) == 3  # 1 (built), 3 and 5
    assert "(a -1: any size) is traced again (3 kept)" in plan_double_abs.code


def test_a_plan_built_from_examples_refuses_other_shapes(bob):
    plan = sy.Plan(lambda x: x * 2).build(torch.ones(3))
    with pytest.raises(PlanError, match=r"built for float32\[3\] as input 1"):
        plan(torch.ones(4))


def test_a_sent_plan_with_a_flexible_shape_keeps_one_definition_per_shape(bob):
    plan = sy.func2plan(args_shape=[(-1,)])(lambda x: x * 2)
    ptr = plan.send(bob)
    log: list = []
    with sy.subscribe(log.append):
        a = ptr(torch.ones(4).send(bob))
        b = ptr(torch.ones(4).send(bob))
    assert requests(log) == ["send", "send", "plan", "send", "plan"]  # one new shape: kept once
    assert a.get().tolist() == b.get().tolist() == [2.0] * 4


def test_a_plan_class_can_be_trained_remotely_like_a_module(bob):
    net = Net()
    x, y = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    net.build(x)
    out = net(x.send(bob))
    loss = ((out - y.send(bob)) ** 2).sum()
    assert torch.allclose(loss.get(), ((plain_net(net, x) - y) ** 2).sum())


def test_tags_travel_and_search_finds_the_tensors_a_worker_may_share(workers):
    bob = workers[0]
    x = torch.tensor([1.0, 2.0]).tag("#boston", "#data").describe("house prices")
    assert x.tags == ["#boston", "#data"] and x.describe("prices") is x
    xp = x.send(bob)
    assert "Tags: #boston #data" in repr(xp) and "Description: prices" in repr(xp)
    y = torch.tensor([3.0]).tag("#boston", "#target").send(bob)
    found = bob.search("#boston", "#data")
    assert [repr(p.child).splitlines()[1] for p in found] == ["\tTags: #boston #data"]
    assert torch.equal((found[0] * 2).get(), x * 2)
    assert {p.id_at_location for p in bob.search(["#boston"])} == {
        xp.id_at_location,
        y.id_at_location,
    }
    assert bob.search("#nothing") == []
    del found  # pointers from a search free nothing
    assert len(bob.objects()) == 2


def test_a_worker_data_is_its_own_tagged_and_found_by_others(me):
    from fedlab import registry

    x11 = torch.tensor([-1, 2.0]).tag("input_data")
    x12 = torch.tensor([1, -2.0]).tag("input_data2")
    device = sy.VirtualWorker(sy.local_worker.hook, id="device_1", data=(x11, x12))
    try:
        ptr = device.search("input_data")[0]
        assert ptr.id_at_location == 1 and torch.equal(ptr.get(), x11)
        with pytest.raises(TypeError, match="unexpected keyword arguments: \\['colour'\\]"):
            sy.VirtualWorker(None, id="device_2", colour="red")
        assert sy.local_worker.add_worker(device) is sy.local_worker  # one worker, PySyft-style
    finally:
        del registry._workers["device_1"]
