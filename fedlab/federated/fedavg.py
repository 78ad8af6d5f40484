"""Federated averaging: the server's whole job is a weighted mean of the clients' parameters."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def aggregate(results: Sequence[tuple[Sequence[torch.Tensor], int]]) -> list[torch.Tensor]:
    """Average parameter lists, each weighted by its client's number of examples.

    ``results`` holds one ``(parameters, num_examples)`` pair per client. The tensors
    may be local, or pointers that all live on one worker (a trusted aggregator):
    then the mean is computed there and only pointers come back.
    """
    if not results:
        raise ValueError("aggregate() needs at least one client's parameters")
    total = sum(n for _, n in results)
    if total <= 0:
        raise ValueError("the clients' example counts must add up to more than zero")
    first, n0 = results[0]
    summed = [p * (n0 / total) for p in first]
    for params, n in results[1:]:
        if len(params) != len(summed):
            raise ValueError("every client must send the same number of parameter tensors")
        summed = [s + p * (n / total) for s, p in zip(summed, params)]
    return summed
