"""Plain torch operations before vs after ``sy.TorchHook(torch)``, interleaved in one process.

``python -m benchmarks.plain_ops`` times a few everyday torch operations with what
hooking adds switched off and on, in alternating blocks. Two processes (one that never
imports fedlab, one hooked) would differ by the host's fast and slow spells, which last
seconds to minutes and move these timings by up to 2x; blocks a few milliseconds apart
share their spell. "Off" is exactly the state before hooking: every attribute that
hooking added to torch's classes and every global optimizer hook it registered are
taken away (the script checks that what is left equals its snapshot from before
hooking). Prints one JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable

import torch
from torch import nn
from torch.optim import optimizer as torch_optimizer

from benchmarks.timing import per_call

# Everything ``TorchHook`` could change that plain torch code passes through.
_CLASSES = (torch.Tensor, nn.Parameter, nn.Module, torch.optim.Optimizer)
_HOOK_DICTS = (
    torch_optimizer._global_optimizer_pre_hooks,
    torch_optimizer._global_optimizer_post_hooks,
)


def _state() -> list[dict]:
    return [dict(vars(c)) for c in _CLASSES] + [dict(d) for d in _HOOK_DICTS]


def _same(a: list[dict], b: list[dict]) -> bool:
    return all(x.keys() == y.keys() and all(x[k] is y[k] for k in x) for x, y in zip(a, b))


def hook_switch() -> Callable[[bool], None]:
    """Hook torch (with a worker, as lessons do); return a switch for what hooking added."""
    before = _state()
    import fedlab as sy

    hook = sy.TorchHook(torch)
    sy.VirtualWorker(hook, id="bob")
    after = _state()

    def switch(on: bool) -> None:
        for i, c in enumerate(_CLASSES):
            for k, v in after[i].items():
                if before[i].get(k) is not v:
                    if on:
                        setattr(c, k, v)
                    elif k in before[i]:
                        setattr(c, k, before[i][k])
                    elif k in vars(c):  # (already off)
                        delattr(c, k)
        for d, b, a in zip(_HOOK_DICTS, before[len(_CLASSES) :], after[len(_CLASSES) :]):
            d.clear()
            d.update(a if on else b)

    switch(False)
    if not _same(_state(), before):
        raise RuntimeError("switching the hook off did not restore torch as it was before")
    switch(True)
    if not _same(_state(), after) or _same(before, after):
        raise RuntimeError("switching the hook back on did not restore the hooked torch")
    return switch


def measure(quick: bool = False) -> dict:
    """Median seconds per call of a few everyday torch operations, hook off and on."""
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

    ops = {
        "add_10": (lambda: a + b, 1),
        "matmul_64": (lambda: m1 @ m2, 5),
        "linear_train_step": (train_step, 20),
    }
    switch = hook_switch()
    number, repeats = (200, 3) if quick else (2000, 21)
    samples: dict[str, dict[bool, list[float]]] = {op: {False: [], True: []} for op in ops}
    for r in range(repeats):
        for on in (False, True) if r % 2 == 0 else (True, False):  # ABBA: drift cancels
            switch(on)
            for op, (fn, slower) in ops.items():
                samples[op][on].append(per_call(fn, number // slower, 1)["median"])
    switch(True)
    out = {}
    for op, s in samples.items():
        before, after = statistics.median(s[False]), statistics.median(s[True])
        paired = statistics.median(t / f for f, t in zip(s[False], s[True]))
        out[op] = {
            "before_s": before,
            "after_s": after,
            "overhead": after / before - 1,
            "paired_overhead": paired - 1,
            "n": repeats,
        }
    return out


def main(argv: list[str]) -> int:
    """Entry point: time the operations with the hook off and on, and print JSON."""
    print(json.dumps({"ops": measure("--quick" in argv)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
