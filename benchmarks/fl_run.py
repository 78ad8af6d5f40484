"""Run the FedAvg task once with one system, in a process of its own; print JSON.

``python -m benchmarks.fl_run SYSTEM MODEL DATA.npz [ROUNDS]`` with SYSTEM one of
``torch`` (plain torch in one process, no workers: the same SGD steps and the same
averaging on local tensors; it never imports fedlab), ``fedlab`` (VirtualWorkers in
this process), ``fedlab-ray`` (fedlab's Ray workers, when that transport exists), and
``fedlab-plan`` / ``fedlab-ray-plan``: the same, with each client's local epoch sent as
one plan instead of operation by operation.
The parent measures the whole process; this prints per-round times and the losses.
"""

from __future__ import annotations

import copy
import json
import sys
import time

import numpy as np
import torch
from torch import nn

from benchmarks.task import Config, batch_order, make_model, total_loss


def _load(path: str, cfg: Config):
    d = np.load(path)
    shards = [
        (torch.from_numpy(d[f"x{i}"]), torch.from_numpy(d[f"y{i}"])) for i in range(cfg.clients)
    ]
    return torch.from_numpy(d["x"]), torch.from_numpy(d["y"]), shards


def _weighted_mean(results: list[tuple[list[torch.Tensor], int]]) -> list[torch.Tensor]:
    total = sum(n for _, n in results)
    return [
        sum(params[i] * (n / total) for params, n in results) for i in range(len(results[0][0]))
    ]


def _load_params(model: nn.Module, values: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip(model.parameters(), values):
            p.copy_(v)


def run_torch(cfg: Config, x, y, shards) -> tuple[list[float], nn.Module]:
    """Plain torch: every client's local epoch on local tensors, then the weighted mean."""
    torch.set_num_threads(1)
    model = make_model(cfg)
    times = []
    for rnd in range(cfg.rounds):
        start = time.perf_counter()
        results = []
        for c, (cx, cy) in enumerate(shards):
            local = copy.deepcopy(model)
            opt = torch.optim.SGD(local.parameters(), lr=cfg.lr)
            for _, _, idx in batch_order(len(cx), rnd, c, cfg):
                ix = torch.tensor(idx)
                opt.zero_grad()
                nn.functional.cross_entropy(local(cx[ix]), cy[ix]).backward()
                opt.step()
            results.append(([p.detach() for p in local.parameters()], len(cx)))
        _load_params(model, _weighted_mean(results))
        times.append(time.perf_counter() - start)
    return times, model


def _fedlab_rounds(cfg: Config, shards, workers, train) -> tuple[list[float], nn.Module]:
    """FedAvg with the data on ``workers``; ``train(model, rnd, c, w, px, py, n)`` sends the
    model to client ``c``, trains it there for one local epoch and returns its parameters."""
    import fedlab as sy
    from fedlab.federated.fedavg import aggregate

    torch.set_num_threads(1)
    hook = sy.TorchHook(torch)
    if workers is None:
        workers = [sy.VirtualWorker(hook, id=f"client{i}") for i in range(cfg.clients)]
    data = [(cx.send(w), cy.send(w), len(cx)) for w, (cx, cy) in zip(workers, shards)]
    model = make_model(cfg)
    times = []
    for rnd in range(cfg.rounds):
        start = time.perf_counter()
        results = []
        for c, (w, (px, py, n)) in enumerate(zip(workers, data)):
            results.append((train(model, rnd, c, w, px, py, n), n))
        _load_params(model, aggregate(results))
        times.append(time.perf_counter() - start)
    return times, model


def _on_ray(run):
    """``run`` with its clients on workers in Ray processes."""

    def on_ray(cfg: Config, x, y, shards) -> tuple[list[float], nn.Module]:
        import fedlab as sy

        workers = sy.spawn_workers(*[f"client{i}" for i in range(cfg.clients)])
        try:
            return run(cfg, x, y, shards, workers=workers)
        finally:
            sy.shutdown_workers()

    on_ray.__doc__ = f"``{run.__name__}`` on workers in Ray processes."
    return on_ray


def local_epoch(model: nn.Module, rnd: int, c: int, w, px, py, n: int, cfg: Config) -> nn.Module:
    """Client ``c``'s epoch of round ``rnd`` on worker ``w``, op by op; the copy stays on ``w``."""
    local = model.copy().send(w)
    opt = torch.optim.SGD(local.parameters(), lr=cfg.lr)
    batches = batch_order(n, rnd, c, cfg)
    perm = torch.tensor([i for _, _, idx in batches for i in idx]).send(w)
    for s, e, _ in batches:
        ix = perm[s:e]
        opt.zero_grad()
        nn.functional.cross_entropy(local(px[ix]), py[ix]).backward()
        opt.step()
    return local


def run_fedlab(cfg: Config, x, y, shards, workers=None) -> tuple[list[float], nn.Module]:
    """fedlab: data lives on the clients; each round the model travels to each of them."""

    def train(model, rnd, c, w, px, py, n):
        local = local_epoch(model, rnd, c, w, px, py, n, cfg)
        local.get()
        return [p.detach() for p in local.parameters()]

    return _fedlab_rounds(cfg, shards, workers, train)


def _forward(layers: list[nn.Module], params: list, h: torch.Tensor) -> torch.Tensor:
    """The model's forward pass as a function of its parameters (Linear and ReLU layers)."""
    it = iter(params)
    for layer in layers:
        if isinstance(layer, nn.Linear):
            h = nn.functional.linear(h, next(it), next(it))
        elif isinstance(layer, nn.ReLU):
            h = nn.functional.relu(h)
        else:
            raise TypeError(f"no functional form for {type(layer).__name__}")
    return h


def _epoch_plan(model: nn.Module, n: int, cfg: Config):
    """One client's local epoch as a plan: parameters, data and this round's order in."""
    import fedlab as sy

    layers = list(model) if isinstance(model, nn.Sequential) else [model]
    count = len(list(model.parameters()))
    bounds = [(s, e) for s, e, _ in batch_order(n, 0, 0, cfg)]  # (the same every round)

    def local_epoch(*args):
        params, (px, py, perm) = list(args[:count]), args[count:]
        opt = torch.optim.SGD(params, lr=cfg.lr)
        for s, e in bounds:
            ix = perm[s:e]
            opt.zero_grad()
            nn.functional.cross_entropy(_forward(layers, params, px[ix]), py[ix]).backward()
            opt.step()

    return sy.Plan(local_epoch)


def run_fedlab_plan(cfg: Config, x, y, shards, workers=None) -> tuple[list[float], nn.Module]:
    """``run_fedlab`` with each local epoch as a plan: a few messages per client and round."""
    plans: dict[int, object] = {}  # client -> its plan, built on its first call

    def train(model, rnd, c, w, px, py, n):
        if c not in plans:
            plans[c] = _epoch_plan(model, n, cfg)
        plan = plans[c]
        params = [p.send(w) for p in model.parameters()]
        order = [i for _, _, idx in batch_order(n, rnd, c, cfg) for i in idx]
        plan(*params, px, py, torch.tensor(order).send(w))
        return [p.get().detach() for p in params]

    return _fedlab_rounds(cfg, shards, workers, train)


run_fedlab_ray = _on_ray(run_fedlab)
run_fedlab_ray_plan = _on_ray(run_fedlab_plan)


SYSTEMS = {
    "torch": run_torch,
    "fedlab": run_fedlab,
    "fedlab-ray": run_fedlab_ray,
    "fedlab-plan": run_fedlab_plan,
    "fedlab-ray-plan": run_fedlab_ray_plan,
}


def main(argv: list[str]) -> int:
    """Entry point: run one system and print one JSON line."""
    system, model, path = argv[:3]
    cfg = Config(model=model, rounds=int(argv[3]) if len(argv) > 3 else Config.rounds)
    x, y, shards = _load(path, cfg)
    init_loss = total_loss(make_model(cfg), x, y)
    times, final = SYSTEMS[system](cfg, x, y, shards)
    result = {
        "system": system,
        "model": model,
        "round_times": times,
        "initial_loss": init_loss,
        "final_loss": total_loss(final, x, y),
        "steps": sum(len(batch_order(len(cx), 0, 0, cfg)) for cx, _ in shards) * cfg.rounds,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
