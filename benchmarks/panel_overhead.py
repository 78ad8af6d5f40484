"""How much a displayed live panel slows the garbage-collection lesson's send loop.

The loop sends a small tensor to bob 1000 times, rebinding ``x`` each time, so every
iteration also deletes the previous tensor on bob (about six events per iteration).
We time it with no panel, then with ``sy.watch(me, bob)`` displayed (its widget is
created exactly as a notebook would, and it paints at most four times a second plus
once at the end), alternating the two so machine load affects both alike. We count
this process's CPU time: other programs on a busy machine do not count.

Run: ``.venv/bin/python benchmarks/panel_overhead.py`` (writes
``benchmarks/results/panel_overhead.json``). The requirement is a ratio below 1.2.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

import fedlab as sy
from fedlab.viz import panel as panel_mod

N = 1000
# The loop takes well under 0.1 s now: many alternating repeats make the medians steady
# on a machine that other jobs share (about 10 s in all).
REPEATS = 41


def loop(bob: sy.VirtualWorker) -> float:
    """Seconds for the lesson's loop."""
    start = time.process_time()
    for _ in range(N):
        x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).send(bob)
    del x
    return time.process_time() - start


def with_listener(bob: sy.VirtualWorker) -> float:
    """Seconds for the loop with one subscriber that does nothing: the core's own cost."""
    with sy.subscribe(lambda event: None):
        return loop(bob)


def with_panel(bob: sy.VirtualWorker) -> float:
    """Seconds for the loop while a displayed panel watches, including its final paint."""
    panel = sy.watch(sy.local_worker, bob)
    panel._repr_mimebundle_()  # what displaying it in a notebook does: creates the widget
    start = time.process_time()
    for _ in range(N):
        x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).send(bob)
    del x
    panel.end_cell()  # the cell ends: the final state is painted
    seconds = time.process_time() - start
    panel.close()
    return seconds


def main() -> int:
    hook = sy.TorchHook(torch)
    bob = sy.VirtualWorker(hook, id="bob")
    loop(bob)  # warm up torch, the codec and the widget classes
    with_panel(bob)
    plain, listened, watched = [], [], []
    for _ in range(REPEATS):
        sy.reset()
        plain.append(loop(bob))
        sy.reset()
        listened.append(with_listener(bob))
        sy.reset()
        watched.append(with_panel(bob))
    panel_mod.close_all()
    result = {
        "iterations": N,
        "repeats": REPEATS,
        "median_without_panel_s": round(statistics.median(plain), 4),
        "median_with_panel_s": round(statistics.median(watched), 4),
        # the core publishing events to a subscriber that does nothing, for comparison
        "median_with_empty_subscriber_s": round(statistics.median(listened), 4),
        "ratio": round(statistics.median(watched) / statistics.median(plain), 3),
        # The same ratio within each repeat (its three loops ran back to back), then the
        # median: a second view, less moved by load that drifts while the script runs.
        "paired_ratio": round(statistics.median(w / p for w, p in zip(watched, plain)), 3),
        "empty_subscriber_ratio": round(statistics.median(listened) / statistics.median(plain), 3),
        "paint_interval_s": panel_mod.INTERVAL,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    out = Path(__file__).parent / "results" / "panel_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"send loop x{N}: {result['median_without_panel_s']:.3f} s without the panel, "
        f"{result['median_with_panel_s']:.3f} s with it: ratio {result['ratio']:.2f} "
        f"(limit 1.20; paired {result['paired_ratio']:.2f}, an empty subscriber "
        f"{result['empty_subscriber_ratio']:.2f}) -> {out}"
    )
    return 0 if result["ratio"] < 1.2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
