"""``Optims``: one optimizer per worker, as PySyft 0.2's ``syft.federated.floptimizer``.

An optimizer with state (Adam's running averages, SGD's momentum) keeps that state as
tensors where the model was when it stepped: on bob, after training there. When the
model then visits alice, bob's state cannot be used (fedlab refuses, with a
``StatefulOptimizerError``). ``Optims`` keeps one optimizer per worker, each with its
own state on its own worker, all updating the same model's parameters::

    optims = Optims(["bob", "alice"], optim=optim.Adam(model.parameters(), lr=0.1))
    opt = optims.get_optim(data.location.id)
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from fedlab.worker import BaseWorker


def _key(worker: Any) -> str:
    return worker.id if isinstance(worker, BaseWorker) else str(worker)


class Optims:
    """One copy of ``optim`` per worker (same parameters and settings, separate state)."""

    def __init__(self, workers: list, optim: torch.optim.Optimizer) -> None:
        if not isinstance(optim, torch.optim.Optimizer):
            raise TypeError(
                "optim must be an optimizer object, e.g. "
                "Optims(workers, optim=optim.Adam(model.parameters(), lr=0.1))"
            )
        self.optim = optim
        self.workers = list(workers)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        for worker in self.workers:
            # A shallow copy shares the parameters; loading a deep copy of the state gives
            # this copy its own state and parameter groups (the settings, e.g. lr).
            opt = copy.copy(optim)
            opt.load_state_dict(copy.deepcopy(optim.state_dict()))
            self.optimizers[_key(worker)] = opt

    def get_optim(self, worker: Any) -> torch.optim.Optimizer:
        """The optimizer for ``worker`` (a worker or its id)."""
        key = _key(worker)
        if key not in self.optimizers:
            raise KeyError(f"no optimizer for {key!r}; Optims was made for {list(self.optimizers)}")
        return self.optimizers[key]

    def count(self) -> int:
        """The number of optimizers (one per worker)."""
        return len(self.workers)
