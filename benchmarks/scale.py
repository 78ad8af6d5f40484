"""Scale: one FedAvg round with N in-process workers (tiny model, tiny data each).

``python -m benchmarks.scale N [ROUNDS]`` runs in a fresh process and prints one JSON
line: the time of each round, written two ways (operation by operation on pointers, as
the course does, and with the local step as a plan: 5 messages per worker, not 15), the
memory that setting up N workers keeps (tracemalloc), the peak extra memory of one
round (tracemalloc, measured in a separate round because tracing slows Python down),
the process's RSS, and the messages each worker gets per round. Both ways must end with
the same model, bit for bit.
"""

from __future__ import annotations

import copy
import json
import resource
import sys
import time
import tracemalloc
from typing import Any

import torch
from torch import nn

FEATURES, EXAMPLES = 4, 8


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def one_round(model: nn.Module, data: list) -> None:
    """Each worker trains a copy of ``model`` for one step on its data; average in place."""
    from fedlab.federated.fedavg import aggregate

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


def local_step(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
    """The client's update of ``one_round`` as a function of tensors, to trace into a plan."""
    opt = torch.optim.SGD([w, b], lr=0.1)
    opt.zero_grad()
    nn.functional.mse_loss(nn.functional.linear(x, w, b), y).backward()
    opt.step()


def plan_round(model: nn.Module, data: list, step: Any) -> None:
    """``one_round`` with the local step as the plan ``step``: it goes in one message."""
    from fedlab.federated.fedavg import aggregate

    results = []
    for w, px, py in data:
        params = [p.send(w) for p in model.parameters()]
        step(*params, px, py)
        results.append(([p.get().detach() for p in params], EXAMPLES))
    with torch.no_grad():
        for p, v in zip(model.parameters(), aggregate(results)):
            p.copy_(v)


def messages_per_worker(run: Any) -> int:
    """How many messages (not counting replies) ``run()`` sends."""
    from fedlab import events

    log: list = []
    with events.subscribe(log.append):
        run()
    return sum(1 for e in log if isinstance(e, events.Exchange))  # a request and its reply


def plain_round(model: nn.Module, data: list) -> None:
    """The same client updates in plain torch, on local tensors: the floor for any system."""
    from fedlab.federated.fedavg import aggregate

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
    twin = copy.deepcopy(model)  # the same start, for the rounds with a plan
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

    step = sy.func2plan()(local_step)
    step.build(*twin.parameters(), *data[0][1:])
    plan_times = []
    for _ in range(rounds + 1):  # as many rounds as above: the models must then be equal
        start = time.perf_counter()
        plan_round(twin, data, step)
        plan_times.append(time.perf_counter() - start)
    same = all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))
    leftover += sum(len(w._objects) for w in workers) - 2 * n
    one = data[:1]
    counts = {
        "op_by_op": messages_per_worker(lambda: one_round(copy.deepcopy(model), one)),
        "plan": messages_per_worker(lambda: plan_round(copy.deepcopy(model), one, step)),
    }
    return {
        "workers": n,
        # The same updates in plain torch, in this process, after fedlab's rounds.
        "plain_torch_round_times": plain_times(n, rounds),
        "setup_s": setup,
        "round_times": times,
        "plan_round_times": plan_times,
        "plan_equals_op_by_op": same,
        "messages_per_worker": counts,
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
