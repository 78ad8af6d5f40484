"""Per-operation cost: a remote op vs the same local op, and send+get vs torch.save/load.

``python -m benchmarks.ops [--quick]`` prints one JSON line. Run in a fresh process
with one torch thread (see ``timing.ENV``); every pair is measured side by side.
"""

from __future__ import annotations

import io
import json
import sys

import torch

from benchmarks.timing import per_call, summary


def measure(quick: bool = False) -> dict:
    """Time the core's basic operations against their plain-torch equivalents."""
    import fedlab as sy

    torch.set_num_threads(1)
    hook = sy.TorchHook(torch)
    bob = sy.VirtualWorker(hook, id="bob")
    a, b = torch.randn(10), torch.randn(10)
    pa, pb = a.send(bob), b.send(bob)
    number, repeats = (100, 3) if quick else (1000, 21)
    kept: list = []

    def remote_kept() -> None:
        kept.append(pa + pb)  # the result stays alive: only the op and its reply

    # Short repeats, the three interleaved, so that the host's slow and fast spells (a
    # 2x swing here, lasting from milliseconds to minutes) hit all three alike; the kept
    # results are freed after each repeat, untimed, so every repeat runs on a store of
    # the same size (a store grown to 20,000 objects made each op about 20% slower).
    samples: dict[str, list[float]] = {"local_add": [], "remote_add": [], "remote_add_kept": []}
    for _ in range(repeats):
        samples["local_add"].append(per_call(lambda: a + b, number, 1)["median"])
        # The result pointer dies at once, so this includes the Delete message it sends.
        samples["remote_add"].append(per_call(lambda: pa + pb, number, 1)["median"])
        samples["remote_add_kept"].append(per_call(remote_kept, number, 1)["median"])
        kept.clear()
    out = {k: summary(v) for k, v in samples.items()}
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
    out["send_get_1M"] = summary(sg)
    out["save_load_1M"] = summary(sl)
    return out


def _count_messages(fn) -> int:
    import fedlab as sy

    seen: list = []
    with sy.subscribe(lambda e: seen.append(e) if type(e).__name__ == "Exchange" else None):
        fn()
    return len(seen)  # one exchange per request (its reply not counted)


def main(argv: list[str]) -> int:
    """Entry point: print the measurements as one JSON line."""
    print(json.dumps(measure("--quick" in argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
