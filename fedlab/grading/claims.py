"""What a notebook claims: its variables as plain data, read by the checks.

The checks never hold a student's objects: a variable becomes a *claim* (a tensor's
values, a pointer's location and id, a model's parameters, a set's items), made by
``read`` in the notebook's kernel and checked against what the workers hold and what
the message log shows. Claims travel with fedlab's safe codec (tuples, numbers,
strings, tensors), so a claim can lie about a value but can never run code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

MAX_ITEMS = 1000  # items of one container read (a claim is small)


@dataclass(frozen=True)
class Pointer:
    """A pointer variable: where its object lives (``location``) and under which ``id``."""

    location: str
    id: int


@dataclass(frozen=True)
class Model:
    """An ``nn.Module`` variable: its parameters by name (tensors or ``Pointer``s)."""

    params: tuple[tuple[str, Any], ...]

    def parameters(self) -> list[Any]:
        """The parameters, in the module's order."""
        return [p for _, p in self.params]

    def __getattr__(self, name: str) -> Any:
        for n, p in object.__getattribute__(self, "params"):
            if n == name:
                return p
        raise AttributeError(name)


@dataclass(frozen=True)
class PlanClaim:
    """A plan variable (``@sy.func2plan``): its name."""

    name: str


@dataclass(frozen=True)
class Other:
    """A variable of a type the checks do not read."""

    type: str


def _raw(value: Any, depth: int = 0) -> Any:
    """``value`` as plain tagged data (run in the notebook's kernel)."""
    from torch import nn

    from fedlab.plans import Plan
    from fedlab.wrapper import is_pointer

    if depth > 4:
        return ("other", "nested too deeply")
    if is_pointer(value):
        child = value.child
        loc = getattr(child, "location_id", "?")
        obj_id = getattr(child, "id_at_location", None)
        return ("pointer", str(loc), int(obj_id) if isinstance(obj_id, int) else -1)
    if isinstance(value, torch.Tensor):
        return ("tensor", value.detach().clone().contiguous())
    if isinstance(value, Plan):
        return ("plan", str(value.name))
    if isinstance(value, nn.Module):
        params = tuple((n, _raw(p, depth + 1)) for n, p in value.named_parameters())
        return ("model", params[:MAX_ITEMS])
    if isinstance(value, (set, frozenset, list, tuple)):
        items = list(value)[:MAX_ITEMS]
        return ("items", tuple(_raw(v, depth + 1) for v in items))
    if isinstance(value, (bool, int, float, str)) or value is None:
        return ("value", value)
    return ("other", type(value).__name__)


def read(ns: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The claims of the variables ``names`` of ``ns`` (missing names are left out)."""
    out = {}
    for name in names:
        if name in ns:
            try:
                out[name] = _raw(ns[name])
            except Exception as e:  # an odd object must not stop the others from being read
                out[name] = ("other", f"unreadable ({type(e).__name__})")
    return out


def load(raw: Any) -> Any:
    """A claim as the checks use it, from the tagged data ``_raw`` made (checked shape)."""
    if not isinstance(raw, tuple) or not raw or not isinstance(raw[0], str):
        return Other("malformed")
    tag, rest = raw[0], raw[1:]
    if tag == "tensor" and len(rest) == 1 and isinstance(rest[0], torch.Tensor):
        return rest[0]
    if tag == "pointer" and len(rest) == 2 and isinstance(rest[0], str):
        return Pointer(rest[0], rest[1] if isinstance(rest[1], int) else -1)
    if tag == "plan" and len(rest) == 1:
        return PlanClaim(str(rest[0]))
    if tag == "model" and len(rest) == 1 and isinstance(rest[0], tuple):
        return Model(tuple((str(n), load(p)) for n, p in rest[0] if isinstance(n, str)))
    if tag == "items" and len(rest) == 1 and isinstance(rest[0], tuple):
        return tuple(load(v) for v in rest[0])
    if tag == "value" and len(rest) == 1:
        return rest[0]
    if tag == "other" and len(rest) == 1:
        return Other(str(rest[0]))
    return Other("malformed")


def load_all(raw: Any) -> dict[str, Any]:
    """Every claim of a ``read`` result (anything malformed is dropped or marked)."""
    if not isinstance(raw, dict):
        return {}
    return {k: load(v) for k, v in raw.items() if isinstance(k, str)}
