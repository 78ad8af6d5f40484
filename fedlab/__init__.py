"""fedlab: federated learning taught with pointers to remote tensors (PySyft 0.2 style).

``import fedlab as sy``; ``hook = sy.TorchHook(torch)``; ``bob = sy.VirtualWorker(hook, id="bob")``;
``x.send(bob)`` returns a pointer, torch calls on it run on bob, ``.get()`` brings it back.
"""

from __future__ import annotations

from typing import Any

from fedlab import exceptions, log, secure
from fedlab.events import subscribe
from fedlab.federated import BaseDataset, FederatedDataLoader, FederatedDataset, Optims
from fedlab.federated.sandbox import PrivateGridNetwork, create_sandbox
from fedlab.hook import TorchHook
from fedlab.pointer import MultiPointerTensor, PointerTensor, live_pointers
from fedlab.registry import all_workers, get_worker, reset
from fedlab.secure import AdditiveSharingTensor, FixedPrecisionTensor  # (adds x.share(), ...)
from fedlab.worker import BaseWorker, VirtualWorker
from fedlab.wrapper import MultiWrapper, ParameterWrapper, Wrapper, is_pointer

__all__ = [
    "AdditiveSharingTensor",
    "BaseDataset",
    "BaseWorker",
    "FederatedDataLoader",
    "FederatedDataset",
    "FixedPrecisionTensor",
    "MultiPointerTensor",
    "MultiWrapper",
    "Optims",
    "ParameterWrapper",
    "Plan",
    "PointerTensor",
    "PrivateGridNetwork",
    "TorchHook",
    "VirtualWorker",
    "Wrapper",
    "all_workers",
    "check",
    "connect",
    "create_sandbox",
    "draw",
    "exceptions",
    "explain",
    "func2plan",
    "get_worker",
    "is_pointer",
    "live_pointers",
    "local_worker",
    "log",
    "reset",
    "secure",
    "shutdown_workers",
    "spawn_workers",
    "subscribe",
    "trace",
    "watch",
]


# Names whose modules import heavier packages (ipywidgets, matplotlib, Ray): loaded on
# first use, so that ``import fedlab`` stays light and pulls none of them in.
_LAZY = {
    "watch": "fedlab.viz",
    "explain": "fedlab.viz",
    "trace": "fedlab.viz",
    "draw": "fedlab.viz",
    "check": "fedlab.grading",
    "Plan": "fedlab.plans",
    "func2plan": "fedlab.plans",
    "spawn_workers": "fedlab.transport.ray",
    "connect": "fedlab.transport.ray",
    "shutdown_workers": "fedlab.transport.ray",
}


def __getattr__(name: str) -> Any:
    # ``sy.local_worker`` exists once torch is hooked, as in PySyft.
    if name == "local_worker":
        from fedlab import registry

        return registry.local_worker()
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fedlab' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext fedlab``: register fedlab's magics (imported only now)."""
    from fedlab.viz.magics import load_ipython_extension as load

    load(ipython)


# In a running IPython (a notebook), fedlab's errors show the student's lines and the
# message, not fedlab's internals; IPython is never imported for it (fedlab.viz.errors).
if getattr(__import__("sys").modules.get("IPython"), "get_ipython", lambda: None)() is not None:
    from fedlab.viz.errors import register as _register_errors

    _register_errors()
