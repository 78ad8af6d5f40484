"""The lessons' practice checks: right answers pass, wrong ones fail with a useful sentence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fedlab as sy
from fedlab.viz import practice


def test_unknown_task_names_the_tasks():
    with pytest.raises(KeyError, match="two-workers"):
        practice.check("no-such-task", namespace={})


def test_missing_and_placeholder_variables_say_what_to_do():
    missing = practice.check("two-workers", namespace={})
    assert not missing.passed and "there is no `pair` yet" in repr(missing)
    placeholder = practice.check("two-workers", namespace={"pair": ...})
    assert "`pair` is still `...`" in repr(placeholder)
    assert repr(placeholder).endswith("Not yet: fix the ✗ and run again.")


def test_two_workers_passes_only_when_both_copies_came_back_summed(bob, alice):
    pair = torch.tensor([1.0, 2.0, 3.0]).send(bob, alice)
    total = pair.get(sum_results=True)
    good = practice.check("two-workers", namespace={"pair": pair, "total": total})
    assert good.passed and repr(good).endswith("Well done: every step is right.")
    assert "<div class='fedlab-practice'" in good._repr_html_()

    only_bob = torch.tensor([1.0, 2.0, 3.0]).send(bob)
    bad = practice.check("two-workers", namespace={"pair": only_bob, "total": total})
    assert not bad.passed and "send to both at once" in repr(bad)
    assert len(bad.steps) == 1  # stops at the first step not done

    kept = torch.tensor([1.0, 2.0, 3.0]).send(bob, alice)
    twice = [p.copy().get() for p in kept.child.child.values()]
    partial = practice.check("two-workers", namespace={"pair": kept, "total": sum(twice)})
    assert not partial.passed and "still hold a copy" in repr(partial)


def test_free_one_fails_when_everything_is_cleared(bob):
    batch = [torch.tensor([i, i, i]).send(bob) for i in range(3)]
    assert not practice.check("free-one", namespace={"batch": batch}).passed
    del batch[0]
    assert practice.check("free-one", namespace={"batch": batch}).passed
    bob.clear_objects()
    assert "lost the other tensors" in repr(practice.check("free-one", namespace={"batch": batch}))


def test_journey_sees_values_that_passed_through_me(bob, alice):
    carol = sy.VirtualWorker(sy.local_worker.hook, id="carol")
    v = torch.tensor([4, 5, 6]).send(bob)
    with sy.trace() as trip:
        v.move(alice)
        v = v.get().send(carol)  # through me: a leak
    result = practice.check("journey", namespace={"v": v, "trip": trip})
    assert not result.passed and "passed through me" in repr(result)

    w = torch.tensor([4, 5, 6]).send(bob)
    with sy.trace() as trip:
        w.move(alice)
        w.move(carol)
    assert practice.check("journey", namespace={"v": w, "trip": trip}).passed


def test_average_on_secure_worker_catches_an_individual_model_reaching_me(bob, alice):
    secure = sy.VirtualWorker(sy.local_worker.hook, id="secure_worker")
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    bobs, alices = nn.Linear(2, 1).send(bob), nn.Linear(2, 1).send(alice)
    with sy.trace() as averaging:
        bobs.move(secure)
        alices.move(secure)
        with torch.no_grad():
            model.weight.set_(bobs.weight.copy().get() / 2 + alices.weight.copy().get() / 2)
            model.bias.set_(((bobs.bias.data + alices.bias.data) / 2).get())
    ns = {"bobs_model": bobs, "alices_model": alices, "model": model, "averaging": averaging}
    result = practice.check("average-on-secure-worker", namespace=ns)
    assert not result.passed and "an individual model reached me" in repr(result)


def test_weighted_mean_rejects_a_plain_mean():
    def plain(results):
        return [sum(ps[k] for ps, _ in results) / len(results) for k in range(len(results[0][0]))]

    result = practice.check("weighted-mean", namespace={"weighted_mean": plain})
    assert not result.passed and "expected" in repr(result)


def test_check_reads_the_callers_variables(bob):
    a = torch.tensor([2.0, 3.0], requires_grad=True).send(bob)
    (a * a).sum().backward()
    a = a.get()
    assert practice.check("remote-gradient").passed
