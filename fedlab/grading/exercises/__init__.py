"""Every exercise, by the name used in ``sy.check(name)`` and in the notebooks' metadata."""

from __future__ import annotations

from fedlab.grading.criteria import Exercise
from fedlab.grading.exercises.basics import GC_DETECTIVE, POINTER_CHAINS, REMOTE_TENSORS
from fedlab.grading.exercises.plans import PLANS
from fedlab.grading.exercises.secure import SECURE_AGGREGATION
from fedlab.grading.exercises.training import FEDERATED, LINEAR_MODEL, TRUSTED_AGGREGATOR

EXERCISES: dict[str, Exercise] = {
    e.name: e
    for e in (
        REMOTE_TENSORS, LINEAR_MODEL, FEDERATED, GC_DETECTIVE, POINTER_CHAINS, TRUSTED_AGGREGATOR,
        PLANS, SECURE_AGGREGATION,
    )
}  # fmt: skip


def get_exercise(name: str) -> Exercise:
    """The exercise called ``name``, or a clear error listing the known names."""
    try:
        return EXERCISES[name]
    except (KeyError, TypeError):
        known = ", ".join(EXERCISES)
        raise KeyError(
            f"there is no exercise called {name!r}; the exercises are: {known}"
        ) from None
