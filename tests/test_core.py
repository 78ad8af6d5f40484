"""The pointer-tensor core, as the PySyft 0.2 course uses it, on every transport."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import fedlab as sy
from fedlab.exceptions import (
    FedlabError,
    ObjectNotFoundError,
    OperationNotAllowedError,
    PointerChainError,
    RemoteError,
    RemoteValueError,
    TensorsNotCollocatedException,
)


def keys(w) -> list[int]:
    return sorted(w._objects)


def snapshot(*ws) -> dict:
    """Every store's contents, comparable after a failed operation."""
    out = {}
    for w in ws:
        for k, v in w._objects.items():
            out[(w.id, k)] = v.clone() if type(v) is torch.Tensor else repr(v)
    return out


def same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


# -- set-up ---------------------------------------------------------------------------


def test_hooking_again_warns_and_reuses_the_local_worker(me):
    with pytest.warns(UserWarning, match="already hooked"):
        again = sy.TorchHook(torch)
    assert again.local_worker is me
    assert sy.local_worker is me
    assert me.id == "me"
    assert repr(me) == "<VirtualWorker id:me #objects:0>"


def test_plain_torch_is_untouched_after_hooking():
    x = torch.tensor([1.0, 2.0, 3.0])
    y = x * 2 + 1
    assert type(y) is torch.Tensor
    assert torch.equal(y, torch.tensor([3.0, 5.0, 7.0]))
    assert torch.equal(F.relu(x - 2), torch.tensor([0.0, 0.0, 1.0]))


def test_virtual_worker_repr_store_and_clear(workers):
    bob, *_ = workers
    assert repr(bob) == "<VirtualWorker id:bob #objects:0>" or "bob" in repr(bob)
    assert bob._objects == {}
    x = torch.tensor([1, 2, 3]).send(bob)
    assert keys(bob) == [1]
    assert bob.clear_objects() is bob
    assert bob._objects == {}
    del x  # its object is gone already; the delete is harmless


def test_recreating_a_worker_returns_the_same_worker(me):
    hook = me.hook
    bob = sy.VirtualWorker(hook, id="bob")
    x = torch.tensor([1]).send(bob)
    assert sy.VirtualWorker(hook, id="bob") is bob
    assert keys(bob) == [1]
    del x


def test_add_workers_is_accepted_and_harmless_when_repeated(workers):
    bob, alice, carol = workers
    assert bob.add_workers([alice, carol]) is bob
    bob.add_workers([alice, carol])
    x = torch.tensor([1.0]).send(bob)
    assert torch.equal((x + x).get(), torch.tensor([2.0]))


def test_reset_empties_stores_and_restarts_ids(workers):
    bob, *_ = workers
    old = torch.tensor([1]).send(bob)
    sy.reset()
    assert bob._objects == {}
    x = torch.tensor([1]).send(bob)
    assert (x.id, x.id_at_location) == (1, 1)
    with pytest.raises(ObjectNotFoundError, match=r"before sy\.reset"):
        old.get()
    del old  # must not delete bob:1, which is x's object now
    assert keys(bob) == [1]


# -- send / get -----------------------------------------------------------------------


def test_send_returns_a_pointer_with_the_course_attributes(workers, me):
    bob, *_ = workers
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
    assert torch.equal(bob._objects[1], torch.tensor([1, 2, 3, 4, 5]))
    assert x.location.id == "bob"
    assert x.id_at_location == 1
    assert x.id == 1
    assert x.owner is me
    assert repr(x) == "(Wrapper)>[PointerTensor | me:1 -> bob:1]"
    assert isinstance(x.child, sy.PointerTensor)
    assert x.child.garbage_collect_data is True
    assert x.shape == torch.Size([5]) and x.dtype == torch.int64
    assert x.size() == torch.Size([5]) and x.dim() == 1 and len(x) == 5 and x.numel() == 5


def test_get_returns_values_requires_grad_and_grad(workers):
    bob, *_ = workers
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    t.grad = torch.tensor([0.5, 0.25])
    x = t.send(bob)
    back = x.get()
    assert type(back) is torch.Tensor
    assert torch.equal(back, t.detach()) and back.requires_grad
    assert torch.equal(back.grad, torch.tensor([0.5, 0.25]))
    assert bob._objects == {}


def test_get_hands_over_and_sends_no_delete(workers):
    bob, *_ = workers
    x = torch.tensor([1]).send(bob)
    y = torch.tensor([2]).send(bob)
    log = []
    with sy.subscribe(log.append):
        v = x.get()
        del x
    kinds = [e.kind for e in sy.log.messages(log)]
    assert "delete" not in kinds and "fetch" in kinds
    assert torch.equal(v, torch.tensor([1]))
    assert keys(bob) == [2]
    del y


def test_using_a_pointer_after_get_is_a_clear_error(workers):
    bob, *_ = workers
    x = torch.tensor([1]).send(bob)
    x.get()
    with pytest.raises(ObjectNotFoundError, match=r"already used with \.get\(\)"):
        x.get()
    with pytest.raises(ObjectNotFoundError):
        x + x


def test_get_on_a_plain_tensor_is_a_clear_error():
    with pytest.raises(FedlabError, match="already here"):
        torch.tensor([1]).get()


def test_send_to_something_that_is_not_a_worker():
    with pytest.raises(TypeError, match="worker"):
        torch.tensor([1]).send(42)
    with pytest.raises(sy.exceptions.WorkerNotFoundError, match=r"no worker called 'nobody'"):
        torch.tensor([1]).send("nobody")


def test_dtypes_and_shapes_round_trip(workers):
    bob, *_ = workers
    for t in [
        torch.arange(6, dtype=torch.float64).reshape(2, 3),
        torch.tensor([True, False]),
        torch.zeros(0, 3),
        torch.tensor(3.5),
        torch.randn(2, 2).to(torch.bfloat16),
        torch.tensor([1 + 2j]),
        torch.arange(4, dtype=torch.uint8),
    ]:
        back = t.send(bob).get()
        assert back.dtype == t.dtype and back.shape == t.shape and torch.equal(back, t)


# -- several workers --------------------------------------------------------------------


def test_send_to_two_workers_makes_a_multi_pointer(workers):
    bob, alice, _ = workers
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob, alice)
    assert isinstance(x.child, sy.MultiPointerTensor)
    assert list(x.child.child) == ["bob", "alice"]
    assert repr(x) == (
        "(Wrapper)>[MultiPointerTensor]\n"
        "\t-> (Wrapper)>[PointerTensor | me:1 -> bob:1]\n"
        "\t-> (Wrapper)>[PointerTensor | me:2 -> alice:1]"
    )
    y = x + x
    assert isinstance(y, sy.MultiWrapper)
    assert [t.tolist() for t in y.get()] == [[2, 4, 6, 8, 10]] * 2
    assert [t.tolist() for t in x.get()] == [[1, 2, 3, 4, 5]] * 2
    assert bob._objects == {} and alice._objects == {}


def test_multi_pointer_get_sum_results(workers):
    bob, alice, _ = workers
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob, alice)
    assert torch.equal(x.get(sum_results=True), torch.tensor([2, 4, 6, 8, 10]))


def test_multi_pointers_on_different_workers_do_not_mix(workers):
    bob, alice, carol = workers
    x = torch.tensor([1]).send(bob, alice)
    y = torch.tensor([1]).send(bob, carol)
    before = snapshot(bob, alice, carol)
    with pytest.raises(TensorsNotCollocatedException, match="multi-pointers on different workers"):
        x + y
    assert same(before, snapshot(bob, alice, carol))


# -- remote operations --------------------------------------------------------------------


def test_operators_methods_and_functions_run_remotely(workers):
    bob, *_ = workers
    a = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    b = torch.tensor([[0.5, 1.0], [-1.0, 2.0]])
    pa, pb = a.send(bob), b.send(bob)
    cases = [
        (lambda x, y: x + y),
        (lambda x, y: x - y),
        (lambda x, y: x * y),
        (lambda x, y: x / y),
        (lambda x, y: x @ y),
        (lambda x, y: 2 - x),
        (lambda x, y: x**2),
        (lambda x, y: -x),
        (lambda x, y: torch.add(x, y)),
        (lambda x, y: torch.matmul(x, y)),
        (lambda x, y: F.relu(x)),
        (lambda x, y: F.linear(x, y)),
        (lambda x, y: x.sum(dim=1)),
        (lambda x, y: x.mm(y).t()),
        (lambda x, y: torch.cat([x, y])),
        (lambda x, y: x[0]),
        (lambda x, y: x[:, 1:]),
        (lambda x, y: x > y),
        (lambda x, y: x.view(4)),
        (lambda x, y: F.softmax(x, dim=0)),
        (lambda x, y: x.T),
    ]
    for f in cases:
        remote = f(pa, pb)
        assert isinstance(remote, sy.Wrapper)
        assert remote.location.id == "bob"
        local = f(a, b)
        assert remote.shape == local.shape and remote.dtype == local.dtype
        assert torch.equal(remote.get(), local)
    assert keys(bob) == [1, 2]


def test_in_place_operations_change_the_remote_object_and_return_the_same_pointer(workers):
    bob, *_ = workers
    x = torch.tensor([1.0, 2.0]).send(bob)
    y = x.add_(1)
    assert y is x
    x += 1
    x.mul_(torch.tensor([2.0, 3.0]).send(bob))
    assert keys(bob) == [1]
    assert torch.equal(x.get(), torch.tensor([6.0, 12.0]))


def test_several_outputs_come_back_as_a_tuple_of_pointers(workers):
    bob, *_ = workers
    t = torch.tensor([[1.0, 5.0], [3.0, 2.0]])
    values, indices = t.send(bob).max(dim=0)
    assert torch.equal(values.get(), torch.tensor([3.0, 5.0]))
    assert torch.equal(indices.get(), torch.tensor([1, 0]))
    parts = torch.arange(6).send(bob).split(2)
    assert isinstance(parts, tuple) and len(parts) == 3
    assert [p.get().tolist() for p in parts] == [[0, 1], [2, 3], [4, 5]]


@pytest.mark.parametrize(
    "reveal",
    [
        lambda x: x.item(),
        lambda x: x.tolist(),
        lambda x: bool(x),
        lambda x: float(x),
        lambda x: x.numpy(),
        lambda x: int(x),
    ],
)
def test_reading_values_from_a_pointer_says_to_get_first(workers, reveal):
    bob, *_ = workers
    x = torch.tensor([3.0]).send(bob)
    with pytest.raises(RemoteValueError, match=r"\.get\(\)"):
        reveal(x)


def test_operations_outside_the_allowlist_are_refused_before_sending(workers):
    bob, *_ = workers
    x = torch.tensor([1.0]).send(bob)
    log = []
    with sy.subscribe(log.append), pytest.raises(OperationNotAllowedError, match="to_sparse"):
        x.to_sparse()
    assert log == []
    assert keys(bob) == [1]


def test_a_torch_error_on_the_worker_comes_back_with_its_type_and_changes_nothing(workers):
    bob, *_ = workers
    m = torch.ones(2, 3).send(bob)
    before = snapshot(bob)
    with pytest.raises(RuntimeError, match="on bob: mat1 and mat2 shapes") as err:
        m.mm(m)
    assert isinstance(err.value, RemoteError)
    assert same(before, snapshot(bob))


# -- errors ----------------------------------------------------------------------------


def test_pointer_plus_local_tensor_is_not_collocated(workers):
    bob, *_ = workers
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
    y = torch.tensor([1, 1, 1, 1, 1])
    log = []
    with sy.subscribe(log.append), pytest.raises(TensorsNotCollocatedException) as err:
        x + y
    assert log == []  # refused before anything was sent
    text = str(err.value)
    assert "bob" in text and "local tensor" in text and ".send(bob)" in text and ".get()" in text
    with pytest.raises(TensorsNotCollocatedException):
        y + x
    with pytest.raises(TensorsNotCollocatedException):
        torch.cat([x, y])
    assert keys(bob) == [1]
    assert sy.exceptions.TensorsNotCollocatedException is TensorsNotCollocatedException


def test_pointers_on_two_workers_are_not_collocated(workers):
    bob, alice, _ = workers
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
    y = torch.tensor([1, 1, 1, 1, 1]).send(alice)
    before = snapshot(bob, alice)
    with pytest.raises(TensorsNotCollocatedException) as err:
        x + y
    text = str(err.value)
    assert "bob" in text and "alice" in text and ".move(" in text
    assert same(before, snapshot(bob, alice))
    # The fix the message suggests works:
    assert torch.equal((x + y.move(bob)).get(), torch.tensor([2, 3, 4, 5, 6]))


def test_a_pointer_to_a_deleted_object_names_the_worker_and_id(workers):
    bob, *_ = workers
    x = torch.tensor([1.0]).send(bob)
    bob.clear_objects()
    with pytest.raises(ObjectNotFoundError, match="bob holds no object with id 1"):
        x + 1
    with pytest.raises(ObjectNotFoundError, match="bob holds no object with id 1"):
        x.get()


def test_every_fedlab_error_derives_from_one_base():
    import inspect

    for name, cls in inspect.getmembers(sy.exceptions, inspect.isclass):
        if issubclass(cls, Exception) and cls.__module__ == "fedlab.exceptions":
            assert issubclass(cls, FedlabError), name


# -- remote autograd ---------------------------------------------------------------------


def test_backward_on_bob_and_gradients_come_back(workers):
    bob, *_ = workers
    x = torch.tensor([15.0, 12, 4, 6, 78], requires_grad=True).send(bob)
    y = torch.tensor([1.0, 1, 1, 1, 1], requires_grad=True).send(bob)
    z = (x + y).sum()
    assert z.backward() is None
    g = x.grad
    assert isinstance(g, sy.Wrapper) and g.location.id == "bob"
    assert torch.equal(g.get(), torch.ones(5))
    x = x.get()
    assert x.requires_grad and torch.equal(x.grad, torch.ones(5))


def test_grad_is_none_before_backward_and_data_is_a_pointer(workers):
    bob, *_ = workers
    w = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
    assert w.grad is None
    assert w.requires_grad and w.is_leaf
    d = w.data
    assert isinstance(d, sy.Wrapper) and not d.requires_grad
    assert torch.equal(d.get(), torch.tensor([1.0, 2.0]))


def test_remote_gradient_step_idioms(workers):
    bob, *_ = workers
    w = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
    (w * w).sum().backward()
    w.data.sub_(w.grad * 0.1)
    w.grad *= 0
    (w * 3).sum().backward()
    assert torch.equal(w.grad.get(), torch.tensor([3.0, 3.0]))
    w.grad.zero_()
    assert torch.equal(w.grad.get(), torch.zeros(2))
    w.grad = None
    assert w.grad is None
    assert torch.equal(w.get().detach(), torch.tensor([0.8, 1.6]))


def test_no_grad_is_respected_remotely(workers):
    bob, *_ = workers
    w = torch.tensor([1.0], requires_grad=True).send(bob)
    with torch.no_grad():
        y = w * 2
    assert not y.requires_grad
    z = w * 2
    assert z.requires_grad and not z.is_leaf


def test_requires_grad_can_be_switched_remotely(workers):
    bob, *_ = workers
    w = torch.tensor([1.0]).send(bob)
    w.requires_grad_()
    assert w.requires_grad
    w.requires_grad = False
    assert not w.requires_grad
    assert not w.get().requires_grad


# -- garbage collection ---------------------------------------------------------------------


def test_del_and_rebinding_free_the_remote_object(workers):
    bob, *_ = workers
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
    assert keys(bob) == [1]
    del x
    assert bob._objects == {}
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
    assert keys(bob) == [2]
    x = "asdf"
    assert bob._objects == {}
    assert x == "asdf"


def test_a_thousand_sends_to_one_variable_leave_one_object(workers):
    bob, *_ = workers
    for _ in range(1000):
        x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
    assert len(bob._objects) == 1
    assert list(bob._objects) == [x.id_at_location]


def test_garbage_collect_data_false_keeps_the_object(workers):
    bob, *_ = workers
    x = torch.tensor([1]).send(bob)
    x.child.garbage_collect_data = False
    del x
    assert keys(bob) == [1]


def test_temporaries_are_freed(workers):
    bob, *_ = workers
    x = torch.tensor([1.0, 2.0]).send(bob)
    y = ((x + 1) * 2 - x).sum()
    assert keys(bob) == [1, y.id_at_location]


def test_deletion_events_name_the_reason(workers):
    bob, *_ = workers
    log = []
    with sy.subscribe(log.append):
        x = torch.tensor([1]).send(bob)
        del x
    deleted = [e for e in log if isinstance(e, sy.events.ObjectDeleted)]
    assert [(e.worker, e.id, e.reason) for e in deleted] == [("bob", 1, "pointer me:1 died")]


# -- pointer chains --------------------------------------------------------------------------


def test_send_a_pointer_makes_a_chain(workers):
    bob, alice, _ = workers
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob).send(alice)
    assert keys(bob) == [1] and keys(alice) == [1]
    assert repr(alice._objects[1]) == "[PointerTensor | alice:1 -> bob:1]"
    assert repr(x) == "(Wrapper)>[PointerTensor | me:2 -> alice:1]"


def test_operations_on_a_chain_are_forwarded_hop_by_hop(workers):
    bob, alice, _ = workers
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob).send(alice)
    y = x + x
    assert repr(y) == "(Wrapper)>[PointerTensor | me:3 -> alice:2]"
    assert torch.equal(bob._objects[2], torch.tensor([2, 4, 6, 8, 10]))
    assert repr(alice._objects[2]) == "[PointerTensor | alice:2 -> bob:2]"
    del y
    assert keys(bob) == [1] and keys(alice) == [1]


def test_get_peels_one_level(workers):
    bob, alice, _ = workers
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob).send(alice)
    x = x.get()
    assert isinstance(x, sy.Wrapper) and x.location.id == "bob"
    assert keys(bob) == [1] and alice._objects == {}
    x = x.get()
    assert torch.equal(x, torch.tensor([1, 2, 3, 4, 5]))
    assert bob._objects == {}


def test_del_frees_the_whole_chain(workers):
    bob, alice, carol = workers
    x = torch.tensor([1, 2, 3]).send(bob).send(alice).send(carol)
    assert (len(bob._objects), len(alice._objects), len(carol._objects)) == (1, 1, 1)
    del x
    assert bob._objects == {} and alice._objects == {} and carol._objects == {}


def test_move_sends_the_object_straight_to_the_destination(workers):
    bob, alice, _ = workers
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
    log = []
    with sy.subscribe(log.append):
        assert x.move(alice) is x
    assert bob._objects == {} and keys(alice) == [1]
    assert repr(x) == "(Wrapper)>[PointerTensor | me:1 -> alice:1]"
    carriers = [(e.sender, e.receiver) for e in sy.log.messages(log) if e.kind == "send"]
    assert carriers == [("bob", "alice")]  # the data never passed through me
    assert torch.equal(x.get(), torch.tensor([1, 2, 3, 4, 5]))


def test_move_to_the_current_location_does_nothing_and_to_me_is_get(workers, me):
    bob, *_ = workers
    x = torch.tensor([1]).send(bob)
    assert x.move(bob) is x and keys(bob) == [1]
    back = x.move(me)
    assert torch.equal(back, torch.tensor([1])) and bob._objects == {}


def test_remote_get_pulls_to_the_middle_worker(workers):
    bob, alice, _ = workers
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob).send(alice)
    assert x.remote_get() is x
    assert bob._objects == {}
    assert torch.equal(alice._objects[1], torch.tensor([1, 2, 3, 4, 5]))
    x.move(bob)
    assert keys(bob) == [2] and alice._objects == {}  # no copy left anywhere
    assert repr(x) == "(Wrapper)>[PointerTensor | me:2 -> bob:2]"
    del x
    assert bob._objects == {} and alice._objects == {}


def test_remote_get_on_a_one_hop_pointer_is_a_clear_error(workers):
    bob, *_ = workers
    x = torch.tensor([1]).send(bob)
    before = snapshot(bob)
    with pytest.raises(PointerChainError, match="pointer to a pointer"):
        x.remote_get()
    assert same(before, snapshot(bob))


def test_move_of_a_chain_to_its_end_collapses_it(workers):
    bob, alice, _ = workers
    x = torch.tensor([7]).send(bob).send(alice)
    x.move(bob)
    assert keys(bob) == [1] and alice._objects == {}
    assert torch.equal(x.get(), torch.tensor([7]))
    assert bob._objects == {}


def test_no_warnings_in_normal_use(workers):
    bob, *_ = workers
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
        (x * x).sum().backward()
        x.get()
