"""Plain torch operations, timed in a fresh process, with or without fedlab hooked.

``python -m benchmarks.plain_ops`` never imports fedlab ("before");
``python -m benchmarks.plain_ops --hook`` first runs ``sy.TorchHook(torch)`` and
creates a worker ("after"). The same code is timed in both, so the difference is
what hooking costs a student's ordinary torch code. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys

import torch
from torch import nn

from benchmarks.timing import per_call


def measure(quick: bool = False) -> dict:
    """Median seconds per call of a few everyday torch operations."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    a, b = torch.randn(10), torch.randn(10)
    m1, m2 = torch.randn(64, 64), torch.randn(64, 64)
    model = nn.Linear(64, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))

    def train_step() -> None:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    number, repeats = (200, 3) if quick else (5000, 7)
    return {
        "add_10": per_call(lambda: a + b, number, repeats),
        "matmul_64": per_call(lambda: m1 @ m2, number // 5, repeats),
        "linear_train_step": per_call(train_step, number // 20, repeats),
    }


def main(argv: list[str]) -> int:
    """Entry point: time the operations, hooked or not, and print JSON."""
    hooked = "--hook" in argv
    if hooked:
        import fedlab as sy

        hook = sy.TorchHook(torch)
        sy.VirtualWorker(hook, id="bob")
    assert hooked == ("fedlab" in sys.modules), "the 'before' process must never import fedlab"
    print(json.dumps({"hooked": hooked, "ops": measure("--quick" in argv)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
