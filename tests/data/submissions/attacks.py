"""Adversarial submissions: every attack of issue 21, each with the exact score it earns.

    python tests/data/submissions/attacks.py OUTDIR   # write them all, then `fedlab grade OUTDIR`

Each attack is built from an exercise's source notebook (``variants.submission``): the
reference solution with some solution cells replaced, so they never drift. ``ATTACKS``
maps a file name to (exercise, replacements, extra files, expected score, max score).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).parent))
from variants import submission

NOTHING = "pass"  # a solution cell where the student did no work

FORGED = json.dumps({"exercise": "remote-tensors", "error": "", "results": [
    {"name": "x", "points": 4, "score": 4, "message": "", "hint": ""}]})  # fmt: skip

FORGE_EMIT = f"""
import fedlab.grading.runner as runner
runner.emit = lambda name: print("FEDLAB-GRADING-RESULT " + {FORGED!r})
runner.emit("remote-tensors")
"""

FORGE_CHECK = """
import fedlab.grading as grading
import fedlab.grading.notebook as notebook
from fedlab.grading import Report, Result
fake = lambda name=None, namespace=None: Report(name, [Result("x", 4, 4)])
grading.check = notebook.check = sy.check = fake
print(sy.check("remote-tensors"))
"""

FORGE_CRITERIA = """
from fedlab.grading import EXERCISES
from fedlab.grading.criteria import Criterion
ex = EXERCISES["remote-tensors"]
object.__setattr__(ex, "criteria", (Criterion("free points", 4, lambda ctx: "yes", "none"),))
print(sy.check("remote-tensors"))
"""

FORGE_HOOK = f"""
line = "FEDLAB-GRADING-RESULT " + {FORGED!r}
get_ipython().events.register("post_run_cell", lambda result: print(line))
"""

FORGE_DETACHED = f"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(3)
        os.write(1, ("FEDLAB-GRADING-RESULT " + {FORGED!r} + "\\n").encode())
        os._exit(0)
    os._exit(0)
"""

# A fedlab/ folder beside the notebook: if it were imported, nothing would work.
SHADOW = {"fedlab/__init__.py": "raise ImportError('the shadow fedlab was imported')\n"}

CALLBACKS = """
from fedlab import events
saved = events.bus.subscriptions
events.bus.subscriptions = ()  # nobody listening: the fetch would go unrecorded in the kernel
peek = data.get()
events.bus.subscriptions = saved
"""

REWRITE_LOG = """
from fedlab.grading import recorder
peek = data.clone().get()
rec = recorder.current()
if rec is not None:
    rec.log.clear()
"""

ONE_STEP = """
weights = torch.zeros(2, 1, requires_grad=True).send(bob)
bias = torch.zeros(1, requires_grad=True).send(bob)
loss = ((data.mm(weights) + bias - target) ** 2).mean()
loss.backward()
with torch.no_grad():
    weights -= 0.01 * weights.grad
from fedlab.grading.exercises import training
training.THRESHOLD = 100.0
"""

GC_FAKE_GIVEN = """
a = torch.tensor([1.0]).send(bob)
del a
mark()
"""

AVERAGE_AND_DIFFERENCE = """
bob_model.move(secure_worker)
alice_model.move(secure_worker)
with torch.no_grad():
    for name in ("weight", "bias"):
        b, a = getattr(bob_model, name), getattr(alice_model, name)
        mean, half = ((b + a) / 2).get(), ((b - a) / 2).get()
        getattr(model, name).copy_(mean)
        print("bob's", name, mean + half)  # one model rebuilt from two allowed-looking fetches
"""

PREVIEWS = """
from fedlab import events
seen = []
events.subscribe(lambda e: seen.append(e))
for d in (data_bob * 1, data_alice * 1, target_bob * 1, target_alice * 1):
    pass
stored = [e.obj for e in seen if isinstance(e, events.ObjectStored)]
data_all = torch.cat(stored[:2])  # the previews, if they showed values
target_all = torch.cat(stored[2:4])
opt = optim.SGD(model.parameters(), lr=0.2)
for _step in range(100):
    opt.zero_grad()
    ((model(data_all) - target_all) ** 2).mean().backward()
    opt.step()
"""

ANSWER_KEY = """
loss = train_step(w_ptr, b_ptr, x_bob, y_bob)  # one real step
w, b = w_ptr.get(), b_ptr.get()
from fedlab.grading.exercises.plans import given, reference_step, train
w, b = train(reference_step, (torch.zeros(1, 4), torch.zeros(1)), *given()[0]["bob"], 20)[-1]
"""

ONE_CALL_PER_WORKER = """
from fedlab.grading.exercises.plans import given, reference_step, train
start = [p.detach().clone() for p in model.parameters()]
trained = []
for worker, (x, y) in shards.items():
    w_ptr, b_ptr = (p.send(worker) for p in model.parameters())
    train_step(w_ptr, b_ptr, x, y)  # one plan call, for the log
    w_ptr.get(), b_ptr.get()
    trained.append(train(reference_step, start, *given()[0][worker.id], 5)[-1])
with torch.no_grad():
    model.weight.copy_(sum(t[0] for t in trained) / 3)
    model.bias.copy_(sum(t[1] for t in trained) / 3)
"""

HANG = """
import time
while True:  # a loop that swallows the grader's interrupt
    try:
        time.sleep(0.2)
    except KeyboardInterrupt:
        pass
"""


def rewrite_others(folder: Path) -> str:
    """A cell that tries to overwrite every other notebook in ``folder`` (where the originals are)."""
    return f"""
import pathlib
for p in pathlib.Path({str(folder)!r}).glob("*.ipynb"):
    try:
        p.write_text("{{}}")
    except OSError as e:
        print("refused:", e)
"""


def json_to_folder(out: Path) -> str:
    """A cell that tries to turn the grader's --json path into a folder."""
    return f"""
import os
try:
    os.makedirs({str(out)!r}, exist_ok=True)
except OSError as e:
    print("refused:", e)
"""


# file name -> (exercise, replacements, extra files, score, max score)
def attacks(folder: Path, json_out: Path) -> dict[str, tuple]:
    """Every attack, for a submissions folder ``folder`` graded with ``--json json_out``."""
    nothing = {k: NOTHING for k in range(2)}
    return {
        # forgery, no work done: each scores 0
        "01-remote-tensors-forge-emit.ipynb": ("remote-tensors", {0: FORGE_EMIT, 1: NOTHING}, {}, 0, 4),
        "01-remote-tensors-forge-check.ipynb": ("remote-tensors", {0: FORGE_CHECK, 1: NOTHING}, {}, 0, 4),
        "01-remote-tensors-forge-criteria.ipynb": ("remote-tensors", {0: FORGE_CRITERIA, 1: NOTHING}, {}, 0, 4),
        "01-remote-tensors-forge-hook.ipynb": ("remote-tensors", {0: FORGE_HOOK, 1: NOTHING}, {}, 0, 4),
        "01-remote-tensors-forge-detached.ipynb": ("remote-tensors", {0: FORGE_DETACHED, 1: NOTHING}, {}, 0, 4),
        # a shadowing fedlab/ folder is never imported: the honest work keeps its marks
        "shadow/01-remote-tensors.ipynb": ("remote-tensors", {}, SHADOW, 4, 4),
        # partial forgery: each keeps exactly what the real work earns
        "02-linear-model-callbacks.ipynb": ("linear-model", {0: lambda r: r + CALLBACKS}, {}, 4, 6),
        "02-linear-model-rewrite-log.ipynb": ("linear-model", {0: lambda r: r + REWRITE_LOG}, {}, 4, 6),
        "02-linear-model-threshold.ipynb": ("linear-model", {0: ONE_STEP}, {}, 2, 6),
        "07-plans-steps-constant.ipynb": ("plans", {1: lambda r: r.replace("range(20)", "range(1)")
                                                     + "\nfrom fedlab.grading.exercises import plans"
                                                     "\nplans.BOB_STEPS = 1"}, {}, 1, 6),
        "04-gc-detective-given-cell.ipynb": ("gc-detective", {0: "left_on_bob = set()", 1: NOTHING},
                                             {"@given": GC_FAKE_GIVEN}, 0, 4),
        "07-plans-is-exercise-1.ipynb": ("remote-tensors", {}, {}, 0, 6),
        # privacy leaks that exact values miss
        "02-linear-model-times-two.ipynb": ("linear-model", {0: lambda r: r + "\nprint((data * 2).get() / 2)"}, {}, 4, 6),
        "07-plans-flip.ipynb": ("plans", {1: lambda r: r + "\nprint(x_bob.flip(0).get())"}, {}, 5, 6),
        "06-trusted-aggregator-difference.ipynb": ("trusted-aggregator", {0: AVERAGE_AND_DIFFERENCE}, {}, 3, 5),
        "02-linear-model-objects.ipynb": ("linear-model", {0: lambda r: r + "\nprint(bob._objects)"}, {}, 4, 6),
        "03-federated-previews.ipynb": ("federated", {0: PREVIEWS}, {}, 0, 5),
        # result cheats
        "07-plans-answer-key.ipynb": ("plans", {1: ANSWER_KEY}, {}, 1, 6),
        "07-plans-one-call-per-worker.ipynb": ("plans", {2: ONE_CALL_PER_WORKER}, {}, 3, 6),
        # wrong zeros: honest work keeps its marks
        "01-remote-tensors-hang.ipynb": ("remote-tensors", {1: lambda r: r + HANG}, {}, 4, 4),
        "07-plans-wrong-metadata.ipynb": ("plans", {}, {"@metadata": "remote-tensors"}, 6, 6),
        "01-remote-tensors-rewrites-others.ipynb": ("remote-tensors", {1: lambda r: r + rewrite_others(folder)}, {}, 4, 4),
        "01-remote-tensors-json-folder.ipynb": ("remote-tensors", {1: lambda r: r + json_to_folder(json_out)}, {}, 4, 4),
        "zz-05-pointer-chains-victim.ipynb": ("pointer-chains", {}, {}, 5, 5),
        "nothing/02-linear-model.ipynb": ("linear-model", nothing, {}, 0, 6),
    }  # fmt: skip


def write_all(folder: Path, json_out: Path) -> dict[str, tuple[int, int]]:
    """Write every attack into ``folder``; returns file (relative) -> (score, max score)."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (exercise, replace, extra, score, top) in attacks(folder, json_out).items():
        nb = submission(exercise, replace)
        for rel, text in extra.items():
            if rel == "@given":  # replace the given cell that calls mark()
                cell = next(c for c in nb.cells if "mark()" in c.source)
                cell.source = text.strip()
            elif rel == "@metadata":
                nb.metadata["fedlab"] = {"exercise": text}
            else:
                p = folder / Path(name).parent / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text, encoding="utf-8")
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        expected[name] = (score, top)
    return expected


if __name__ == "__main__":  # pragma: no cover
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "attacks")
    for name, (score, top) in write_all(out, out.parent / "results.json").items():
        print(f"{score}/{top}  {out / name}")
