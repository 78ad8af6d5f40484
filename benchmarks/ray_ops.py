"""Workers in processes (Ray): what fedlab adds to a Ray call, and FedAvg rounds per second.

``python -m benchmarks.ray_ops [--quick]`` writes ``benchmarks/results/ray.json``:

- ``op``: one small remote op (``pa + pb``, the result kept) through a Ray worker, vs a
  raw Ray actor call carrying bytes of the same sizes each way (same actor options).
  Target: within 1.3x. Both are timed in alternating repeats; medians compared.
- ``fedavg``: rounds per second with 2, 4 and 8 worker processes (each worker trains
  a copy of the model for a few local steps on its own data, then FedAvg).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

from benchmarks.timing import machine, summary

RESULTS = Path(__file__).resolve().parent / "results" / "ray.json"


class Echo:
    """A raw Ray actor: answers a bytes request with a prebuilt bytes reply."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply

    def recv(self, data: bytes, flag: bool = False) -> bytes:
        """Return the reply (the request is only carried, as fedlab's would be)."""
        return self.reply


def op_ratio(sy, quick: bool) -> dict:
    """fedlab's remote op through a Ray worker vs a raw Ray call of the same sizes."""
    import ray

    from fedlab.transport import wire

    bob = sy.spawn_workers("bob")
    me = sy.local_worker
    pa, pb = torch.randn(10).send(bob), torch.randn(10).send(bob)
    kept = [pa + pb]
    # Capture the exact bytes of one such op, each way, for the raw call to carry.
    carried: dict[str, bytes] = {}
    recv = bob.recv_msg

    def capture(data: bytes) -> bytes:
        carried["request"] = data
        answer = recv(data)
        carried["reply"] = answer
        return answer

    bob.recv_msg = capture
    kept.append(pa + pb)
    del bob.recv_msg
    request = carried["request"]
    reply = wire.frame(carried["reply"], [])
    echo = ray.remote(Echo).options(num_cpus=0, max_concurrency=16).remote(reply)
    ray.get(echo.recv.remote(request))

    def fedlab_op() -> None:
        kept.append(pa + pb)

    def raw_call() -> None:
        ray.get(echo.recv.remote(request, False))

    number, repeats = (50, 3) if quick else (500, 9)
    samples: dict[str, list[float]] = {"fedlab": [], "raw": []}
    for _ in range(repeats):
        for name, fn in (("fedlab", fedlab_op), ("raw", raw_call)):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number)
        kept[1:] = []  # free the results (their deletes are not timed)
    del me
    f, r = summary(samples["fedlab"]), summary(samples["raw"])
    ray.kill(echo)
    return {
        "fedlab_op_s": f,
        "raw_ray_call_s": r,
        "request_bytes": len(request),
        "reply_bytes": len(reply),
        "ratio": f["median"] / r["median"],
        "target": 1.3,
    }


def fedavg_rounds(sy, n_workers: int, quick: bool) -> dict:
    """Rounds per second of FedAvg over ``n_workers`` worker processes."""
    from fedlab.federated.fedavg import aggregate

    ids = [f"w{i}" for i in range(n_workers)]
    workers = sy.spawn_workers(*ids)
    torch.manual_seed(0)
    true_w = torch.randn(10, 1)
    shards = []
    for w in workers:
        x = torch.randn(32, 10)
        shards.append((x.send(w), (x @ true_w).send(w), 32))
    model = nn.Linear(10, 1)
    local_steps = 5

    def one_round() -> None:
        results = []
        start = {k: v.clone() for k, v in model.state_dict().items()}
        for x, y, n in shards:
            model.load_state_dict(start)
            opt = torch.optim.SGD(model.parameters(), lr=0.05)
            model.send(x.location)
            for _ in range(local_steps):
                opt.zero_grad()
                ((model(x) - y) ** 2).mean().backward()
                opt.step()
            model.get()
            results.append(([p.detach().clone() for p in model.parameters()], n))
        with torch.no_grad():
            for p, avg in zip(model.parameters(), aggregate(results)):
                p.copy_(avg)

    one_round()
    rounds, repeats = (2, 2) if quick else (5, 5)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(rounds):
            one_round()
        samples.append((time.perf_counter() - start) / rounds)
    sy.shutdown_workers(*workers)
    s = summary(samples)
    return {"workers": n_workers, "local_steps": local_steps, "round_s": s,
            "rounds_per_s": 1 / s["median"]}  # fmt: skip


def main(argv: list[str]) -> int:
    """Run everything, print and write the JSON."""
    quick = "--quick" in argv
    import fedlab as sy

    torch.set_num_threads(1)
    sy.TorchHook(torch)
    info = machine()
    out = {"machine": info, "op": op_ratio(sy, quick)}
    sy.shutdown_workers("bob")
    out["fedavg"] = [fedavg_rounds(sy, n, quick) for n in (2, 4, 8)]
    sy.shutdown_workers()
    if not quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
