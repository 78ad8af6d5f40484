"""``FederatedDataLoader``: batches of a ``FederatedDataset``, made on the workers.

Each batch is made where its data live, by indexing the worker's inputs and targets
with the batch's indices: two operations per batch (inputs, targets), whatever the
batch size. The examples never pass through ``me``; only the indices travel. A batch
is a pair of pointers, and like any pointer it frees its tensor on the worker when it
dies (when the loop moves on), so after an epoch the workers hold only their data.

The indices come from torch's own ``DataLoader`` over ``range(len(worker's data))``,
so under ``torch.manual_seed`` the batches are those that
``DataLoader(that worker's chunk, batch_size, shuffle, drop_last)`` would give,
drawing from torch's generator at the same moments. (PySyft 0.2 drew a little less:
it used the samplers without a ``DataLoader``.)

Differences from PySyft 0.2, each refused with a clear error where it matters:
``collate_fn`` (it would have to run on the worker: code does not travel) and
``num_iterators`` > 1 (use ``iter_per_worker=True``). ``len(loader)`` is the number of
batches an epoch really gives; PySyft's was ``ceil(len(dataset) / batch_size)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader

from fedlab.federated.dataset import FederatedDataset

# Options of torch's DataLoader that are about loading data here, which a federated
# loader does not do: accepted for copied code, with a warning, as PySyft did.
_IGNORED = {
    "num_workers",
    "pin_memory",
    "timeout",
    "worker_init_fn",
    "prefetch_factor",
    "persistent_workers",
    "multiprocessing_context",
    "pin_memory_device",
    "in_order",
}


class FederatedDataLoader:
    """Batches ``(data, target)`` of pointers, made on the worker that holds them.

    Parameters
    ----------
    federated_dataset : FederatedDataset
        The data, e.g. ``dataset.federate((bob, alice))``.
    batch_size : int
        Examples per batch (a worker's last batch may have fewer).
    shuffle : bool
        Reshuffle each worker's examples at every epoch (torch's generator decides).
    drop_last : bool
        Drop each worker's last batch when it is smaller than ``batch_size``.
    iter_per_worker : bool
        False: all of one worker's batches, then the next worker's. True: each step
        gives a dict ``{worker: (data, target)}`` with one batch per worker, until the
        first worker runs out.
    generator : torch.Generator, optional
        Draw the shuffles from this generator instead of torch's global one.
    """

    def __init__(
        self,
        federated_dataset: FederatedDataset,
        batch_size: int = 8,
        shuffle: bool = False,
        num_iterators: int = 1,
        drop_last: bool = False,
        collate_fn: Any = None,
        iter_per_worker: bool = False,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(federated_dataset, FederatedDataset):
            raise TypeError(
                "FederatedDataLoader needs a FederatedDataset, e.g. dataset.federate((bob, "
                "alice)); for data that are here, use torch.utils.data.DataLoader instead"
            )
        if type(batch_size) is not int or batch_size < 1:
            raise ValueError(f"batch_size must be a positive whole number, not {batch_size!r}")
        if collate_fn is not None:
            raise TypeError(
                "a collate_fn would have to run on the workers, and workers run only the "
                "torch operations on their allowlist (code does not travel). Batches are "
                "made there by indexing; transform the data before federating instead."
            )
        if num_iterators != 1:
            raise ValueError(
                "num_iterators > 1 is not supported; to get one batch from every worker at "
                "each step, use FederatedDataLoader(..., iter_per_worker=True)"
            )
        unknown = sorted(set(kwargs) - _IGNORED)
        if unknown:
            raise TypeError(f"FederatedDataLoader got unexpected options: {', '.join(unknown)}")
        if kwargs:
            options = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            warnings.warn(
                f"FederatedDataLoader ignores {options}: the batches are made on the workers",
                stacklevel=2,
            )
        self.federated_dataset = federated_dataset
        self.workers = federated_dataset.workers
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.iter_per_worker = bool(iter_per_worker)
        self.generator = generator

    def _indices(self, worker_id: str) -> DataLoader:
        """The batches of one worker's example numbers, as lists of ints."""
        return DataLoader(
            range(len(self.federated_dataset[worker_id])),
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
            generator=self.generator,
            collate_fn=list,
        )

    def _batch(self, worker_id: str, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        # One operation per tensor, run on the worker: the indices go in the request, the
        # batch stays there, and we get pointers to it.
        dataset = self.federated_dataset[worker_id]
        return dataset.data[indices], dataset.targets[indices]

    def __iter__(self) -> Iterator[Any]:
        return self._per_step() if self.iter_per_worker else self._worker_after_worker()

    # (Neither generator keeps a batch in a variable: a batch lives as long as the
    # student's loop holds it, not until the next step.)
    def _worker_after_worker(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for worker_id in self.workers:
            for indices in self._indices(worker_id):
                yield self._batch(worker_id, indices)

    def _per_step(self) -> Iterator[dict]:
        steps = [iter(self._indices(w)) for w in self.workers]
        while True:
            indices = []
            for step in steps:  # as zip() would: stop at the first worker that runs out
                i = next(step, None)
                if i is None:
                    return
                indices.append(i)
            yield {
                self.federated_dataset[w].location: self._batch(w, i)
                for w, i in zip(self.workers, indices)
            }

    def _batches(self, worker_id: str) -> int:
        n = len(self.federated_dataset[worker_id])
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self) -> int:
        """The number of batches (or of steps, with ``iter_per_worker``) in an epoch."""
        counts = [self._batches(w) for w in self.workers]
        return min(counts, default=0) if self.iter_per_worker else sum(counts)
