"""fedlab: federated learning taught with pointers to remote tensors (PySyft 0.2 style).

``import fedlab as sy``; ``hook = sy.TorchHook(torch)``; ``bob = sy.VirtualWorker(hook, id="bob")``;
``x.send(bob)`` returns a pointer, torch calls on it run on bob, ``.get()`` brings it back.
"""

from __future__ import annotations

from typing import Any

from fedlab import exceptions
from fedlab.events import subscribe
from fedlab.hook import MultiWrapper, ParameterWrapper, TorchHook, Wrapper, is_pointer
from fedlab.pointer import MultiPointerTensor, PointerTensor, live_pointers
from fedlab.worker import BaseWorker, VirtualWorker, all_workers, get_worker, reset

__all__ = [
    "AdditiveSharingTensor",
    "BaseWorker",
    "FixedPrecisionTensor",
    "MultiPointerTensor",
    "MultiWrapper",
    "ParameterWrapper",
    "Plan",
    "PointerTensor",
    "TorchHook",
    "VirtualWorker",
    "Wrapper",
    "all_workers",
    "check",
    "connect",
    "draw",
    "exceptions",
    "explain",
    "func2plan",
    "get_worker",
    "is_pointer",
    "live_pointers",
    "local_worker",
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
    "Plan": "fedlab.plan",
    "func2plan": "fedlab.plan",
    "spawn_workers": "fedlab.transport.ray",
    "connect": "fedlab.transport.ray",
    "shutdown_workers": "fedlab.transport.ray",
}


def __getattr__(name: str) -> Any:
    # ``sy.local_worker`` exists once torch is hooked, as in PySyft.
    if name == "local_worker":
        from fedlab import hook

        return hook.local_worker()
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fedlab' has no attribute {name!r}")


# Fixed precision and secret sharing (a layer above the pointer core): its methods
# (``fix_precision``, ``share``, ...) are added to torch's classes at import.
from fedlab import secure  # noqa: E402
from fedlab.secure import AdditiveSharingTensor, FixedPrecisionTensor  # noqa: E402

secure.install()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext fedlab``: register fedlab's magics (imported only now)."""
    from fedlab.viz.magics import load_ipython_extension as load

    load(ipython)
