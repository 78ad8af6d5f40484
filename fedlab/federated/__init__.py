"""Federated data and per-worker optimizers (PySyft 0.2's ``syft.frameworks.torch.fl``).

``sy.BaseDataset``, ``dataset.federate((bob, alice))`` on any torch ``Dataset``,
``sy.FederatedDataset``, ``sy.FederatedDataLoader`` and ``Optims`` (also importable as
``fedlab.federated.floptimizer.Optims``, where the course imports it). Built only on the
public pointer API. ``fedlab.federated.digits`` is the offline stand-in for MNIST (it
loads scikit-learn, so it is imported only when asked for); ``fedlab.federated.sandbox``
is ``sy.create_sandbox`` (scikit-learn is loaded only when it is called).
"""

from __future__ import annotations

from fedlab.federated.dataloader import FederatedDataLoader
from fedlab.federated.dataset import BaseDataset, FederatedDataset, dataset_federate, install
from fedlab.federated.floptimizer import Optims

__all__ = [
    "BaseDataset",
    "FederatedDataLoader",
    "FederatedDataset",
    "Optims",
    "dataset_federate",
    "install",
]

install()
