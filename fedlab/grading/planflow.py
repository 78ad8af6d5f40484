"""The tracker's rules: which operations change their inputs, which share memory, and
the same rules applied inside a plan (``PlanFlow``), step by step over its slots."""

from __future__ import annotations

from typing import Any

import torch

from fedlab import messages as m

# Operations whose result may share memory with their first input.
VIEWS = frozenset(
    """view view_as reshape reshape_as flatten unflatten squeeze unsqueeze squeeze_ unsqueeze_ t
    t_ transpose transpose_ permute expand expand_as contiguous detach detach_ split chunk unbind
    narrow select diagonal diag unfold __getitem__ type_as to float double half bfloat16 long int
    short bool byte char""".split()
)
NORMS = frozenset(("batch_norm", "instance_norm"))


def short(op: str) -> str:
    """``Tensor.add_`` -> ``add_``; ``Tensor.grad.__get__`` -> ``grad.__get__``."""
    for prefix in ("Tensor.", "torch.", "F."):
        if op.startswith(prefix):
            return op[len(prefix) :]
    return op


def in_place(op: str) -> bool:
    """True for an operation that changes one of its inputs."""
    name = short(op)
    return (
        (name.endswith("_") and not name.endswith("__"))
        or name.startswith("__i")
        or name in ("__setitem__", "backward")
        or name.endswith(".__set__")
    )


def is_view(op: str) -> bool:
    """True for an operation whose result may share memory with its first input."""
    name = short(op)
    return name in VIEWS or name.endswith(".__get__")


class PlanFlow:
    """The tracker's rules applied to a plan's slots (inputs first, then one per step)."""

    def __init__(self, origins: list[set[str]], grads: list[bool]) -> None:
        self.origins = [set(o) for o in origins]
        self.grads = list(grads)
        self.parents: list[tuple[int, ...]] = [() for _ in origins]
        self.group: list[set[int]] = [{i} for i in range(len(origins))]
        self.changed = [False] * len(origins)
        self.n_inputs = len(origins)

    def origins_of(self, slot: Any) -> set[str]:
        """The origins of a ``Slot`` (or of all slots, for anything unexpected)."""
        index = getattr(slot, "index", None)
        if isinstance(index, int) and 0 <= index < len(self.origins):
            return set(self.origins[index])
        return set().union(*self.origins)

    def _change(self, slots: list[int], origins: set[str]) -> None:
        for i in {j for s in slots for j in self.group[s]}:
            self.origins[i] |= origins
            if i < self.n_inputs:
                self.changed[i] = True

    def step(self, s: Any) -> None:
        """Apply one step: a constant, or an operation on earlier slots."""
        if isinstance(s, torch.Tensor):
            self.origins.append(set())
            self.grads.append(bool(s.requires_grad))
            self.parents.append(())
            self.group.append({len(self.group)})
            return
        args = s.args if isinstance(s.args, (tuple, list)) else ()
        used = [i for i in _slots((s.args, s.kwargs)) if i < len(self.origins)]
        origins = set().union(*(self.origins[i] for i in used)) if used else set()
        op = short(str(s.op))
        if op == "backward":
            seen, todo = set(), list(used)
            while todo:
                i = todo.pop()
                if i not in seen:
                    seen.add(i)
                    todo.extend(self.parents[i])
            self._change([i for i in seen if self.grads[i]], origins)
        elif op in NORMS:
            self._change(used, origins)
        elif in_place(op):
            self._change([i for i in _slots(args[:1]) if i < len(self.origins)], origins)
        new = len(self.origins)
        self.origins.append(set(origins))
        self.grads.append(any(self.grads[i] for i in used))
        self.parents.append(tuple(used))
        if used and is_view(op):
            group = self.group[used[0]]
            group.add(new)
            self.group.append(group)
        else:
            self.group.append({new})


def _slots(value: Any) -> list[int]:
    if isinstance(value, m.Slot) and isinstance(value.index, int):
        return [value.index]
    if isinstance(value, (tuple, list)):
        return [i for v in value for i in _slots(v)]
    if isinstance(value, dict):
        return [i for v in value.values() for i in _slots(v)]
    return []
