"""Secure aggregation against plain FedAvg, and shared matmul against plain torch.

``python -m benchmarks.secure [--quick]`` prints one JSON line (and saves
``benchmarks/results/secure.json``). Everything is measured side by side in this one
process, rounds interleaved, so that a burst of load on the shared machine hits every
system alike; we report medians.

FedAvg: the digits task of ``benchmarks.task`` (4 clients, one local epoch), the model
sent to each client and trained there operation by operation (as the course writes
it), or with the local epoch as one plan. Then the updates are averaged:

- ``plain``: every trained model comes home (``.get()``) and me averages them: the
  server sees every update;
- ``secure``: each parameter of each client is weighted, encoded and shared among the
  4 clients where it lives, the shared values are added, and only the sum is
  decrypted: PySyft Part 10's way, one sharing per parameter;
- ``secure-flat``: the same, with each client's parameters joined into one vector on
  the client first: one sharing per client.

All systems do the same SGD steps; the secure ones end within the encoding's precision
of the plain one (checked). Matmul: an n x n fixed-precision shared product (a Beaver
triple and a truncation, two parties and a crypto provider, in-process) against the
same float product in plain torch.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

from benchmarks.fl_run import local_epoch
from benchmarks.task import Config, batch_order, load_digits_arrays, make_model, split, total_loss
from benchmarks.timing import ROOT, per_call

RESULT = ROOT / "benchmarks" / "results" / "secure.json"


def _hook():
    import fedlab as sy

    try:
        return sy.local_worker.hook
    except RuntimeError:  # not hooked yet
        return sy.TorchHook(torch)


def _setup(cfg: Config):
    import fedlab as sy

    torch.set_num_threads(1)
    hook = _hook()
    clients = [sy.VirtualWorker(hook, id=f"client{i}") for i in range(cfg.clients)]
    provider = sy.VirtualWorker(hook, id="provider")
    x, y = load_digits_arrays()
    shards = split(x, y, cfg)
    data = [(torch.from_numpy(cx).send(w), torch.from_numpy(cy).send(w), len(cx))
            for w, (cx, cy) in zip(clients, shards)]  # fmt: skip
    return clients, provider, data, torch.from_numpy(x), torch.from_numpy(y)


def _train_op_by_op(model, rnd, c, w, px, py, n, cfg):
    return list(local_epoch(model, rnd, c, w, px, py, n, cfg).parameters())  # (left on w)


def _trainer_with_plans(cfg: Config):
    from benchmarks.fl_run import _epoch_plan  # the local epoch as one plan, as in fl_run

    plans: dict[int, object] = {}

    def train(model, rnd, c, w, px, py, n, cfg):
        if c not in plans:
            plans[c] = _epoch_plan(model, n, cfg)
        params = [p.detach().clone().requires_grad_(True).send(w) for p in model.parameters()]
        order = [i for _, _, idx in batch_order(n, rnd, c, cfg) for i in idx]
        plans[c](*params, px, py, torch.tensor(order).send(w))
        return params

    return train


def _plain(trained, weights, clients, provider):
    """The trusted-server way: every update comes home, me averages."""
    homes = [[p.get().detach() for p in params] for params in trained]
    return [sum(h[i] * wt for h, wt in zip(homes, weights)) for i in range(len(homes[0]))]


def _secure(trained, weights, clients, provider):
    """One sharing per parameter and client, where the parameter lives (PySyft Part 10)."""
    out = []
    for i in range(len(trained[0])):
        shared = [
            (params[i] * wt).fix_precision().share(*clients, crypto_provider=provider).get()
            for params, wt in zip(trained, weights)
        ]
        total = shared[0]
        for s in shared[1:]:
            total = total + s
        out.append(total.get().float_precision())
    return out


def _secure_flat(trained, weights, clients, provider):
    """One sharing per client: its parameters joined into one vector on the client first."""
    shapes = [p.shape for p in trained[0]]
    shared = []
    for params, wt in zip(trained, weights):
        flat = torch.cat([p.reshape(-1) for p in params]) * wt
        shared.append(flat.fix_precision().share(*clients, crypto_provider=provider).get())
    total = shared[0]
    for s in shared[1:]:
        total = total + s
    flat = total.get().float_precision()
    return [t.reshape(s) for t, s in zip(flat.split([s.numel() for s in shapes]), shapes)]


AGGREGATE = {"plain": _plain, "secure": _secure, "secure-flat": _secure_flat}


def fedavg(cfg: Config, with_plans: bool) -> dict:
    """R rounds of each aggregation, interleaved round by round; times and final models."""
    clients, provider, data, x, y = _setup(cfg)
    train = _trainer_with_plans(cfg) if with_plans else _train_op_by_op
    models = {name: make_model(cfg) for name in AGGREGATE}
    total = sum(n for _, _, n in data)
    weights = [n / total for _, _, n in data]
    times: dict[str, list[float]] = {name: [] for name in AGGREGATE}
    train_times: dict[str, list[float]] = {name: [] for name in AGGREGATE}
    for rnd in range(cfg.rounds):
        for name, aggregate in AGGREGATE.items():
            model = models[name]
            start = time.perf_counter()
            trained = [train(model, rnd, c, w, px, py, n, cfg)
                       for c, (w, (px, py, n)) in enumerate(zip(clients, data))]  # fmt: skip
            mid = time.perf_counter()
            new = aggregate(trained, weights, clients, provider)
            with torch.no_grad():
                for p, v in zip(model.parameters(), new):
                    p.copy_(v)
            del trained
            times[name].append(time.perf_counter() - start)
            train_times[name].append(mid - start)
    left = sum(len(w._objects) for w in clients) - 2 * len(clients) + len(provider._objects)
    plain = list(models["plain"].parameters())
    return {
        "systems": {
            name: {
                "later_round_s": statistics.median(times[name][1:] or times[name]),
                "later_training_s": statistics.median(train_times[name][1:] or train_times[name]),
                "final_loss": total_loss(models[name], x, y),
                "max_param_diff_from_plain": max(
                    float((a - b).detach().abs().max())
                    for a, b in zip(models[name].parameters(), plain)
                ),
            }
            for name in AGGREGATE
        },
        "objects_left_behind": left,
    }


def matmul(sizes: list[int], repeats: int) -> list[dict]:
    """An n x n fixed-precision shared matmul against the float one in plain torch."""
    import fedlab as sy

    hook = _hook()
    bob, alice, james = (sy.VirtualWorker(hook, id=i) for i in ("mm_bob", "mm_alice", "mm_james"))
    out = []
    for n in sizes:
        torch.manual_seed(n)
        a, b = torch.randn(n, n), torch.randn(n, n)
        plain = per_call(lambda a=a, b=b: a @ b, number=50, repeats=repeats)
        sa = a.fix_prec().share(bob, alice, crypto_provider=james)
        sb = b.fix_prec().share(bob, alice, crypto_provider=james)
        shared = per_call(lambda sa=sa, sb=sb: sa @ sb, number=1, repeats=repeats)
        with sy.trace() as t:
            result = sa @ sb
        error = float((result.get().float_prec() - a @ b).abs().max())
        out.append({
            "n": n,
            "torch_s": plain["median"],
            "shared_s": shared["median"],
            "ratio": shared["median"] / plain["median"],
            "shared_mac_per_s": n**3 / shared["median"],
            "torch_mac_per_s": n**3 / plain["median"],
            "messages": len(t),
            "max_error": error,
        })  # fmt: skip
    return out


def figure(result: dict, out) -> object:
    """secure.png: a round's time per aggregation, and shared matmul against plain torch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    names = list(result["fedavg"]["systems"])
    width = 0.38
    for k, (key, label) in enumerate([("fedavg", "training op by op"),
                                      ("fedavg_with_plans", "training as a plan")]):  # fmt: skip
        s = result[key]["systems"]
        xs = [i + k * width for i in range(len(names))]
        bars = axes[0].bar(xs, [s[n]["later_round_s"] for n in names], width, label=label)
        axes[0].bar_label(bars, fmt="%.3f", fontsize=7)
    axes[0].set_xticks([i + width / 2 for i in range(len(names))], names)
    axes[0].set_title("one FedAvg round, 4 clients, digits MLP (s)")
    axes[0].legend(fontsize=8)
    mm = result["matmul"]
    axes[1].loglog([m["n"] for m in mm], [m["shared_s"] for m in mm], "o-", label="shared")
    axes[1].loglog([m["n"] for m in mm], [m["torch_s"] for m in mm], "s--", label="plain torch")
    axes[1].set(title="n x n matmul (s): fixed precision, shared", xlabel="n")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    path = out / "secure.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str]) -> int:
    """Run both measurements and print (and save) one JSON line."""
    quick = "--quick" in argv
    cfg = Config(model="mlp", rounds=2 if quick else 6)
    result = {
        "config": cfg.__dict__,
        "fedavg": fedavg(cfg, with_plans=False),
        "fedavg_with_plans": fedavg(cfg, with_plans=True),
        "matmul": matmul([16] if quick else [32, 128, 256], 3 if quick else 5),
    }
    for key in ("fedavg", "fedavg_with_plans"):
        s = result[key]["systems"]
        result[key]["ratios"] = {
            name: s[name]["later_round_s"] / s["plain"]["later_round_s"] for name in s
        }
    if not quick:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
