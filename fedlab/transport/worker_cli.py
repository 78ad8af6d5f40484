"""``fedlab worker --id bob [--data FILE] [--address ADDR]``: serve a worker on this machine.

Run it on a data owner's machine after ``ray start --address=...`` (or ``--head``):
it joins the Ray cluster, starts the worker ``bob`` pinned to this machine, loads the
data file here (it never leaves unless the worker is asked for it), and serves until
Ctrl-C. In the notebook, ``bob = sy.connect("bob")`` and ``bob.data()`` give pointers.

The data file is a ``.pt`` file written with ``torch.save`` holding a tensor or a dict
of named tensors; it is read with ``torch.load(weights_only=True)`` (no code runs).
Its tensors take ids 1, 2, ... in bob's store, in the file's order, again after resets.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from fedlab.exceptions import FedlabError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``fedlab worker`` options."""
    parser.add_argument("--id", required=True, help="the worker's name, e.g. bob")
    parser.add_argument("--data", help="a .pt file of tensors (torch.save) this worker holds")
    parser.add_argument(
        "--address",
        default="auto",
        help="the Ray cluster to join (default: the one `ray start` joined on this machine)",
    )


def run(args: argparse.Namespace) -> int:
    """Start the worker and serve until interrupted; 0 on a clean stop, 1 on an error."""
    from fedlab.transport import actor as worker_actor
    from fedlab.transport import ray as transport
    from fedlab.transport.proxy import RayWorker

    try:
        data_path = None
        if args.data:
            data_path = os.path.abspath(args.data)
            items = worker_actor.load_data(data_path)  # fail here, before joining anything
            for i, (name, t) in enumerate(items, start=1):
                print(f"  {name}: {tuple(t.shape)} {t.dtype} -> {args.id}:{i}", flush=True)
        ray = transport.ensure_runtime(args.address)
        node = ray.get_runtime_context().get_node_id()
        handle = transport.create_actor(args.id, data_path, node_id=node)
        w = RayWorker(None, id=args.id, actor=handle, timeout=transport.START_TIMEOUT)
        pid, _ = w.ping()
    except (FedlabError, OSError, ValueError) as e:
        print(f"fedlab worker: {e}", file=sys.stderr, flush=True)
        return 1
    print(f"worker {args.id} is ready on this machine (process {pid}); Ctrl-C stops it",
          flush=True)  # fmt: skip
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    died = False
    while not stop.wait(2.0):
        try:
            w.ping(timeout=30.0)
        except FedlabError as e:
            print(f"fedlab worker: {e}", file=sys.stderr, flush=True)
            died = True
            break
    ray.kill(handle, no_restart=True)
    ray.shutdown()
    print(f"worker {args.id} stopped", flush=True)
    return 1 if died else 0
