"""Instructions per operation, counted by valgrind's callgrind: no clock, so no noise.

Each case's loop of ``N`` iterations runs inside ``sys.call_tracing`` (a C function
called nowhere else), and callgrind counts only what runs inside it
(``--toggle-collect``), so imports and setup are left out; the count divided by ``N`` is
one iteration, including its share of Python's garbage collections. Hash randomisation
is off, so a rerun gives the same figure to within a few instructions. ``--src DIR``
measures another checkout of fedlab (an older commit, say) with the same cases::

    python -m benchmarks.callgrind                 # this checkout
    python -m benchmarks.callgrind --src /tmp/old  # a worktree of an older commit
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
import sys, torch
import torch.nn.functional as F
import fedlab as sy
assert sy.__file__.startswith(sys.argv[2]), sy.__file__  # the checkout asked for
torch.set_num_threads(1)
hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
x = torch.rand(10).send(bob)
y = torch.rand(10).send(bob)
w = torch.rand(3, 10).send(bob)
b = torch.rand(3).send(bob)
kept = []
n = int(sys.argv[1])
"""

# One iteration of each case; the names are those of the README's Performance section.
CASES = {
    "kept x + y (op, reply)": "kept.append(x + y)",
    "freed x + y (op, reply, delete)": "z = x + y\ndel z",
    "F.linear on pointers": "kept.append(F.linear(x, w, b))",
    "lesson 7's send loop (send, delete)": "z = torch.tensor([1.0, 2.0]).send(bob)\ndel z",
    "the same, a subscriber that does nothing": "z = torch.tensor([1.0, 2.0]).send(bob)\ndel z",
    "the same, watched by a live panel": "z = torch.tensor([1.0, 2.0]).send(bob)\ndel z",
}
# What a case sets up before its loop (and the loop's warm-up).
PRELUDES = {
    "the same, a subscriber that does nothing": "sy.subscribe(lambda event: None)",
    "the same, watched by a live panel": "panel = sy.watch(sy.local_worker, bob)\n"
    "panel._repr_mimebundle_()  # displayed, as in a notebook",
}


def instructions(script: str, n: int, src: Path) -> int:
    """Instructions callgrind counts inside ``sys.call_tracing`` when ``script`` runs with ``n``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    "--collect-atstart=no", "--toggle-collect=sys_call_tracing"]  # fmt: skip
        command = [*valgrind, sys.executable, "-c", script, str(n), str(src)]
        # (in the temporary folder: with -c, Python puts the current folder first on its path)
        subprocess.run(command, check=True, env=env, capture_output=True, cwd=tmp)
        summary = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
        assert summary, "callgrind wrote no summary line"
        return int(summary.group(1))


def per_iteration(body: str, n: int, src: Path, prelude: str = "") -> float:
    """Instructions of one iteration of ``body``, after ``prelude`` and a warm-up of 50."""
    loop = "".join(f"        {line}\n" for line in body.splitlines())
    script = f"{SETUP}{prelude}\ndef loop(n):\n    for _ in range(n):\n{loop}"
    # The first calls fill torch's and Python's caches: run them before counting.
    script += "loop(50)\nsys.call_tracing(loop, (n,))\n"
    return instructions(script, n, src) / n


def main(argv: list[str] | None = None) -> int:
    """Measure every case and print (and, with --json, write) instructions per iteration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("-n", type=int, default=1000, help="iterations per loop")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    figures = {}
    for name, body in CASES.items():
        count = per_iteration(body, args.n, args.src.resolve(), PRELUDES.get(name, ""))
        figures[name] = round(count, -2)
        print(f"{name:40s} {figures[name]:>10,.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
