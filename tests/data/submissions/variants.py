"""Known-wrong and broken submissions, built from the source notebooks (so they never drift).

    python tests/data/submissions/variants.py OUTDIR   # write them all, e.g. to try `fedlab grade`

Each variant takes an exercise's source notebook and replaces the k-th solution (the k-th
cell with solution markers) by other code; the others keep the reference solution.
``EXPECTED`` says which criteria each variant must fail: exactly the privacy one for
the known-wrong solutions that fetch data to ``me``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import nbformat

from fedlab.grading.authoring import BEGIN, solutions, strip_solution

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "exercises" / "source"


def source_of(exercise: str) -> Path:
    """The source notebook of ``exercise``."""
    return next(SOURCE.glob(f"*-{exercise}.ipynb"))


def submission(exercise: str, replace: dict[int, str | Callable[[str], str]] | None = None):
    """The reference solution of ``exercise`` as a student would submit it, with replacements."""
    nb = nbformat.read(source_of(exercise), as_version=4)
    replace = replace or {}
    k = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or BEGIN not in cell.source:
            continue
        reference = "\n".join(solutions(cell.source))
        new = replace.get(k, reference)
        new = new(reference) if callable(new) else new
        cell.source = strip_solution(cell.source, tuple(new.split("\n")))
        k += 1
    return nb


FEDERATED_LOCAL = """
data_all = torch.cat([data_bob.get(), data_alice.get()])
target_all = torch.cat([target_bob.get(), target_alice.get()])
opt = optim.SGD(model.parameters(), lr=0.2)
for _step in range(100):
    opt.zero_grad()
    loss = ((model(data_all) - target_all) ** 2).mean()
    loss.backward()
    opt.step()
""".strip()

AGGREGATE_ON_ME = """
bob_model.move(secure_worker)
alice_model.move(secure_worker)
bob_model.get()
alice_model.get()
with torch.no_grad():
    model.weight.copy_((bob_model.weight + alice_model.weight) / 2)
    model.bias.copy_((bob_model.bias + alice_model.bias) / 2)
""".strip()

SECURE_ON_ME = """
with torch.no_grad():
    for name in ("weight", "bias"):
        shared = [
            getattr(models[w.id], name).copy().get().fix_precision()
            .share(bob, alice, carol, crypto_provider=james)
            for w in workers
        ]
        total = shared[0] + shared[1] + shared[2]
        getattr(model, name).copy_(total.get().float_precision() / 3)
        del shared, total
""".strip()

SECURE_LEFTOVERS = """
with torch.no_grad():
    for name in ("weight", "bias"):
        shared = [
            getattr(models[w.id], name).copy().fix_precision()
            .share(bob, alice, carol, crypto_provider=james).get()
            for w in workers
        ]
        total = shared[0] + shared[1] + shared[2]
        getattr(model, name).copy_(total.get().float_precision() / 3)
""".strip()

SECURE_ALL_SHARES_TO_BOB = """
with torch.no_grad():
    for name in ("weight", "bias"):
        shared = [
            getattr(models[w.id], name).copy().fix_precision()
            .share(bob, alice, carol, crypto_provider=james).get()
            for w in workers
        ]
        for s in shared:  # every share of every model goes to bob: he could add them up
            for ptr in list(s.child.child.child.child.values())[1:]:
                ptr.move(bob)
        total = shared[0] + shared[1] + shared[2]
        getattr(model, name).copy_(total.get().float_precision() / 3)
        del shared, total, s, ptr
""".strip()

# name -> (exercise, replacements)
VARIANTS: dict[str, tuple[str, dict]] = {
    "linear-model-peek": ("linear-model", {0: lambda ref: "print(data.clone().get())\n" + ref}),
    "federated-local": ("federated", {0: FEDERATED_LOCAL}),
    "pointer-chains-via-me": ("pointer-chains", {0: "x = x.get().send(alice)"}),
    "trusted-aggregator-on-me": ("trusted-aggregator", {0: AGGREGATE_ON_ME}),
    "gc-detective-clear": ("gc-detective", {1: "bob.clear_objects()"}),
    "gc-detective-wrong-guess": ("gc-detective", {0: "left_on_bob = {1, 2}"}),
    "secure-aggregation-on-me": ("secure-aggregation", {0: SECURE_ON_ME}),
    "secure-aggregation-leftovers": ("secure-aggregation", {0: SECURE_LEFTOVERS}),
    "secure-aggregation-all-shares-to-bob": ("secure-aggregation", {0: SECURE_ALL_SHARES_TO_BOB}),
    "remote-tensors-hang": (
        "remote-tensors",
        {1: lambda ref: ref + "\nimport time\ntime.sleep(600)"},
    ),
}

# name -> the criteria it must fail (every other criterion passes)
EXPECTED: dict[str, set[str]] = {
    "linear-model-peek": {"the training data and targets never left bob"},
    "federated-local": {"the model went to the data; each worker's data stayed home"},
    "pointer-chains-via-me": {"the data never passed through me"},
    "trusted-aggregator-on-me": {"me received only the average, never an individual model"},
    "gc-detective-clear": {"freed by dropping pointers, not by clearing bob"},
    "gc-detective-wrong-guess": {"prediction: the ids left on bob"},
    "secure-aggregation-on-me": {
        "each model was shared where it lives",
        "no one received a worker's model, or all of its shares",
    },
    "secure-aggregation-leftovers": {"nothing is left on the workers"},
    "secure-aggregation-all-shares-to-bob": {
        "no one received a worker's model, or all of its shares"
    },
}


def write_all(out: Path) -> list[Path]:
    """Write every variant, plus a broken file and one that names no real exercise."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (exercise, replace) in VARIANTS.items():
        path = out / f"{name}.ipynb"
        nbformat.write(submission(exercise, replace), path)
        paths.append(path)
    broken = out / "broken.ipynb"
    broken.write_text('{"cells": [ this is not JSON', encoding="utf-8")
    wrong = submission("remote-tensors")
    wrong.metadata["fedlab"] = {"exercise": "no-such-exercise"}
    nbformat.write(wrong, out / "wrong-exercise.ipynb")
    return [*paths, broken, out / "wrong-exercise.ipynb"]


def run_in_process(nb) -> dict:
    """Execute a notebook's code cells here, in a fresh namespace; returns that namespace.

    The fast way to grade in tests: no kernel, but the same cells, recorder and checks.
    A cell that raises is recorded under ``"__errors__"`` and the next cells still run.
    """
    ns: dict = {"__name__": "__main__", "__errors__": []}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            exec(compile(cell.source, f"<cell {index}>", "exec"), ns)
        except Exception as e:
            ns["__errors__"].append(f"cell {index}: {type(e).__name__}: {e}")
    return ns


if __name__ == "__main__":  # pragma: no cover
    for p in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(p)
