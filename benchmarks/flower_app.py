"""The FedAvg task in Flower's simulation (runs in benchmarks/.flower-venv, never in .venv).

``python -m benchmarks.flower_app MODEL DATA.npz [ROUNDS]`` prints one JSON line like
``benchmarks.fl_run``: per-round times, the initial and final loss. Each client trains
one epoch with the same batches as the other systems and Flower's ``FedAvg`` weights by
example count. The first round includes starting Ray's actors; the parent times the
whole process.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

from benchmarks.task import Config, batch_order, make_model, total_loss


@functools.cache
def _arrays(path: str) -> dict[str, torch.Tensor]:
    d = np.load(path)
    return {k: torch.from_numpy(d[k]) for k in d.files}


def main(argv: list[str]) -> int:
    """Run the simulation and print the measurements."""
    warnings.filterwarnings("ignore")
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    model_name, path = argv[:2]
    cfg = Config(model=model_name, rounds=int(argv[2]) if len(argv) > 2 else Config.rounds)
    data = _arrays(path)
    stamps: list[float] = []
    out: dict = {"system": "flower", "model": model_name}

    client = ClientApp()

    @client.train()
    def train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        c = int(context.node_config["partition-id"])
        conf = msg.content["config"]
        shards = _arrays(str(conf["data"]))
        cx, cy = shards[f"x{c}"], shards[f"y{c}"]
        local = make_model(cfg)
        local.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        opt = torch.optim.SGD(local.parameters(), lr=cfg.lr)
        for _, _, idx in batch_order(len(cx), int(conf["server-round"]) - 1, c, cfg):
            ix = torch.tensor(idx)
            opt.zero_grad()
            nn.functional.cross_entropy(local(cx[ix]), cy[ix]).backward()
            opt.step()
        reply = RecordDict(
            {
                "arrays": ArrayRecord(local.state_dict()),
                "metrics": MetricRecord({"num-examples": len(cx)}),
            }
        )
        return Message(content=reply, reply_to=msg)

    server = ServerApp()

    @server.main()
    def run(grid: Grid, context: Context) -> None:
        model = make_model(cfg)

        def evaluate(rnd: int, arrays: ArrayRecord) -> MetricRecord:
            stamps.append(time.perf_counter())  # called before round 1 and after each round
            if rnd == cfg.rounds:
                model.load_state_dict(arrays.to_torch_state_dict())
                out["final_loss"] = total_loss(model, data["x"], data["y"])
            return MetricRecord({})

        FedAvg(fraction_evaluate=0.0).start(
            grid=grid,
            initial_arrays=ArrayRecord(model.state_dict()),
            num_rounds=cfg.rounds,
            train_config=ConfigRecord({"data": os.path.abspath(path)}),
            evaluate_fn=evaluate,
        )

    logging.getLogger("flwr").setLevel(logging.WARNING)
    # One CPU per client: two clients train at once on two cores (Flower's best case
    # here). Ray's processes inherit OMP_NUM_THREADS=1 and PYTHONPATH from this one.
    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=cfg.clients,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )
    out["round_times"] = [b - a for a, b in itertools.pairwise(stamps)]
    out["initial_loss"] = total_loss(make_model(cfg), data["x"], data["y"])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    # Run main from the importable module, not from __main__: Ray's workers unpickle
    # the client's functions by module name, and they cannot import __main__.
    from benchmarks import flower_app

    sys.exit(flower_app.main(sys.argv[1:]))
