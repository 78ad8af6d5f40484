"""Federated datasets: PySyft 0.2's ``BaseDataset``, ``dataset.federate(workers)`` and
``FederatedDataset``.

``dataset.federate((bob, alice))`` splits any torch ``Dataset`` in order into chunks of
``ceil(n / k)`` examples and sends each chunk's inputs and targets to one worker. The
result, a ``FederatedDataset``, holds one ``BaseDataset`` of pointers per worker; a
``FederatedDataLoader`` (``fedlab.federated.dataloader``) makes batches from it on the
workers.

A ``transform`` runs here, on local data, as in PySyft: when a ``BaseDataset`` with a
transform is federated, every example passes through it before it is sent. A worker
cannot run it afterwards: that would mean sending code, and workers only run the
operations on their allowlist. So a transform on pointers is refused, with the fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset, default_collate

from fedlab import exceptions, registry
from fedlab.worker import BaseWorker
from fedlab.wrapper import is_pointer

_TRANSFORM_HERE = (
    "a transform cannot run on a worker: that would mean sending code, and workers only "
    "run the torch operations on their allowlist. Apply it here, before federating: "
    "sy.BaseDataset(data, targets, transform=t).federate(workers) transforms every "
    "example, then sends it."
)


def _remote(t: Any) -> bool:
    return is_pointer(t)


class BaseDataset(Dataset):
    """Inputs and targets of the same length, as one dataset (here, or on one worker).

    ``data`` and ``targets`` are tensors, or pointers to tensors on the same worker.
    ``transform`` (local data only) is applied to each input tensor as it is read
    (PySyft 0.2 gave it a NumPy array).
    """

    def __init__(
        self, data: torch.Tensor, targets: torch.Tensor, transform: Callable | None = None
    ) -> None:
        for name, t in (("data", data), ("targets", targets)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(
                    f"BaseDataset's {name} must be a tensor (or a pointer to one), "
                    f"not {type(t).__name__}; convert it with torch.tensor(...)"
                )
        if _remote(data) != _remote(targets) or (
            _remote(data) and data.location.id != targets.location.id
        ):
            raise exceptions.TensorsNotCollocatedException(
                f"the data are on {_where(data)} but the targets on {_where(targets)}; "
                "a dataset's inputs and targets must be in the same place"
            )
        if data.dim() == 0 or targets.dim() == 0 or len(data) != len(targets):
            raise ValueError(
                f"data and targets must have one row per example, and as many rows: got "
                f"shapes {tuple(data.shape)} and {tuple(targets.shape)}"
            )
        if transform is not None and _remote(data):
            raise exceptions.OperationNotAllowedError(_TRANSFORM_HERE)
        self.data = data
        self.targets = targets
        self.transform_ = transform
        self.federated = False

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The example(s) at ``index``: ``(input, target)``, the input transformed."""
        item = self.data[index]
        if self.transform_ is not None:
            item = self.transform_(item)
        return item, self.targets[index]

    @property
    def location(self) -> BaseWorker | None:
        """The worker that holds the data (None when it is here)."""
        return self.data.location if _remote(self.data) else None

    def transform(self, transform: Callable) -> None:
        """Apply ``transform`` to all the inputs at once, now (local data only)."""
        if _remote(self.data):
            raise exceptions.OperationNotAllowedError(_TRANSFORM_HERE)
        self.data = transform(self.data)

    def send(self, worker: Any) -> BaseDataset:
        """A copy of this dataset on ``worker``: a ``BaseDataset`` of pointers."""
        data, targets = _examples(self, 0, len(self))
        return BaseDataset(data.send(worker), targets.send(worker))

    def get(self) -> BaseDataset:
        """Bring the data and targets back here (they leave the worker); returns self."""
        if _remote(self.data):
            self.data, self.targets = self.data.get(), self.targets.get()
            self.federated = False
        return self

    def get_data(self) -> torch.Tensor:
        """The inputs (a pointer when the dataset is on a worker)."""
        return self.data

    def get_targets(self) -> torch.Tensor:
        """The targets (a pointer when the dataset is on a worker)."""
        return self.targets

    def __repr__(self) -> str:
        return f"BaseDataset\n\tData: {self.data!r}\n\ttargets: {self.targets!r}"


def _where(t: torch.Tensor) -> str:
    return t.location.id if _remote(t) else "me"


def _workers(workers: tuple) -> list[BaseWorker]:
    if len(workers) == 1 and isinstance(workers[0], (list, tuple)):
        workers = tuple(workers[0])  # federate((bob, alice)), as the course writes it
    out = [registry.get_worker(w) if isinstance(w, str) else w for w in workers]
    if not out or not all(isinstance(w, BaseWorker) for w in out):
        raise TypeError("say which workers get the data, e.g. dataset.federate((bob, alice))")
    if len({w.id for w in out}) != len(out):
        raise ValueError("each worker can appear once in dataset.federate(...)")
    return out


def _examples(dataset: Dataset, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Examples ``start:stop`` of ``dataset`` as two tensors (inputs, targets), here."""
    if isinstance(dataset, BaseDataset) and _remote(dataset.data):
        raise TypeError(
            "this dataset is already on a worker; to federate it again, bring it back "
            "first with dataset.get()"
        )
    # Two plain tensors and no per-example work: slice them at once (the same values).
    if type(dataset) is BaseDataset and dataset.transform_ is None:
        return dataset.data[start:stop], dataset.targets[start:stop]
    if type(dataset) is TensorDataset and len(dataset.tensors) == 2:
        return dataset.tensors[0][start:stop], dataset.tensors[1][start:stop]
    # Any other Dataset: read each example and stack them as torch's DataLoader would
    # (default_collate), without a DataLoader, which would draw from torch's generator.
    batch = default_collate([dataset[i] for i in range(start, stop)])
    if not (
        isinstance(batch, (list, tuple))
        and len(batch) == 2
        and all(isinstance(t, torch.Tensor) for t in batch)
    ):
        example = dataset[start]
        kind = type(example).__name__
        if isinstance(example, (list, tuple)):
            kind = f"{kind}s of {len(example)}: {', '.join(type(v).__name__ for v in example)}"
        raise TypeError(
            "federate needs a dataset whose examples are (input, target) pairs of tensors "
            f"or numbers; this one's examples are {kind}"
        )
    return batch[0], batch[1]


def dataset_federate(dataset: Dataset, *workers: Any) -> FederatedDataset:
    """Split ``dataset`` in order into one chunk per worker and send each to its worker.

    The chunks have ``ceil(len(dataset) / len(workers))`` examples (the last one fewer;
    with few examples, the last workers may get none). Returns a ``FederatedDataset``.
    """
    registry.local_worker()  # (raises "hook torch first" before anything is sent)
    workers_ = _workers(workers)
    n = len(dataset)
    if n == 0:
        raise ValueError("this dataset is empty: there is nothing to federate")
    size = math.ceil(n / len(workers_))
    parts = []
    for worker, start in zip(workers_, range(0, n, size)):
        data, targets = _examples(dataset, start, min(start + size, n))
        parts.append(BaseDataset(data.send(worker), targets.send(worker)))
    return FederatedDataset(parts)


class FederatedDataset:
    """One ``BaseDataset`` of pointers per worker, looked up by worker id: ``fd["bob"]``."""

    def __init__(self, datasets: list[BaseDataset]) -> None:
        self.datasets: dict[str, BaseDataset] = {}
        for dataset in datasets:
            if not isinstance(dataset, BaseDataset) or not _remote(dataset.data):
                raise TypeError(
                    "a FederatedDataset is made of BaseDatasets whose data are on workers, "
                    "e.g. sy.BaseDataset(data.send(bob), targets.send(bob))"
                )
            worker_id = dataset.location.id
            if worker_id in self.datasets:
                raise ValueError(
                    f"two datasets are on {worker_id}; give each worker one dataset "
                    "(concatenate them on the worker first, with torch.cat)"
                )
            self.datasets[worker_id] = dataset
            dataset.federated = True

    @property
    def workers(self) -> list[str]:
        """The ids of the workers that hold a part, in order."""
        return list(self.datasets)

    locations = workers

    def __getitem__(self, worker: Any) -> BaseDataset:
        key = worker.id if isinstance(worker, BaseWorker) else worker
        if key not in self.datasets:
            raise KeyError(f"no part of this dataset is on {key!r}; its workers are {self.workers}")
        return self.datasets[key]

    def get_dataset(self, worker: Any) -> BaseDataset:
        """Bring one worker's part back here, and remove it from this dataset."""
        dataset = self[worker].get()
        del self.datasets[worker.id if isinstance(worker, BaseWorker) else worker]
        return dataset

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets.values())

    def __repr__(self) -> str:
        return (
            f"FederatedDataset\n    Distributed across: {', '.join(self.workers)}\n"
            f"    Number of datapoints: {len(self)}\n"
        )


def install() -> None:
    """Give every torch ``Dataset`` a ``federate`` method (it adds one; it replaces none)."""
    if getattr(Dataset, "federate", None) is not dataset_federate:
        Dataset.federate = dataset_federate
