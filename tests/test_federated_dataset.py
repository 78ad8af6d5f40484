"""Federated datasets: BaseDataset, dataset.federate(workers) on any torch Dataset,
FederatedDataset. The oracle is plain torch: the chunks each worker holds equal the
ones torch's DataLoader makes here."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, Dataset, TensorDataset

import fedlab as sy
from fedlab import events
from fedlab.exceptions import TensorsNotCollocatedException


class Squares(Dataset):
    """A plain torch Dataset (no tensors inside): example i is ([i, i*i], i % 3)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.tensor([float(i), float(i * i)]), i % 3


def _held(fd: sy.FederatedDataset) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What each worker holds, read straight from its store (no message)."""
    out = {}
    for w in fd.workers:
        d = fd[w]
        store = sy.get_worker(w)._objects
        out[w] = (store[d.data.id_at_location], store[d.targets.id_at_location])
    return out


def _torch_chunks(dataset, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The oracle: torch's DataLoader cutting the dataset in order into ceil(n/k) chunks."""
    size = math.ceil(len(dataset) / k)
    return [tuple(batch) for batch in DataLoader(dataset, batch_size=size)]


@pytest.mark.parametrize(
    "make",
    [
        lambda: sy.BaseDataset(torch.randn(10, 3), torch.arange(10)),
        lambda: TensorDataset(torch.randn(10, 2, 2), torch.randn(10)),
        lambda: Squares(10),
    ],
    ids=["BaseDataset", "TensorDataset", "plain-Dataset"],
)
def test_federate_splits_any_dataset_in_order_like_torch(bob, alice, make):
    torch.manual_seed(0)
    dataset = make()
    fd = dataset.federate((bob, alice))
    assert isinstance(fd, sy.FederatedDataset)
    assert fd.workers == ["bob", "alice"]
    assert len(fd) == 10 and len(fd["bob"]) == 5 and len(fd["alice"]) == 5
    held = _held(fd)
    for (data, targets), w in zip(_torch_chunks(dataset, 2), fd.workers):
        assert torch.equal(held[w][0], data) and torch.equal(held[w][1], targets)
        assert held[w][1].dtype == targets.dtype
    assert fd["bob"].location is bob and fd["alice"].federated


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(1, 23), k=st.integers(1, 4))
def test_chunks_are_ceil_n_over_k_and_nothing_is_lost(n, k):
    sy.reset()
    ws = [sy.VirtualWorker(sy.local_worker.hook, id=f"w{i}") for i in range(k)]
    data = torch.arange(n * 2.0).view(n, 2)
    fd = sy.BaseDataset(data, torch.arange(n)).federate(ws)
    size = math.ceil(n / k)
    assert [len(fd[w]) for w in fd.workers] == [len(c) for c in torch.arange(n).split(size)]
    assert fd.workers == [w.id for w in ws][: len(fd.workers)]  # in order; late ones may get none
    held = _held(fd)
    assert torch.equal(torch.cat([held[w][0] for w in fd.workers]), data)
    assert torch.equal(torch.cat([held[w][1] for w in fd.workers]), torch.arange(n))


def test_federate_sends_each_chunk_straight_to_its_worker_once(bob, alice):
    log = []
    sub = events.subscribe(lambda e: log.append(e) if type(e) is events.Exchange else None)
    try:
        fd = Squares(7).federate(bob, alice)  # PySyft's other spelling: workers as arguments
    finally:
        sub.close()
    requests = [(e.kind, e.receiver) for e in sy.log.messages(log) if e.kind != "reply"]
    assert requests == [("send", "bob")] * 2 + [("send", "alice")] * 2
    assert len(fd) == 7


def test_a_transform_runs_here_before_the_data_are_sent(bob, alice):
    data = torch.arange(8.0).view(4, 2)
    dataset = sy.BaseDataset(data, torch.arange(4), transform=lambda x: x * 10)
    assert torch.equal(dataset[1][0], torch.tensor([20.0, 30.0]))
    fd = dataset.federate((bob, alice))
    held = _held(fd)
    assert torch.equal(torch.cat([held["bob"][0], held["alice"][0]]), data * 10)


def test_a_transform_on_a_worker_is_refused_with_the_fix(bob):
    x, y = torch.ones(4, 2).send(bob), torch.zeros(4).send(bob)
    refused = sy.exceptions.OperationNotAllowedError  # (code never travels)
    with pytest.raises(refused, match="Apply it here, before federating"):
        sy.BaseDataset(x, y, transform=lambda t: t * 2)
    remote = sy.BaseDataset(x, y)
    with pytest.raises(refused, match="cannot run on a worker"):
        remote.transform(lambda t: t * 2)
    assert sorted(bob._objects) == [1, 2]  # nothing sent, nothing lost


def test_base_dataset_send_get_and_getitem(bob):
    data, targets = torch.randn(6, 3), torch.arange(6)
    local = sy.BaseDataset(data, targets)
    assert len(local) == 6 and local.location is None
    x, y = local[2]
    assert torch.equal(x, data[2]) and y.item() == 2
    remote = local.send(bob)
    assert remote.location is bob and len(remote) == 6
    x_ptr, y_ptr = remote[1:3]  # indexing a remote dataset runs on bob
    assert sy.is_pointer(x_ptr) and torch.equal(x_ptr.get(), data[1:3])
    del y_ptr
    back = remote.get()
    assert back is remote and torch.equal(back.data, data) and torch.equal(back.targets, targets)
    assert bob._objects == {}


def test_get_dataset_brings_one_part_back(bob, alice):
    data = torch.randn(6, 2)
    fd = sy.BaseDataset(data, torch.arange(6)).federate((bob, alice))
    part = fd.get_dataset("alice")
    assert torch.equal(part.data, data[3:]) and fd.workers == ["bob"] and len(fd) == 3
    assert alice._objects == {}


def test_federated_dataset_from_pointers_as_part_7_builds_it(bob, alice):
    parts = [
        sy.BaseDataset(torch.randn(3, 2).send(w), torch.randn(3).send(w)) for w in (alice, bob)
    ]
    fd = sy.FederatedDataset(parts)
    assert fd.workers == ["alice", "bob"] and len(fd) == 6
    assert fd[bob] is parts[1]  # a worker or its id
    assert repr(fd) == (
        "FederatedDataset\n    Distributed across: alice, bob\n    Number of datapoints: 6\n"
    )
    with pytest.raises(KeyError, match="its workers are"):
        fd["carol"]


def test_bad_inputs_get_clear_errors(bob, alice):
    with pytest.raises(TypeError, match="must be a tensor"):
        sy.BaseDataset([1, 2], torch.ones(2))
    with pytest.raises(ValueError, match="as many rows"):
        sy.BaseDataset(torch.ones(3, 2), torch.ones(2))
    with pytest.raises(TensorsNotCollocatedException, match="same place"):
        sy.BaseDataset(torch.ones(2).send(bob), torch.ones(2).send(alice))
    with pytest.raises(TensorsNotCollocatedException, match="same place"):
        sy.BaseDataset(torch.ones(2).send(bob), torch.ones(2))
    with pytest.raises(ValueError, match="empty"):
        sy.BaseDataset(torch.ones(0, 2), torch.ones(0)).federate((bob, alice))
    with pytest.raises(TypeError, match="which workers"):
        sy.BaseDataset(torch.ones(2), torch.ones(2)).federate(())
    with pytest.raises(ValueError, match="once"):
        sy.BaseDataset(torch.ones(2), torch.ones(2)).federate((bob, bob))
    with pytest.raises(TypeError, match="already on a worker"):
        sy.BaseDataset(torch.ones(2).send(bob), torch.ones(2).send(bob)).federate((alice,))
    with pytest.raises(TypeError, match=r"\(input, target\) pairs"):
        TensorDataset(torch.ones(4), torch.ones(4), torch.ones(4)).federate((bob,))
    same = [sy.BaseDataset(torch.ones(2).send(bob), torch.ones(2).send(bob)) for _ in range(2)]
    with pytest.raises(ValueError, match="two datasets are on bob"):
        sy.FederatedDataset(same)
    with pytest.raises(TypeError, match="data are on workers"):
        sy.FederatedDataset([sy.BaseDataset(torch.ones(2), torch.ones(2))])
    del same
    assert bob._objects == {} and alice._objects == {}  # every failure left nothing behind


def test_federate_is_added_to_torch_datasets_and_replaces_nothing():
    from fedlab.federated import dataset_federate

    assert Dataset.federate is dataset_federate
    assert not hasattr(torch.utils.data.DataLoader, "federate")


class Words(Dataset):
    """Examples that are not (tensor, target) pairs of tensors."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        return f"word {i}", i


def test_examples_that_are_not_tensor_pairs_are_refused_before_anything_is_sent(bob, alice):
    with pytest.raises(TypeError, match="tuples of 2: str, int"):
        Words().federate((bob, alice))
    assert bob._objects == {} and alice._objects == {}


def test_a_subclass_reads_its_examples_through_its_own_getitem(bob):
    class Doubled(sy.BaseDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return 2 * x, y

    fd = Doubled(torch.ones(3, 2), torch.arange(3)).federate((bob,))
    assert torch.equal(_held(fd)["bob"][0], 2 * torch.ones(3, 2))
