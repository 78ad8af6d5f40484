"""Errors of the Ray transport (all are ``FedlabError``s)."""

from __future__ import annotations

from fedlab.exceptions import FedlabError


class WorkerExistsError(FedlabError):
    """A worker name is already taken (in the Ray cluster, or by an in-process worker)."""


class ClusterUnavailableError(FedlabError, ConnectionError):
    """No Ray cluster answers at the given address."""


class RayNotInstalledError(FedlabError, ImportError):
    """Ray is not installed: ``pip install "fedlab[ray]"``."""
