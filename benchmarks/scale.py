"""Scale: one FedAvg round with N in-process workers (tiny model, tiny data each).

``python -m benchmarks.scale N [ROUNDS]`` runs in a fresh process and prints one JSON
line: the time of each round, the memory that setting up N workers keeps
(tracemalloc), the peak extra memory of one round (tracemalloc, measured in a
separate round because tracing slows Python down) and the process's RSS.
"""

from __future__ import annotations

import copy
import json
import resource
import sys
import time
import tracemalloc

import torch
from torch import nn

FEATURES, EXAMPLES = 4, 8


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def one_round(model: nn.Module, data: list) -> None:
    """Each worker trains a copy of ``model`` for one step on its data; average in place."""
    from fedlab.fedavg import aggregate

    results = []
    for w, px, py in data:
        local = model.copy().send(w)
        opt = torch.optim.SGD(local.parameters(), lr=0.1)
        opt.zero_grad()
        nn.functional.mse_loss(local(px), py).backward()
        opt.step()
        local.get()
        results.append(([p.detach() for p in local.parameters()], EXAMPLES))
    with torch.no_grad():
        for p, v in zip(model.parameters(), aggregate(results)):
            p.copy_(v)


def plain_round(model: nn.Module, data: list) -> None:
    """The same client updates in plain torch, on local tensors: the floor for any system."""
    from fedlab.fedavg import aggregate

    results = []
    for _, x, y in data:
        local = copy.deepcopy(model)
        opt = torch.optim.SGD(local.parameters(), lr=0.1)
        opt.zero_grad()
        nn.functional.mse_loss(local(x), y).backward()
        opt.step()
        results.append(([p.detach() for p in local.parameters()], EXAMPLES))
    with torch.no_grad():
        for p, v in zip(model.parameters(), aggregate(results)):
            p.copy_(v)


def plain_times(n: int, rounds: int) -> list[float]:
    """Seconds per round of ``plain_round`` with ``n`` clients' data kept here."""
    torch.manual_seed(0)
    model = nn.Linear(FEATURES, 1)
    data = [(None, torch.randn(EXAMPLES, FEATURES), torch.randn(EXAMPLES, 1)) for _ in range(n)]
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        plain_round(model, data)
        times.append(time.perf_counter() - start)
    return times


def measure(n: int, rounds: int = 3) -> dict:
    """Set up ``n`` workers with their data, then time ``rounds`` rounds and trace one more."""
    import fedlab as sy

    torch.set_num_threads(1)
    torch.manual_seed(0)
    hook = sy.TorchHook(torch)
    model = nn.Linear(FEATURES, 1)
    rss0 = _rss_mb()
    tracemalloc.start()
    start = time.perf_counter()
    workers = [sy.VirtualWorker(hook, id=f"w{i}") for i in range(n)]
    data = [
        (w, torch.randn(EXAMPLES, FEATURES).send(w), torch.randn(EXAMPLES, 1).send(w))
        for w in workers
    ]
    setup = time.perf_counter() - start
    kept, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_setup = _rss_mb()

    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        one_round(model, data)
        times.append(time.perf_counter() - start)

    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    one_round(model, data)
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    leftover = sum(len(w._objects) for w in workers) - 2 * n  # only the data should remain
    return {
        "workers": n,
        # The same updates in plain torch, in this process, after fedlab's rounds.
        "plain_torch_round_times": plain_times(n, rounds),
        "setup_s": setup,
        "round_times": times,
        "kept_bytes_after_setup": kept,
        "round_peak_bytes": peak - before,
        "round_leak_bytes": after - before,
        "objects_left_behind": leftover,
        "rss_start_mb": rss0,
        "rss_after_setup_mb": rss_setup,
        "rss_end_mb": _rss_mb(),
    }


def main(argv: list[str]) -> int:
    """Entry point: measure N workers and print JSON."""
    n = int(argv[0])
    print(json.dumps(measure(n, int(argv[1]) if len(argv) > 1 else 3)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
