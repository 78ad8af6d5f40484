"""FederatedDataLoader: batches made on the workers, equal to torch's DataLoader over each
worker's chunk (the oracle), in few messages, none carrying the data to or from me,
and nothing left behind on the workers."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

import fedlab as sy
from fedlab import events

SIZES = {"bob": 7, "alice": 5}  # uneven on purpose: last batches and drop_last matter


def _federate(sizes=SIZES):
    """Each worker's chunk, made here (the oracle's copy), and the FederatedDataset."""
    torch.manual_seed(123)
    hook = sy.local_worker.hook
    chunks, parts = {}, []
    for name, n in sizes.items():
        w = sy.VirtualWorker(hook, id=name)
        x, y = torch.randn(n, 3), torch.randint(0, 10, (n,))
        chunks[name] = (x, y)
        parts.append(sy.BaseDataset(x.send(w), y.send(w)))
    return chunks, sy.FederatedDataset(parts)


def _value(ptr: torch.Tensor) -> torch.Tensor:
    """A batch's tensor read from its worker's store (no message)."""
    return ptr.location._objects[ptr.id_at_location].clone()


def _fedlab_epoch(loader) -> list:
    if loader.iter_per_worker:
        return [{w.id: (_value(d), _value(t)) for w, (d, t) in step.items()} for step in loader]
    return [(d.location.id, _value(d), _value(t)) for d, t in loader]


def _torch_epoch(chunks, batch_size, shuffle, drop_last, per_step) -> list:
    """The same epoch in plain torch: one DataLoader per worker's chunk."""

    def load(name):
        x, y = chunks[name]
        return DataLoader(
            TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last
        )

    if per_step:
        iters = {name: iter(load(name)) for name in chunks}
        return [dict(zip(iters, [tuple(b) for b in step])) for step in zip(*iters.values())]
    return [(name, x, y) for name in chunks for x, y in load(name)]


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    return a == b


@pytest.mark.parametrize("per_step", [False, True], ids=["worker-after-worker", "per-worker"])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8])
def test_batches_equal_torch_dataloader_over_each_chunk(batch_size, drop_last, shuffle, per_step):
    chunks, fd = _federate()
    loader = sy.FederatedDataLoader(
        fd, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, iter_per_worker=per_step
    )
    torch.manual_seed(7)
    ours = [_fedlab_epoch(loader) for _ in range(2)]  # two epochs: reshuffled each time
    after_ours = torch.rand(3)
    torch.manual_seed(7)
    theirs = [_torch_epoch(chunks, batch_size, shuffle, drop_last, per_step) for _ in range(2)]
    after_theirs = torch.rand(3)
    assert _same(ours, theirs)
    assert len(ours[0]) == len(loader)
    # The loader drew from torch's generator exactly as the DataLoaders did.
    assert torch.equal(after_ours, after_theirs)
    if shuffle and batch_size < 5:
        assert not _same(ours[0], ours[1])


def test_per_worker_steps_are_keyed_by_worker_and_stop_with_the_shortest():
    _, fd = _federate()
    steps = list(sy.FederatedDataLoader(fd, batch_size=2, iter_per_worker=True))
    assert len(steps) == 3  # alice's 5 examples make 3 batches, bob's 7 would make 4
    bob, alice = sy.get_worker("bob"), sy.get_worker("alice")
    assert all(list(step) == [bob, alice] for step in steps)
    assert all(step[w][0].location is w for step in steps for w in step)


def test_a_generator_gives_its_own_reproducible_order():
    chunks, fd = _federate()

    def order(seed):
        g = torch.Generator().manual_seed(seed)
        loader = sy.FederatedDataLoader(fd, batch_size=2, shuffle=True, generator=g)
        return [_value(t) for _, t in loader]

    torch.manual_seed(0)
    first = order(5)
    torch.manual_seed(1)  # the global generator does not matter then
    assert _same(order(5), first)
    g = torch.Generator().manual_seed(5)
    x, y = chunks["bob"]
    bob_batches = [t for _, t in DataLoader(TensorDataset(x, y), 2, shuffle=True, generator=g)]
    assert _same(first[: len(bob_batches)], bob_batches)


def _tensors_in(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if dataclasses.is_dataclass(value):
        return [t for f in dataclasses.fields(value) for t in _tensors_in(getattr(value, f.name))]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors_in(v)]
    return []


@pytest.mark.parametrize("per_step", [False, True])
def test_a_batch_is_two_operations_and_no_data_reach_me(per_step):
    _, fd = _federate()
    loader = sy.FederatedDataLoader(fd, batch_size=2, shuffle=True, iter_per_worker=per_step)
    log = []
    sub = events.subscribe(lambda e: log.append(e) if type(e) is events.Exchange else None)
    try:
        batches = 0
        for step in loader:
            pairs = step.values() if per_step else [step]
            for data, target in pairs:
                batches += 1
                assert sy.is_pointer(data) and sy.is_pointer(target)
                assert data.location is target.location
            del step, pairs, data, target  # the batch dies: its tensors are freed
    finally:
        sub.close()
    assert batches == len(loader) * (2 if per_step else 1)
    requests = [e for e in sy.log.messages(log) if e.kind != "reply"]
    kinds = sorted({e.kind for e in requests})
    assert kinds == ["delete", "op"]  # no send, no fetch: nothing travels to or from me
    ops = [e for e in requests if e.kind == "op"]
    assert len(ops) == 2 * batches  # one indexing per tensor per batch, whatever its size
    assert {e.summary for e in ops} == {"__getitem__"}
    assert len([e for e in requests if e.kind == "delete"]) == 2 * batches
    assert all(e.sender == "me" and e.receiver in SIZES for e in requests)
    # No message carries a tensor at all: requests carry ids and the batch's indices,
    # replies say where the batch was stored.
    assert not [e for e in log if _tensors_in(e.payload)]
    for e in ops:
        _, indices = e.payload.args
        assert isinstance(indices, list) and all(type(i) is int for i in indices)


def _store_ids() -> dict[str, list[int]]:
    return {w: sorted(sy.get_worker(w)._objects) for w in SIZES}


def _one_epoch(loader, stop_after: int | None) -> int:
    """Iterate like a training loop (the last batch stays bound, as in a for loop)."""
    n = 0
    for step in loader:
        pairs = step.values() if loader.iter_per_worker else [step]
        n += sum(1 for data, target in pairs if data.shape[0] == target.shape[0])
        if stop_after is not None and n >= stop_after:
            break
    return n


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch_size=st.integers(1, 9),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
    per_step=st.booleans(),
    stop_after=st.none() | st.integers(1, 4),
    epochs=st.integers(1, 2),
)
def test_after_an_epoch_the_workers_hold_only_the_dataset(
    batch_size, drop_last, shuffle, per_step, stop_after, epochs
):
    sy.reset()
    _, fd = _federate()
    before = _store_ids()
    loader = sy.FederatedDataLoader(
        fd, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, iter_per_worker=per_step
    )
    for _ in range(epochs):
        _one_epoch(loader, stop_after)
        assert _store_ids() == before
        ids = {(p.location_id, p.id_at_location) for p in sy.live_pointers()}
        assert ids == {(w, i) for w, held in before.items() for i in held}


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 12), min_size=1, max_size=3),
    batch_size=st.integers(1, 6),
    drop_last=st.booleans(),
    per_step=st.booleans(),
)
def test_len_is_the_number_of_batches_an_epoch_gives(sizes, batch_size, drop_last, per_step):
    sy.reset()
    _, fd = _federate({f"w{i}": n for i, n in enumerate(sizes)})
    loader = sy.FederatedDataLoader(
        fd, batch_size=batch_size, drop_last=drop_last, iter_per_worker=per_step
    )
    assert len(loader) == sum(1 for _ in loader)


def test_bad_options_get_clear_errors():
    chunks, fd = _federate()
    x, y = chunks["bob"]
    with pytest.raises(TypeError, match=r"torch\.utils\.data\.DataLoader instead"):
        sy.FederatedDataLoader(TensorDataset(x, y))
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="positive whole number"):
            sy.FederatedDataLoader(fd, batch_size=bad)
    with pytest.raises(TypeError, match="code does not travel"):
        sy.FederatedDataLoader(fd, collate_fn=lambda b: b)
    with pytest.raises(ValueError, match="iter_per_worker=True"):
        sy.FederatedDataLoader(fd, num_iterators=2)
    with pytest.raises(TypeError, match="unexpected options: batchsize"):
        sy.FederatedDataLoader(fd, batchsize=4)
    # The tutorials' CUDA options are accepted, with a warning, as PySyft did.
    with pytest.warns(UserWarning, match="ignores num_workers=1, pin_memory=True"):
        loader = sy.FederatedDataLoader(fd, batch_size=4, num_workers=1, pin_memory=True)
    assert len(loader) == 4


def test_two_iterators_of_one_loader_are_independent():
    _, fd = _federate()
    loader = sy.FederatedDataLoader(fd, batch_size=3)
    a, b = iter(loader), iter(loader)
    first_a, first_b = next(a), next(b)
    assert torch.equal(_value(first_a[0]), _value(first_b[0]))
    assert len(list(a)) == len(loader) - 1


def test_an_epoch_on_every_transport_equals_torch_and_leaves_only_the_data(workers):
    """The loader uses only the public pointer API, so it runs on worker processes too."""
    bob, alice, _ = workers
    torch.manual_seed(3)
    x, y = torch.randn(9, 2), torch.arange(9)
    fd = sy.BaseDataset(x, y).federate((bob, alice))
    before = {w.id: sorted(w._objects) for w in (bob, alice)}
    loader = sy.FederatedDataLoader(fd, batch_size=2, shuffle=True)
    torch.manual_seed(4)
    ours = [(data.location.id, data.get(), target.get()) for data, target in loader]
    torch.manual_seed(4)
    chunks = {"bob": (x[:5], y[:5]), "alice": (x[5:], y[5:])}
    assert _same(ours, _torch_epoch(chunks, 2, True, False, per_step=False))
    assert {w.id: sorted(w._objects) for w in (bob, alice)} == before
