# ruff: noqa: E501  (the tutorials' code is kept as written, long comments included)
"""PySyft 0.2's tutorials Parts 1, 3, 4 and 5 (OpenMined/PySyft, examples/tutorials), cell by cell.

As in ``test_pysyft_tutorials.py`` (Parts 2, 6, 7, 8): the code is the tutorial's, with
``import syft as sy`` -> ``import fedlab as sy`` and the lines marked ``CHANGED``. Each
cell's printed text and shown value (its last line's, as a notebook shows it) are
checked, with the messages it sent; Part 4's training equals plain torch bit for bit.
Part 5 runs on ``sy.create_sandbox``, whose Boston data are scikit-learn's diabetes data.
"""

from __future__ import annotations

import copy

import torch

import fedlab as sy
from tests.support.tutorials import run_notebook

# -- Part 01 - The Basic Tools of Private Deep Learning ---------------------------------

PART_01 = [
    """
# Run this cell to see if things work
import sys

import torch
from torch.nn import Parameter
import torch.nn as nn
import torch.nn.functional as F

import fedlab as sy
hook = sy.TorchHook(torch)

torch.tensor([1,2,3,4,5])
""",
    """
x = torch.tensor([1,2,3,4,5])
y = x + x
print(y)
""",
    'bob = sy.VirtualWorker(hook, id="bob")',
    """
x = torch.tensor([1,2,3,4,5])
y = torch.tensor([1,1,1,1,1])
""",
    """
x_ptr = x.send(bob)
y_ptr = y.send(bob)
""",
    "x_ptr",
    "bob._objects",
    "z = x_ptr + x_ptr",
    "z",
    "bob._objects",
    "x_ptr",
    "x_ptr.location",
    "bob",
    "bob == x_ptr.location",
    "x_ptr.id_at_location",
    "x_ptr.owner",
    """
me = sy.local_worker
me
""",
    "me == x_ptr.owner",
    "x_ptr",
    "x_ptr.get()",
    "y_ptr",
    "y_ptr.get()",
    "z.get()",
    "bob._objects",
    """
x = torch.tensor([1,2,3,4,5]).send(bob)
y = torch.tensor([1,1,1,1,1]).send(bob)
""",
    "z = x + y",
    "z",
    "z.get()",
    "x",
    "y",
    """
z = torch.add(x,y)
z
""",
    "z.get()",
    """
x = torch.tensor([1,2,3,4,5.], requires_grad=True).send(bob)
y = torch.tensor([1,1,1,1,1.], requires_grad=True).send(bob)
""",
    "z = (x + y).sum()",
    "z.backward()",
    "x = x.get()",
    "x",
    "x.grad",
]


def test_part_01_the_basic_tools_of_private_deep_learning():
    ns, cells = run_notebook(PART_01)
    shown = {i: c.shown for i, c in enumerate(cells) if c.shown is not None}
    assert shown == {
        0: "tensor([1, 2, 3, 4, 5])",
        5: "(Wrapper)>[PointerTensor | me:1 -> bob:1]",
        6: "{1: tensor([1, 2, 3, 4, 5]), 2: tensor([1, 1, 1, 1, 1])}",  # bob has two tensors
        8: "(Wrapper)>[PointerTensor | me:3 -> bob:3]",
        9: "{1: tensor([1, 2, 3, 4, 5]), 2: tensor([1, 1, 1, 1, 1]), 3: tensor([ 2,  4,  6,  8, 10])}",
        10: "(Wrapper)>[PointerTensor | me:1 -> bob:1]",
        11: "<VirtualWorker id:bob #objects:3>",  # x_ptr.location
        12: "<VirtualWorker id:bob #objects:3>",
        13: "True",  # bob == x_ptr.location
        14: "1",  # x_ptr.id_at_location
        15: "<VirtualWorker id:me #objects:0>",  # x_ptr.owner
        16: "<VirtualWorker id:me #objects:0>",
        17: "True",  # me == x_ptr.owner
        18: "(Wrapper)>[PointerTensor | me:1 -> bob:1]",
        19: "tensor([1, 2, 3, 4, 5])",
        20: "(Wrapper)>[PointerTensor | me:2 -> bob:2]",
        21: "tensor([1, 1, 1, 1, 1])",
        22: "tensor([ 2,  4,  6,  8, 10])",
        23: "{}",  # bob no longer has the tensors
        26: "(Wrapper)>[PointerTensor | me:6 -> bob:6]",
        27: "tensor([2, 3, 4, 5, 6])",
        28: "(Wrapper)>[PointerTensor | me:4 -> bob:4]",
        29: "(Wrapper)>[PointerTensor | me:5 -> bob:5]",
        30: "(Wrapper)>[PointerTensor | me:7 -> bob:7]",
        31: "tensor([2, 3, 4, 5, 6])",
        36: "tensor([1., 2., 3., 4., 5.], requires_grad=True)",
        37: "tensor([1., 1., 1., 1., 1.])",  # x.grad: the backward ran on bob
    }
    assert [c.printed for c in cells if c.printed] == ["tensor([ 2,  4,  6,  8, 10])\n"]
    sent = {i: c.sent for i, c in enumerate(cells) if c.sent}
    assert sent == {
        4: ["send", "send"],
        7: ["op"],
        19: ["fetch"],
        21: ["fetch"],
        22: ["fetch"],
        24: ["send", "send"],
        25: ["op"],
        27: ["fetch"],
        30: ["op"],
        31: ["fetch"],
        32: ["send", "send"],
        33: ["op", "op"],  # x + y, then .sum()
        34: ["op"],  # backward, on bob
        35: ["fetch"],  # x comes back with its gradient
    }
    # Left on bob: y, and z = (x + y).sum() (x + y, which nothing holds, was freed at once).
    assert sy.get_worker("bob").objects().keys() == {9, 11}
    del ns
    assert sy.get_worker("bob").objects() == {}  # y and z died with the namespace: freed


# -- Part 03 - Advanced Remote Execution Tools ----------------------------------------

PART_03 = [
    """
import torch
import fedlab as sy
hook = sy.TorchHook(torch)
""",
    """
bob = sy.VirtualWorker(hook, id='bob')
alice = sy.VirtualWorker(hook, id='alice')
""",
    """
# this is a local tensor
x = torch.tensor([1,2,3,4])
x
""",
    """
# this sends the local tensor to Bob
x_ptr = x.send(bob)

# this is now a pointer
x_ptr
""",
    """
# now we can SEND THE POINTER to alice!!!
pointer_to_x_ptr = x_ptr.send(alice)

pointer_to_x_ptr
""",
    """
# As you can see above, Bob still has the actual data (data is always stored in a LocalTensor type).
bob._objects
""",
    """
# Alice, on the other hand, has x_ptr!! (notice how it points at bob)
alice._objects
""",
    """
# and we can use .get() to get x_ptr back from Alice

x_ptr = pointer_to_x_ptr.get()
x_ptr
""",
    """
# and then we can use x_ptr to get x back from Bob!

x = x_ptr.get()
x
""",
    "bob._objects",
    "alice._objects",
    """
p2p2x = torch.tensor([1,2,3,4,5]).send(bob).send(alice)

y = p2p2x + p2p2x
""",
    "bob._objects",
    "alice._objects",
    "y.get().get()",
    "bob._objects",
    "alice._objects",
    "p2p2x.get().get()",
    "bob._objects",
    "alice._objects",
    """
# x is now a pointer to the data which lives on Bob's machine
x = torch.tensor([1,2,3,4,5]).send(bob)
""",
    """
print('  bob:', bob._objects)
print('alice:',alice._objects)
""",
    "x = x.move(alice)",
    """
print('  bob:', bob._objects)
print('alice:',alice._objects)
""",
    "x",
]


def test_part_03_advanced_remote_execution_tools():
    ns, cells = run_notebook(PART_03)
    shown = {i: c.shown for i, c in enumerate(cells) if c.shown is not None}
    assert shown == {
        2: "tensor([1, 2, 3, 4])",
        3: "(Wrapper)>[PointerTensor | me:1 -> bob:1]",
        4: "(Wrapper)>[PointerTensor | me:2 -> alice:1]",  # a pointer to the pointer
        5: "{1: tensor([1, 2, 3, 4])}",  # bob still has the data
        6: "{1: [PointerTensor | alice:1 -> bob:1]}",  # alice has x_ptr, pointing at bob
        7: "(Wrapper)>[PointerTensor | me:3 -> bob:1]",  # x_ptr back from alice
        8: "tensor([1, 2, 3, 4])",
        9: "{}",
        10: "{}",
        12: "{2: tensor([1, 2, 3, 4, 5]), 3: tensor([ 2,  4,  6,  8, 10])}",
        13: "{2: [PointerTensor | alice:2 -> bob:2], 3: [PointerTensor | alice:3 -> bob:3]}",
        14: "tensor([ 2,  4,  6,  8, 10])",  # y.get().get()
        15: "{2: tensor([1, 2, 3, 4, 5])}",
        16: "{2: [PointerTensor | alice:2 -> bob:2]}",
        17: "tensor([1, 2, 3, 4, 5])",  # p2p2x.get().get()
        18: "{}",
        19: "{}",
        24: "(Wrapper)>[PointerTensor | me:9 -> alice:4]",  # x moved from bob to alice
    }
    printed = {i: c.printed for i, c in enumerate(cells) if c.printed}
    assert printed == {
        21: "  bob: {4: tensor([1, 2, 3, 4, 5])}\nalice: {}\n",
        23: "  bob: {}\nalice: {4: tensor([1, 2, 3, 4, 5])}\n",
    }
    # The move went from bob straight to alice: nothing came to me.
    assert cells[22].sent == ["move", "send"]
    assert cells[7].sent == ["fetch", "forward"]  # alice gives x_ptr back, bob is told
    del ns
    assert sy.get_worker("alice").objects() == {} and sy.get_worker("bob").objects() == {}


# -- Part 04 - Federated Learning via Trusted Aggregator -------------------------------

PART_04 = [
    """
import torch
import fedlab as sy
import copy
hook = sy.TorchHook(torch)
from torch import nn, optim
""",
    """
# create a couple workers

bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
secure_worker = sy.VirtualWorker(hook, id="secure_worker")


# A Toy Dataset
data = torch.tensor([[0,0],[0,1],[1,0],[1,1.]], requires_grad=True)
target = torch.tensor([[0],[0],[1],[1.]], requires_grad=True)

# get pointers to training data on each worker by
# sending some training data to bob and alice
bobs_data = data[0:2].send(bob)
bobs_target = target[0:2].send(bob)

alices_data = data[2:].send(alice)
alices_target = target[2:].send(alice)
""",
    """
# Iniitalize A Toy Model
model = nn.Linear(2,1)
""",
    """
bobs_model = model.copy().send(bob)
alices_model = model.copy().send(alice)

bobs_opt = optim.SGD(params=bobs_model.parameters(),lr=0.1)
alices_opt = optim.SGD(params=alices_model.parameters(),lr=0.1)
""",
    """
for i in range(10):

    # Train Bob's Model
    bobs_opt.zero_grad()
    bobs_pred = bobs_model(bobs_data)
    bobs_loss = ((bobs_pred - bobs_target)**2).sum()
    bobs_loss.backward()

    bobs_opt.step()
    bobs_loss = bobs_loss.get().data

    # Train Alice's Model
    alices_opt.zero_grad()
    alices_pred = alices_model(alices_data)
    alices_loss = ((alices_pred - alices_target)**2).sum()
    alices_loss.backward()

    alices_opt.step()
    alices_loss = alices_loss.get().data

    print("Bob:" + str(bobs_loss) + " Alice:" + str(alices_loss))
""",
    "alices_model.move(secure_worker)",
    "bobs_model.move(secure_worker)",
    """
with torch.no_grad():
    model.weight.set_(((alices_model.weight.data + bobs_model.weight.data) / 2).get())
    model.bias.set_(((alices_model.bias.data + bobs_model.bias.data) / 2).get())
""",
    """
iterations = 10
worker_iters = 5

for a_iter in range(iterations):

    bobs_model = model.copy().send(bob)
    alices_model = model.copy().send(alice)

    bobs_opt = optim.SGD(params=bobs_model.parameters(),lr=0.1)
    alices_opt = optim.SGD(params=alices_model.parameters(),lr=0.1)

    for wi in range(worker_iters):

        # Train Bob's Model
        bobs_opt.zero_grad()
        bobs_pred = bobs_model(bobs_data)
        bobs_loss = ((bobs_pred - bobs_target)**2).sum()
        bobs_loss.backward()

        bobs_opt.step()
        bobs_loss = bobs_loss.get().data

        # Train Alice's Model
        alices_opt.zero_grad()
        alices_pred = alices_model(alices_data)
        alices_loss = ((alices_pred - alices_target)**2).sum()
        alices_loss.backward()

        alices_opt.step()
        alices_loss = alices_loss.get().data

    alices_model.move(secure_worker)
    bobs_model.move(secure_worker)
    with torch.no_grad():
        model.weight.set_(((alices_model.weight.data + bobs_model.weight.data) / 2).get())
        model.bias.set_(((alices_model.bias.data + bobs_model.bias.data) / 2).get())

    print("Bob:" + str(bobs_loss) + " Alice:" + str(alices_loss))
""",
    """
preds = model(data)
loss = ((preds - target) ** 2).sum()
""",
    """
print(preds)
print(target)
print(loss.data)
""",
]


def _part_04_in_plain_torch(start: list[torch.Tensor]) -> tuple[list, str]:
    """Part 4's training, each worker's half of the data here, in plain torch."""
    import io
    from contextlib import redirect_stdout

    data = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]], requires_grad=True)
    target = torch.tensor([[0], [0], [1], [1.0]], requires_grad=True)
    halves = [(data[0:2].detach(), target[0:2].detach()), (data[2:].detach(), target[2:].detach())]
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        for p, value in zip(model.parameters(), start):
            p.copy_(value)
    out = io.StringIO()

    def local_round(iters: int, print_each: bool) -> list[torch.Tensor]:
        copies = [copy.deepcopy(model) for _ in halves]  # bob's, alice's
        opts = [torch.optim.SGD(c.parameters(), lr=0.1) for c in copies]
        for _ in range(iters):
            losses = []
            for (x, y), c, opt in zip(halves, copies, opts):
                opt.zero_grad()
                loss = ((c(x) - y) ** 2).sum()
                loss.backward()
                opt.step()
                losses.append(loss.detach())
            if print_each:
                print("Bob:" + str(losses[0]) + " Alice:" + str(losses[1]))
        with torch.no_grad():
            model.weight.set_((copies[1].weight.data + copies[0].weight.data) / 2)
            model.bias.set_((copies[1].bias.data + copies[0].bias.data) / 2)
        return losses

    with redirect_stdout(out):
        local_round(10, True)
        for _ in range(10):
            losses = local_round(5, False)
            print("Bob:" + str(losses[0]) + " Alice:" + str(losses[1]))
        preds = model(data)
        loss = ((preds - target) ** 2).sum()
        print(preds)
        print(target)
        print(loss.data)
    return [p.detach().clone() for p in model.parameters()], out.getvalue()


def test_part_04_federated_learning_via_trusted_aggregator():
    ns, cells = run_notebook(PART_04[:3])  # up to the model, whose first weights we keep
    start = [p.detach().clone() for p in ns["model"].parameters()]
    ns, rest = run_notebook(PART_04[3:], ns)
    cells += rest
    printed = "".join(c.printed for c in cells)
    expected_params, expected = _part_04_in_plain_torch(start)
    assert printed == expected  # every loss, the predictions and the final loss
    assert all(torch.equal(a, b) for a, b in zip(ns["model"].parameters(), expected_params))
    assert ns["loss"].item() < 0.1
    # The models went from bob and alice straight to the secure worker; only the
    # averages came to me (one fetch each for the weight and the bias).
    assert cells[5].sent == cells[6].sent == ["move", "send", "move", "send"]
    assert cells[5].shown == cells[6].shown == "Linear(in_features=2, out_features=1, bias=True)"
    assert cells[7].sent.count("fetch") == 2


# -- Part 05 - Welcome to the Sandbox ------------------------------------------------

PART_05 = [
    """
import torch
import fedlab as sy
sy.create_sandbox(globals())
""",
    "workers",
    "hook",
    "bob",
    """
x = torch.tensor([1,2,3,4,5]).tag("#fun", "#boston", "#housing").describe("The input datapoints to the boston housing dataset.")
y = torch.tensor([1,2,3,4,5]).tag("#fun", "#boston", "#housing").describe("The input datapoints to the boston housing dataset.")
z = torch.tensor([1,2,3,4,5]).tag("#fun", "#mnist",).describe("The images in the MNIST training dataset.")
""",
    "x",
    """
x = x.send(bob)
y = y.send(bob)
z = z.send(bob)

# this searches for exact match within a tag or within the description
results = bob.search(["#boston", "#housing"])
""",
    "results",
    "print(results[0].child.description)  # CHANGED: was results[0].description (see below)",
    "grid = sy.PrivateGridNetwork(*workers)",
    'results = grid.search("#boston")',
    'boston_data = grid.search("#boston","#data")',
    'boston_target = grid.search("#boston","#target")',
]


def test_part_05_welcome_to_the_sandbox(workers_undone):
    ns, cells = run_notebook(PART_05)
    assert cells[0].printed.startswith("Setting up Sandbox...\n\t- Hooking PyTorch\n")
    assert cells[0].printed.endswith("\tCollecting workers into a VirtualGrid...\nDone!\n")
    names = ["bob", "theo", "jason", "alice", "andy", "jon"]
    assert (
        cells[1].shown
        == "[" + ", ".join(f"<VirtualWorker id:{n} #objects:12>" for n in names) + "]"
    )
    assert cells[2].shown == "<TorchHook local_worker:me>"
    assert cells[3].shown == "<VirtualWorker id:bob #objects:12>"
    assert cells[5].shown == "tensor([1, 2, 3, 4, 5])"
    # bob's search finds its own Boston (diabetes) data and targets, then x and y: not z.
    results = cells[7].shown
    assert results.startswith(
        "[(Wrapper)>[PointerTensor | me:4 -> bob:1]\n\tTags: #diabetes #boston"
    )
    found = results.split(", (Wrapper)>")
    assert len(found) == 4 and "me:6 -> bob:13]\n\tTags: #fun #boston #housing\n" in found[2]
    assert found[3].startswith("[PointerTensor | me:7 -> bob:14]")
    assert cells[8].printed.startswith("Diabetes dataset (scikit-learn's; it stands in for Boston")
    # The grid: every worker holds Boston's data and targets; bob also holds x and y.
    boston = ns["results"]
    assert list(boston) == names and [len(boston[n]) for n in names] == [4, 2, 2, 2, 2, 2]
    data, target = ns["boston_data"], ns["boston_target"]
    assert list(data) == list(target) == names
    assert all(len(data[n]) == len(target[n]) == 1 for n in names)
    assert [data[n][0].shape for n in names] == [torch.Size([73, 10])] * 5 + [torch.Size([77, 10])]


def test_part_05_description_cell_as_written(workers_undone):
    cells = [*PART_05[:7], "print(results[0].description)"]
    _, out = run_notebook(cells)
    assert out[-1].printed.startswith("Diabetes dataset")
