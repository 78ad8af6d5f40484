"""Models and optimizers: ``model.fix_precision().share(...)`` and ``opt.fix_precision()``.

A model is encoded and shared in place: each ``Parameter`` object stays the same
(only its class switches, as with ``model.send``), so ``model.parameters()`` and an
optimizer made before keep working, and ``model(x)`` runs ``nn.Linear`` and
``F.relu`` on shared tensors unchanged. ``model.float_precision()`` decodes it back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fedlab.secure.errors import SecureError
from fedlab.secure.precision import FixedPrecisionTensor, decode, encode
from fedlab.secure.wrapper import SecureParameter, is_secure, to_parameter
from fedlab.wrapper import ParameterWrapper, is_pointer


def _params(model: nn.Module) -> list[nn.Parameter]:
    seen: dict[int, nn.Parameter] = {}
    for p in model.parameters():
        seen.setdefault(id(p), p)  # tied weights are encoded once
    return list(seen.values())


def module_fix_precision(self: nn.Module, base: int = 10, precision_fractional: int = 3,
                         **kwargs: Any) -> nn.Module:  # fmt: skip
    """Encode every parameter in place (on its worker if the model was sent); returns the model."""
    params = [p for p in _params(self) if not is_secure(p)]
    # Encode everything first: a failure leaves the model as it was.
    encoded = [encode(p if is_pointer(p) else p.detach(), base, precision_fractional)
               for p in params]  # fmt: skip
    for p, child in zip(params, encoded):
        fpt = FixedPrecisionTensor(child, base, precision_fractional)
        if is_pointer(p):  # a pointer parameter: switch classes without remote calls
            p.__dict__.pop("child")  # (its float values on the worker are deleted)
            p.__class__ = SecureParameter
            p.__dict__.update(child=fpt, requires=False, sgrad=None, grad_fn=None)
        else:
            to_parameter(p, fpt)
            p.__dict__["requires"] = False  # gradients again only with share(requires_grad=True)
    return self


def module_share(self: nn.Module, *workers: Any, **kwargs: Any) -> nn.Module:
    """Share every fixed-precision parameter among ``workers``, in place; returns the model."""
    params = _params(self)
    if not all(is_secure(p) and isinstance(p.child, FixedPrecisionTensor) for p in params):
        raise SecureError("share() a model after encoding it: model.fix_precision().share(...)")
    shared = [p.share(*workers, **kwargs) for p in params]
    for p, s in zip(params, shared):
        s.child.child.child.holder = None  # the record is ours at once (see AST.holder)
        p.__dict__.update(child=s.child, requires=s.__dict__["requires"], sgrad=None)
    return self


def module_float_precision(self: nn.Module) -> nn.Module:
    """Decode every parameter back to floats, in place (a shared one is fetched first)."""
    for p in _params(self):
        if not is_secure(p):
            continue
        p.come_home()
        f = p.child
        values = decode(f.child, f.scale)
        for key in ("child", "requires", "sgrad", "grad_fn"):
            p.__dict__.pop(key, None)
        if is_pointer(values):  # still on its worker: a pointer parameter again
            p.__class__ = ParameterWrapper
            p.__dict__["child"] = values.__dict__.pop("child")
        else:
            p.__class__ = nn.Parameter
            with torch.no_grad():
                p.data = values
            p.requires_grad_(True)
    return self


def optimizer_fix_precision(self: torch.optim.Optimizer, base: int = 10,
                            precision_fractional: int = 3, **kwargs: Any) -> Any:  # fmt: skip
    """Check that the hyper-parameters survive the encoding; returns the optimizer.

    PySyft replaced the learning rate by a fixed-precision tensor. Torch 2's ``SGD``
    passes it to ``param.add_(grad, alpha=-lr)`` as a number, and a fixed-precision
    tensor multiplies by a number by encoding it (round(lr * base**precision)), so the
    rate stays a float here and is encoded the same way at each step. What can go
    wrong is a rate too small for the precision: it would encode to 0 and no step
    would ever change the model. That is refused.
    """
    scale = FixedPrecisionTensor(None, base, precision_fractional).scale
    for group in self.param_groups:
        for key, value in group.items():
            if key == "params" or type(value) is not float or value == 0:
                continue
            if round(value * scale) == 0:
                raise SecureError(
                    f"{key}={value} encodes to 0 with {precision_fractional} fractional "
                    f"digits (base {base}): every step would do nothing. Use a larger "
                    "precision_fractional for the model, the data and the optimizer."
                )
        group["fixed_precision"] = (base, precision_fractional)
    return self
