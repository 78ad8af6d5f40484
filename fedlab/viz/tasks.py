"""The lessons' practice tasks, one per "Your turn" cell: ``practice.check("two-workers")``.

Each task reads the notebook's variables and the workers' stores and yields one
``(passed, sentence)`` per step, in the order a student does them. A sentence that
fails says what to do next. Conventions: ``tools/build_lessons.py``'s docstring.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from fedlab import registry
from fedlab.pointer import record_of
from fedlab.viz.steps import Namespace, Step, holds, local_tensor, location, peek, same, task
from fedlab.viz.trace import carries_tensor
from fedlab.wrapper import is_pointer


def _pointer_to(ns: Namespace, name: str, where: str) -> Iterator[Step]:
    x = ns[name]
    if not is_pointer(x):
        yield False, f"`{name}` is a tensor here on me: send it with .send({where})"
        return
    at = location(x)
    yield at == where, f"`{name}` points to {at}" + ("" if at == where else f", not {where}")


def _came_home(ns: Namespace, name: str) -> Iterator[Step]:
    x = ns[name]
    if is_pointer(x):
        yield (
            False,
            f"`{name}` is still a pointer: bring the tensor back with {name} = {name}.get()",
        )
    elif not isinstance(x, torch.Tensor):
        yield False, f"`{name}` should be a tensor, but it is a {type(x).__name__}"
    else:
        yield True, f"`{name}` is a tensor here on me"


def _messages_to_me_carrying(trace, values: list[torch.Tensor]) -> list[str]:
    found = []
    for e in trace:
        value = e.payload.value if e.receiver == "me" and carries_tensor(e) else None
        if value is not None and any(same(value, v) for v in values):
            found.append(f"{e.sender} -> me ({e.summary})")
    return found


@task("send-and-read")
def send_and_read(ns: Namespace) -> Iterator[Step]:
    """Lesson 3: send a tensor to bob and read the pointer's attributes."""
    yield from _pointer_to(ns, "mine", "bob")
    ok = same(peek(ns["mine"]), torch.tensor([10, 20, 30]))
    yield ok, "bob holds tensor([10, 20, 30])" if ok else "bob's tensor should be [10, 20, 30]"
    where = ns["where"]
    where_id = getattr(where, "id", where)
    yield (
        where_id == "bob",
        f"`where` is {where_id}"
        + ("" if where_id == "bob" else ": read it from the pointer, mine.location"),
    )
    key, want = ns["key"], ns["mine"].id_at_location
    yield (
        key == want,
        f"`key` is {key}" + ("" if key == want else ": read it from mine.id_at_location"),
    )


@task("two-workers")
def two_workers(ns: Namespace) -> Iterator[Step]:
    """Lesson 4 (the course's first project): one tensor on bob and alice, summed back."""
    pair = ns["pair"]
    multi = type(getattr(pair, "child", None)).__name__ == "MultiPointerTensor"
    yield (
        multi,
        (
            "`pair` is a multi-pointer"
            if multi
            else "`pair` should be a multi-pointer: send to both at once, .send(bob, alice)"
        ),
    )
    names = sorted(w.id for w in pair.location)
    yield names == ["alice", "bob"], f"`pair` points to {' and '.join(names)}"
    yield from _came_home(ns, "total")
    ok = same(ns["total"], torch.tensor([2.0, 4.0, 6.0]))
    yield (
        ok,
        (
            "`total` is the sum of the two copies, tensor([2., 4., 6.])"
            if ok
            else "`total` should be the two copies added: pair.get(sum_results=True)"
        ),
    )
    left = [w for w in ("bob", "alice") if holds(w, torch.tensor([1.0, 2.0, 3.0]))]
    yield (
        not left,
        "nothing is left behind" if not left else f"{' and '.join(left)} still hold a copy",
    )


@task("remote-gradient")
def remote_gradient(ns: Namespace) -> Iterator[Step]:
    """Lesson 5: backward on bob, then the tensor and its gradient come home."""
    yield from _came_home(ns, "a")
    a = ns["a"]
    yield same(a, torch.tensor([2.0, 3.0])), "`a` holds [2., 3.]"
    grad = a.grad
    if grad is None:
        yield (
            False,
            "`a.grad` is None: compute (a * a).sum() on bob and call .backward() before get",
        )
        return
    ok = same(grad, torch.tensor([4.0, 6.0]))
    yield (
        ok,
        (
            "`a.grad` is tensor([4., 6.]), 2 * a, computed on bob"
            if ok
            else f"`a.grad` is {grad}, but the gradient of (a * a).sum() is 2 * a: "
            "was backward called twice?"
        ),
    )


@task("linear-on-bob")
def linear_on_bob(ns: Namespace) -> Iterator[Step]:
    """Lesson 6 (the course's project): a linear model trained where the data is."""
    yield from _pointer_to(ns, "my_weights", "bob")
    w = peek(ns["my_weights"])
    data, target = ns["data"], ns["target"]
    if not isinstance(w, torch.Tensor) or w.shape != (2, 1):
        yield False, "bob's weights should be a 2x1 tensor"
        return
    loss = ((data @ w.detach() - target) ** 2).sum().item()
    good = loss < 0.05
    yield (
        good,
        (
            f"the weights fit the data: loss {loss:.4f}"
            if good
            else f"the loss with these weights is {loss:.3f}: "
            "train more steps, and zero the gradient after each"
        ),
    )
    kept = holds("bob", data)
    yield (
        kept,
        "the data never left bob" if kept else "bob no longer holds the data: did you get it?",
    )


@task("free-one")
def free_one(ns: Namespace) -> Iterator[Step]:
    """Lesson 7: free one remote object by letting its pointer die."""
    ns["batch"]
    first = torch.tensor([0, 0, 0])
    gone = not holds("bob", first)
    yield gone, "bob freed tensor([0, 0, 0])" if gone else "bob still holds tensor([0, 0, 0])"
    rest = [i for i in (1, 2) if holds("bob", torch.tensor([i, i, i]))]
    yield (
        len(rest) == 2,
        (
            "bob still holds the other two"
            if len(rest) == 2
            else "bob lost the other tensors too: free only the first one"
        ),
    )


@task("federated-loop")
def federated_loop(ns: Namespace) -> Iterator[Step]:
    """Lesson 8 (the course's project): the model visits bob and alice in turn."""
    model = ns["my_model"]
    remote = [p for p in model.parameters() if is_pointer(p)]
    if remote:  # said only when it is not here: a model never sent is here too
        yield False, f"`my_model` is still on {location(remote[0])}: bring it back, my_model.get()"
        return
    data, target = ns["data"], ns["target"]
    with torch.no_grad():
        loss = ((model(data) - target) ** 2).sum().item()
    yield (
        loss < 0.01,
        (
            f"it fits all four examples: loss {loss:.5f}"
            if loss < 0.01
            else f"the loss on all four examples is {loss:.3f}: "
            "train on both workers, 20 times each"
        ),
    )
    kept = holds("bob", data[0:2]) and holds("alice", data[2:4])
    yield kept, "the data stayed with bob and alice" if kept else "the data left bob or alice"


@task("chain-to-alice")
def chain_to_alice(ns: Namespace) -> Iterator[Step]:
    """Lesson 9: a chain me -> bob -> alice with the data on alice."""
    yield from _pointer_to(ns, "c", "bob")
    c = ns["c"]
    middle = registry.get_worker("bob").objects().get(c.id_at_location)
    at = record_of(middle).location_id if record_of(middle) is not None else "bob"
    yield (
        at == "alice",
        (
            "bob holds a pointer to alice"
            if at == "alice"
            else "bob holds the data itself: send it to alice first, then send that pointer to bob"
        ),
    )
    ok = same(peek(c), torch.tensor([7, 8, 9]))
    yield ok, "alice holds tensor([7, 8, 9])" if ok else "the end of the chain should be [7, 8, 9]"


@task("journey")
def journey(ns: Namespace) -> Iterator[Step]:
    """Lesson 10: a tensor goes bob -> alice -> carol without passing through me."""
    yield from _pointer_to(ns, "v", "carol")
    values = torch.tensor([4, 5, 6])
    yield same(peek(ns["v"]), values), "carol holds tensor([4, 5, 6])"
    left = [w for w in ("bob", "alice") if holds(w, values)]
    yield not left, "bob and alice kept no copy" if not left else f"{left[0]} kept a copy"
    trip = ns["trip"]
    via = any(e.sender == "bob" and e.receiver == "alice" for e in trip)
    yield via, "it went from bob to alice" if via else "it should go to alice first: v.move(alice)"
    leaks = _messages_to_me_carrying(trip, [values])
    yield (
        not leaks,
        (
            "the values never came to me"
            if not leaks
            else f"the values passed through me: {leaks[0]}; use move, not get and send"
        ),
    )


@task("average-on-secure-worker")
def average_on_secure_worker(ns: Namespace) -> Iterator[Step]:
    """Lesson 11 (the course's project): average on secure_worker; only the average comes here."""
    models = {"bob": ns["bobs_model"], "alice": ns["alices_model"]}
    for name, m in models.items():
        at = location(m.weight)
        yield (
            at == "secure_worker",
            f"{name}'s model is on {at}"
            + ("" if at == "secure_worker" else ": move it with .move(secure_worker)"),
        )
    model = ns["model"]
    if any(is_pointer(p) for p in model.parameters()):
        yield False, "`model` should stay here: load the average into it with set_ or copy_"
        return
    for pname in ("weight", "bias"):
        b, a = peek(getattr(models["bob"], pname)), peek(getattr(models["alice"], pname))
        want = (a.detach() + b.detach()) / 2
        got = getattr(model, pname).detach()
        ok = got.shape == want.shape and torch.allclose(got, want, atol=1e-6)
        yield ok, f"model.{pname} is the average" if ok else f"model.{pname} is not the average yet"
    shown = [peek(getattr(m, p)) for m in models.values() for p in ("weight", "bias")]
    leaks = _messages_to_me_carrying(ns["averaging"], [t.detach() for t in shown])
    yield (
        not leaks,
        (
            "only the average reached me"
            if not leaks
            else f"an individual model reached me: {leaks[0]}; average on secure_worker first"
        ),
    )


@task("weighted-mean")
def weighted_mean(ns: Namespace) -> Iterator[Step]:
    """Lesson 12: FedAvg's weighted average, written by hand."""
    fn = ns["weighted_mean"]
    cases = [
        ([([torch.tensor(1.0)], 30), ([torch.tensor(2.0)], 10)], [torch.tensor(1.25)]),
        (
            [([torch.ones(2, 2), torch.zeros(2)], 1), ([3 * torch.ones(2, 2), torch.ones(2)], 3)],
            [2.5 * torch.ones(2, 2), 0.75 * torch.ones(2)],
        ),
    ]
    for results, want in cases:
        got = fn(results)
        if got is None:
            yield False, "weighted_mean returned None: return the list of averaged parameters"
            return
        got = list(got)
        ok = len(got) == len(want) and all(
            torch.as_tensor(g).shape == w.shape and torch.allclose(torch.as_tensor(g), w)
            for g, w in zip(got, want)
        )
        pretty = ", ".join(f"({[p.tolist() for p in ps]}, {n})" for ps, n in results)
        yield (
            ok,
            (
                f"weighted_mean([{pretty}]) is right"
                if ok
                else f"for [{pretty}] it returned {got}, expected {want}"
            ),
        )
        if not ok:
            return


@task("process-round-trip")
def process_round_trip(ns: Namespace) -> Iterator[Step]:
    """Lesson 13: a tensor doubled in bob's process, and back."""
    yield from _came_home(ns, "doubled")
    ok = same(ns["doubled"], torch.tensor([2.0, 4.0, 6.0]))
    yield ok, "`doubled` is tensor([2., 4., 6.])" if ok else "`doubled` should be [2., 4., 6.]"


@task("plan-one-message")
def plan_one_message(ns: Namespace) -> Iterator[Step]:
    """Lesson 14: a small plan built for bob's tensor and run in one message."""
    plan = ns["my_plan"]
    built = type(plan).__name__ == "Plan" and getattr(plan, "signature", None) is not None
    yield built, "`my_plan` is a built plan" if built else "make it with sy.Plan(...) and .build(u)"
    yield from _came_home(ns, "result")
    ok = same(ns["result"], torch.tensor([3.0, 5.0, 7.0]))
    yield ok, "`result` is tensor([3., 5., 7.])" if ok else "`result` should be u * 2 + 1, fetched"
    kinds = [e.kind for e in ns["plan_trace"] if e.kind not in ("reply", "error")]
    one = kinds.count("plan") == 1 and local_tensor(ns["result"])
    yield (
        one,
        (
            f"one plan message ran it ({', '.join(kinds)})"
            if one
            else f"the trace has {kinds}: call the plan once, inside the with block"
        ),
    )


@task("federated-evaluation")
def federated_evaluation(ns: Namespace) -> Iterator[Step]:
    """Lesson 15: accuracy on a federated test set; only counts come back."""
    import fedlab as sy

    loader = ns["test_loader"]
    yield isinstance(loader, sy.FederatedDataLoader), "`test_loader` is a FederatedDataLoader"
    yield (loader.workers == ["bob", "alice", "carol"],
           f"the test set is on bob, alice and carol (it is on {loader.workers})")  # fmt: skip
    settings = (loader.batch_size, loader.shuffle, loader.drop_last)
    yield settings == (50, False, True), "batches of 50, no shuffling, drop_last=True"
    correct, model, test = ns["correct"], ns["model"], ns["test"]
    yield type(correct) is int, "`correct` is a plain number (.get() each count, then .item())"
    yield model.location is None, "the model is back here (model.get() after each batch)"
    expected = 0  # the same examples, counted here: the first 50 of each worker's 99
    with torch.no_grad():
        for start in (0, 99, 198):
            guess = model(test.data[start : start + 50]).argmax(1)
            expected += int(guess.eq(test.targets[start : start + 50]).sum())
    yield (correct == expected,
           f"{correct} of 150 right, the same count as here" if correct == expected
           else f"you counted {correct} correct; the same 150 digits give {expected}")  # fmt: skip
