"""Per-operation cost: a remote op vs the same local op, and send+get vs torch.save/load.

``python -m benchmarks.ops [--quick]`` prints one JSON line. Run in a fresh process
with one torch thread (see ``timing.ENV``); every pair is measured side by side.
"""

from __future__ import annotations

import io
import json
import sys

import torch

from benchmarks.timing import per_call


def measure(quick: bool = False) -> dict:
    """Time the core's basic operations against their plain-torch equivalents."""
    import fedlab as sy

    torch.set_num_threads(1)
    hook = sy.TorchHook(torch)
    bob = sy.VirtualWorker(hook, id="bob")
    a, b = torch.randn(10), torch.randn(10)
    pa, pb = a.send(bob), b.send(bob)
    number, repeats = (100, 3) if quick else (3000, 7)

    kept: list = []

    def remote_kept() -> None:
        kept.append(pa + pb)  # the result stays alive: only the op and its reply

    out = {
        "local_add": per_call(lambda: a + b, number, repeats),
        # The result pointer dies at once, so this includes the Delete message it sends.
        "remote_add": per_call(lambda: pa + pb, number, repeats),
        "remote_add_kept": per_call(remote_kept, number, repeats),
    }
    kept.clear()
    out["messages_per_remote_add"] = _count_messages(lambda: pa + pb)

    big = torch.randn(1_000_000)

    def send_get() -> torch.Tensor:
        return big.send(bob).get()

    def save_load() -> torch.Tensor:
        buf = io.BytesIO()
        torch.save(big, buf)
        buf.seek(0)
        return torch.load(buf, weights_only=True)

    assert torch.equal(send_get(), big) and torch.equal(save_load(), big)
    n_big, r_big = (3, 3) if quick else (20, 7)
    # Interleave the two so that a burst of load on the shared machine hits both.
    sg, sl = [], []
    for _ in range(r_big):
        sg.append(per_call(send_get, n_big, 1)["median"])
        sl.append(per_call(save_load, n_big, 1)["median"])
    from benchmarks.timing import summary

    out["send_get_1M"] = summary(sg)
    out["save_load_1M"] = summary(sl)
    return out


def _count_messages(fn) -> int:
    import fedlab as sy

    seen: list = []
    with sy.subscribe(lambda e: seen.append(e) if getattr(e, "kind", "") != "reply" else None):
        fn()
    return sum(1 for e in seen if type(e).__name__ == "MessageEvent")


def main(argv: list[str]) -> int:
    """Entry point: print the measurements as one JSON line."""
    print(json.dumps(measure("--quick" in argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
