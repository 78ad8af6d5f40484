"""The sandbox (PySyft 0.2's ``sy.create_sandbox(globals())``): workers that already hold data.

``create_sandbox`` hooks torch (unless it is hooked), makes six workers (bob, theo, jason,
alice, andy, jon), splits six of scikit-learn's bundled datasets over them as each worker's
own data, and puts ``hook``, each worker, ``workers`` and ``grid`` into the caller's
namespace. ``grid = PrivateGridNetwork(*workers)`` searches them all at once:
``grid.search("#boston", "#data")`` gives ``{worker id: [pointers]}``.

Nothing is downloaded. PySyft loaded scikit-learn's Boston house prices, which scikit-learn
no longer ships (removed in 1.2): its diabetes dataset stands in for it, a regression task
of the same kind (ten features for Boston's thirteen, one number to predict), tagged both
``#diabetes`` and ``#boston``, ``#housing``, ``#boston_housing``, so that the tutorials'
searches find it. PySyft's TensorFlow datasets (Fashion-MNIST, CIFAR-10) are left out.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import torch

from fedlab import registry
from fedlab.hook import TorchHook
from fedlab.worker import BaseWorker, VirtualWorker

WORKERS = ("bob", "theo", "jason", "alice", "andy", "jon")  # PySyft's six, in its order

# scikit-learn loader -> (what the verbose output calls it, its tags). The second tag of
# each is PySyft 0.2.9's (scikit-learn's own label, "linnerrud" spelt as there); the
# first is the short name. The diabetes data also stand in for Boston's (see above).
DATASETS = {
    "load_diabetes": (
        "Diabetes Dataset, standing in for the Boston Housing Dataset",
        ("#diabetes", "#boston", "#housing", "#boston_housing"),
    ),
    "load_breast_cancer": ("Breast Cancer Dataset", ("#breast_cancer", "#breast_cancer_dataset")),
    "load_digits": ("Digits Dataset", ("#digits", "#digits_dataset")),
    "load_iris": ("Iris Dataset", ("#iris", "#iris_dataset")),
    "load_wine": ("Wine Dataset", ("#wine", "#wine_dataset")),
    "load_linnerud": ("Linnerud Dataset", ("#linnerud", "#linnerrud_dataset")),
}
_STAND_IN = " (scikit-learn's; it stands in for Boston house prices, no longer shipped)"


class PrivateGridNetwork:
    """Several workers searched as one (PySyft's ``PrivateGridNetwork``, the sandbox's grid)."""

    def __init__(self, *workers: BaseWorker) -> None:
        for w in workers:
            if not isinstance(w, BaseWorker):
                raise TypeError(
                    f"a grid is made of workers, e.g. sy.PrivateGridNetwork(bob, alice), "
                    f"not {type(w).__name__}"
                )
        self.workers = list(workers)

    def search(self, *query: Any) -> dict[str, list[torch.Tensor]]:
        """``{worker id: [pointers]}`` to the tensors carrying every tag asked, per worker.

        Workers with no match are left out. As with ``bob.search``, the pointers free
        nothing when they die: the tensors are the workers' to keep.
        """
        found = {w.id: w.search(*query) for w in self.workers}
        return {wid: ptrs for wid, ptrs in found.items() if ptrs}

    def __repr__(self) -> str:
        return f"<PrivateGridNetwork {' '.join(w.id for w in self.workers)}>"


def create_sandbox(gbs: MutableMapping[str, Any], verbose: bool = True,
                   download_data: bool = True) -> None:  # fmt: skip
    """Hook torch, make six workers holding scikit-learn's datasets, and put them in ``gbs``.

    ``gbs`` is the namespace to fill (``globals()``): it gets ``hook``, ``bob``, ``theo``,
    ``jason``, ``alice``, ``andy``, ``jon``, ``workers`` (the six, in that order) and
    ``grid`` (a ``PrivateGridNetwork`` of them). Each dataset's inputs and targets are
    split in order over the six workers as PySyft did (``n // 6`` rows each, the rest to
    jon), as float32 tensors tagged with the dataset's tags and ``#data`` or ``#target``,
    and become each worker's own data: ``reset()`` and ``clear_objects()`` keep them, and
    ``grid.search(...)`` or ``bob.search(...)`` finds them. The datasets are scikit-learn's
    diabetes (also tagged ``#boston``, ``#housing``, ``#boston_housing``: it stands in for
    Boston house prices, which scikit-learn no longer ships), breast cancer, digits, iris,
    wine and Linnerud; nothing is downloaded. Calling it again changes nothing: the
    workers are the same, and data a worker holds already is not given twice.
    ``download_data=False`` makes the hook, workers and grid only (PySyft's name: nothing
    was ever downloaded here). ``verbose`` prints each step, as PySyft did.
    """
    if not isinstance(gbs, MutableMapping):
        raise TypeError(
            f"create_sandbox fills a namespace with the workers: call it as "
            f"sy.create_sandbox(globals()), not with {type(gbs).__name__}"
        )
    say = print if verbose else _quiet
    print("Setting up Sandbox...")
    say("\t- Hooking PyTorch")
    try:
        hook = registry.local_worker().hook  # already hooked: PySyft's second hook, quietly
    except RuntimeError:
        hook = TorchHook(torch)
    say("\t- Creating Virtual Workers:")
    workers = []
    for name in WORKERS:
        say(f"\t\t- {name}")
        workers.append(VirtualWorker(hook, id=name))

    say("\tStoring hook and workers as global variables...")
    gbs["hook"] = hook
    gbs.update(zip(WORKERS, workers))
    gbs["workers"] = workers

    if download_data:
        say("\tLoading datasets from SciKit Learn...")
        shares: list[list[torch.Tensor]] = [[] for _ in workers]
        for loader, (title, tags) in DATASETS.items():
            say(f"\t\t- {title}")
            for tensor in _load(loader, tags):
                for share, part in zip(shares, _split(tensor, len(workers))):
                    share.append(part)
        say("\tDistributing Datasets Amongst Workers...")
        for w, share in zip(workers, shares):
            w.add_data(*share)

    say("\tCollecting workers into a VirtualGrid...")
    gbs["grid"] = PrivateGridNetwork(*workers)
    print("Done!")


def _quiet(*args: Any) -> None:
    pass


def _load(loader: str, tags: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """A scikit-learn dataset as float32 (data, target), tagged and described."""
    try:
        from sklearn import datasets  # (scikit-learn is loaded only here, when asked for)
    except ImportError:
        raise ImportError(
            "create_sandbox loads scikit-learn's bundled datasets: pip install "
            "'fedlab[lab]' (make lab installs it), or pass download_data=False"
        ) from None
    bunch = getattr(datasets, loader)()
    # scikit-learn's DESCR starts with a label (".. _iris_dataset:"), then the title.
    title = next(line for line in bunch.DESCR.splitlines()[1:] if line.strip())
    about = title + (_STAND_IN if "#boston" in tags else "")
    data = torch.tensor(bunch.data, dtype=torch.float32)
    target = torch.tensor(bunch.target, dtype=torch.float32)
    return (data.tag(*tags, "#data").describe(about), target.tag(*tags, "#target").describe(about))


def _split(t: torch.Tensor, k: int) -> list[torch.Tensor]:
    """``t``'s rows in order: ``len(t) // k`` to each part, the rest to the last (as PySyft)."""
    size = len(t) // k
    sizes = [size] * (k - 1) + [len(t) - size * (k - 1)]
    parts = [p.clone() for p in t.split(sizes)]  # (each in its own storage, not a view)
    for p in parts:
        p.tag(*t.tags).describe(t.description)
    return parts
