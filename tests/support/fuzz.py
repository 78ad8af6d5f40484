"""A seeded fuzzer for every message a worker decodes, and for the Ray worker's reply frames.

The corpus is recorded, not written by hand: a small course-like program runs (sends,
operations, fetches, moves, chains, plans built, sent and run, searches, deletions) and
every message it causes, of every kind, requests and replies, is encoded again. Each
round takes one of them and mutates it: random bits and bytes, cuts and insertions, a
wrong length, another message's tensor bytes, or (the sharpest) one value deep inside
the decoded document replaced by a value of another type, then packed again. What must
hold, for every mutated input:

* ``serde.decode`` and the Ray frame decoder raise ``SerdeError`` and nothing else;
* a worker answers every input with a reply it can decode (``recv_msg`` never raises);
* a refused message changes no store (ids, values, gradients, what pointers point to);
* a refusal names a fedlab error, or a torch error raised by running an operation or a
  plan (those are the student's errors, travelling back by name), never a ``TypeError``
  or ``KeyError`` from a handler that trusted a field;
* nothing prints "Exception ignored" (checked by the test, through ``capfd``).

``python -m tests.support.fuzz 60000`` runs a large campaign (``make fuzz``); the test
suite runs a small one.
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgpack
import torch

import fedlab as sy
from fedlab import events, serde
from fedlab import messages as m
from fedlab.exceptions import FedlabError, SerdeError
from fedlab.pointer import record_of
from fedlab.transport import wire

# Errors a computation may raise on a worker (the student's own mistakes, by name).
TORCH_ERRORS = {"RuntimeError", "IndexError", "ValueError", "TypeError", "ZeroDivisionError",
                "OverflowError", "NotImplementedError"}  # fmt: skip
COMPUTES = {m.RunOp, m.RunPlan}


def _fedlab_errors() -> set[str]:
    found, todo = set(), [FedlabError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


def world() -> dict[str, sy.VirtualWorker]:
    """Fresh bob, alice and james holding a little of everything a message can refer to."""
    sy.reset()
    ws = {n: sy.VirtualWorker(None, id=n) for n in ("bob", "alice", "james")}
    for w in ws.values():
        w.add_workers(list(ws.values()))
    return ws


def _program(ws: dict[str, sy.VirtualWorker]) -> list:
    """A course-like program; returns what must stay alive while it is recorded."""
    bob, alice = ws["bob"], ws["alice"]
    keep: list[Any] = []
    x = torch.tensor([1.0, 2.0, 3.0]).tag("#x").describe("three numbers").send(bob)
    w = torch.tensor([0.5, -1.0, 2.0], requires_grad=True).send(bob)
    i = torch.tensor([0, 2]).send(bob)
    y = (x * w).sum()
    y.backward()
    keep += [x, w, i, w.grad, x + 1, x[(0,)], x.view(3, 1).mm(torch.ones(1, 2).send(bob))]
    x.add_(1)
    z = torch.tensor([[1, 2], [3, 4]]).send(bob).send(alice)  # a chain: me -> alice -> bob
    keep += [z, z.copy()]
    keep.append(torch.tensor([7.0]).send(alice).move(bob))
    keep.append(torch.tensor([8.0]).send(alice).send(bob).remote_get())
    torch.tensor([9.0]).send(bob).get()
    bob.search("#x")

    @sy.func2plan(args_shape=[(3,)])
    def double(t):
        return t * 2 + 1

    keep.append(double(x))
    sent = double.send(bob)
    keep += [sent, sent(x)]
    try:
        (x + torch.ones(4).send(bob)).get()  # an error reply
    except RuntimeError:
        pass
    temp = torch.tensor([5.0]).send(alice)
    del temp  # a Delete
    alice.clear_objects()
    return keep


def record() -> tuple[list[bytes], list[bytes], set[str]]:
    """The corpus: (encoded messages, Ray frames, the message classes they cover)."""
    seen: list[events.Event] = []
    sub = events.subscribe(seen.append)
    try:
        ws = world()
        keep = _program(ws)
    finally:
        sub.close()
    messages, kinds = [], set()
    for e in sy.log.messages(seen):
        if e.payload is not None:
            try:
                messages.append(bytes(serde.encode(e.sender, e.receiver, e.payload)))
                kinds.add(type(e.payload).__name__)
            except SerdeError:  # (an event for something that never travels encoded)
                pass
    messages.append(bytes(serde.encode("me", "bob", m.ClearObjects("clear_objects"))))
    kinds.add("ClearObjects")  # (sent only to workers in other processes: made here)
    frames = [bytes(wire.frame(messages[i], seen[j : j + 4])) for i, j in
              zip(range(0, len(messages), 7), range(0, len(seen), 5))]  # fmt: skip
    frames.append(bytes(wire.frame(messages[0], [])))
    del keep
    return messages, frames, kinds


# -- mutations ---------------------------------------------------------------------------
INTERESTING = [0, 1, -1, 2**31, 2**63 - 1, -(2**63), 2**64 - 1, 1.5, float("nan"), "", "bob",
               "alice", "nobody", "Tensor.add", "torch.load", b"", b"\x00" * 9, None, True,
               [], [1], {}, {"a": 1}, {1: 2}, [[[[]]]]]  # fmt: skip


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if r < 0.55 or depth > 2:
        return rng.choice(INTERESTING)
    if r < 0.7:
        return msgpack.ExtType(rng.randrange(0, 64), rng.randbytes(rng.randrange(0, 12)))
    if r < 0.85:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(["a", "op", "id"]): _random_value(rng, depth + 1)}


def _nodes(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every node of a decoded document (into lists, dicts and nested records)."""
    found = [path]
    if isinstance(value, list):
        for k, v in enumerate(value):
            found += _nodes(v, (*path, k))
    elif isinstance(value, dict):
        for k, v in value.items():
            found += _nodes(v, (*path, k))
    elif isinstance(value, msgpack.ExtType) and value.code >= 32:  # a record: its fields
        try:
            inner = msgpack.unpackb(value.data, ext_hook=msgpack.ExtType, strict_map_key=False)
        except Exception:
            return found
        found += _nodes(inner, (*path, "record"))
    return found


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if head == "record":
        inner = msgpack.unpackb(value.data, ext_hook=msgpack.ExtType, strict_map_key=False)
        return msgpack.ExtType(value.code, msgpack.packb(_replace(inner, rest, new)))
    value = list(value) if isinstance(value, list) else dict(value)
    value[head] = _replace(value[head], rest, new)
    return value


def _split(data: bytes) -> tuple[bytes, bytes]:
    n = int.from_bytes(data[:4], "little")
    return data[4 : 4 + n], data[4 + n :]


def _join(doc: bytes, tail: bytes) -> bytes:
    head = len(doc).to_bytes(4, "little") + doc
    raw = tail.lstrip(b"\x00") if tail else b""
    return head + bytes(-len(head) % 16 if raw else 0) + raw


def structural(rng: random.Random, data: bytes) -> bytes:
    """One value deep inside the document replaced by a value of another kind."""
    doc, tail = _split(data)
    value = msgpack.unpackb(doc, ext_hook=msgpack.ExtType, strict_map_key=False)
    path = rng.choice(_nodes(value)[1:] or [()])
    new = _replace(value, path, _random_value(rng))
    return _join(msgpack.packb(new), tail)


def mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    """``data`` changed in one of several ways (always deterministic given ``rng``)."""
    how = rng.randrange(8)
    b = bytearray(data)
    if how == 0 and b:  # flip bits
        for _ in range(rng.randint(1, 8)):
            k = rng.randrange(len(b))
            b[k] ^= 1 << rng.randrange(8)
    elif how == 1 and b:  # interesting bytes
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.choice([0, 0xFF, 0x7F, 0x80, 0xC0, 0xC1, 0xD4, 0xDC,
                                                   0xDE, 0x91, 0x9F, 0xA1])  # fmt: skip
    elif how == 2:  # cut
        k = rng.randrange(len(b) + 1)
        del b[k : k + rng.randint(1, 16)]
    elif how == 3:  # insert
        k = rng.randrange(len(b) + 1)
        b[k:k] = rng.randbytes(rng.randint(1, 16))
    elif how == 4:  # a wrong length prefix
        b[:4] = rng.choice([0, 1, len(b), len(b) + 1, 2**31, rng.randrange(len(b) + 2)]).to_bytes(
            4, "little"
        )
    elif how == 5:  # another message's tensor bytes
        return _join(_split(data)[0], _split(rng.choice(others))[1])
    elif how == 6:  # a truncation
        return bytes(b[: rng.randrange(len(b) + 1)])
    else:
        try:
            return structural(rng, data)
        except Exception:  # (a document msgpack cannot even read: mutate the bytes instead)
            return mutate(rng, data, others)
    return bytes(b)


# -- checking ----------------------------------------------------------------------------
def snapshot(ws: dict[str, sy.VirtualWorker]) -> dict:
    """Every store: ids, values, gradients, and where stored pointers point."""
    out = {}
    for name, w in ws.items():
        for k, obj in w.objects().items():
            rec = record_of(obj)
            if rec is not None:
                out[name, k] = ("pointer", rec.location_id, rec.id_at_location)
            elif isinstance(obj, torch.Tensor):
                g = obj.grad if obj.is_leaf else None
                out[name, k] = (obj.dtype, obj.detach().clone(), None if g is None else g.clone())
            else:
                out[name, k] = (type(obj).__name__,)
    return out


def same(a: dict, b: dict) -> bool:
    """Two snapshots hold the same ids and exactly the same values (NaN equal to NaN)."""
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if len(x) != len(y) or x[0] != y[0]:
            return False
        for u, v in zip(x[1:], y[1:]):
            if isinstance(u, torch.Tensor):
                if not (isinstance(v, torch.Tensor) and u.shape == v.shape
                        and torch.equal(u.nan_to_num(), v.nan_to_num())):  # fmt: skip
                    return False
            elif u != v:
                return False
    return True


@dataclass
class Result:
    """What a campaign found: counts, and every broken rule with the input that broke it."""

    rounds: int = 0
    outcomes: Counter = field(default_factory=Counter)
    failures: list[tuple[str, bytes]] = field(default_factory=list)

    def fail(self, why: str, data: bytes) -> None:
        """Remember a broken rule (the first few inputs, to reproduce)."""
        if len(self.failures) < 20:
            self.failures.append((why, data))


def _check_decoders(data: bytes, result: Result) -> None:
    for name, decode in (("serde.decode", serde.decode), ("unframe", wire.unframe)):
        try:
            decode(data)
        except SerdeError:
            pass
        except Exception as e:
            result.fail(f"{name} raised {type(e).__name__}: {e}", data)


def _check_worker(ws: dict, data: bytes, result: Result, allowed: set[str]) -> bool:
    """Feed ``data`` to its receiver; True when it was accepted (the stores may change)."""
    try:
        receiver = serde.decode(data)[1]
        kind = type(serde.decode(data)[2])
    except SerdeError:
        receiver, kind = "bob", None
    w = ws.get(receiver, ws["bob"])
    before = snapshot(ws)
    try:
        reply = serde.decode(w.recv_msg(data), (m.Reply, m.ErrorReply))[2]
    except Exception as e:
        result.fail(f"recv_msg's answer did not decode: {type(e).__name__}: {e}", data)
        return True
    if type(reply) is m.Reply:
        result.outcomes["accepted"] += 1
        return True
    result.outcomes[reply.error] += 1
    if reply.error not in allowed and not (kind in COMPUTES and reply.error in TORCH_ERRORS):
        result.fail(f"refused with {reply.error}: {reply.message}", data)
    if not same(before, snapshot(ws)):
        result.fail(f"a refused message ({reply.error}) changed a store", data)
    return False


def campaign(rounds: int, seed: int = 0) -> Result:
    """Run ``rounds`` mutated inputs (each one through both decoders and a worker)."""
    messages, frames, _ = record()
    allowed = _fedlab_errors()
    rng = random.Random(seed)
    result = Result()
    ws = world()
    accepted = 0
    for _ in range(rounds):
        if rng.random() < 0.15:
            data = mutate(rng, rng.choice(frames), frames)
            _check_decoders(data, result)
        else:
            data = mutate(rng, rng.choice(messages), messages)
            _check_decoders(data, result)
            if _check_worker(ws, data, result, allowed):
                accepted += 1
                if accepted % 100 == 0:  # (accepted messages may store things: start afresh)
                    ws = world()
        result.rounds += 1
    sy.reset()
    return result


def main(argv: list[str]) -> int:
    """``python -m tests.support.fuzz [rounds] [seed]``: a campaign, with a summary."""
    rounds = int(argv[0]) if argv else 20000
    seed = int(argv[1]) if len(argv) > 1 else 0
    sy.TorchHook(torch)
    start = time.perf_counter()
    result = campaign(rounds, seed)
    took = time.perf_counter() - start
    print(f"{result.rounds} mutated inputs (seed {seed}) in {took:.1f} s")
    for outcome, n in result.outcomes.most_common():
        print(f"  {n:7d}  {outcome}")
    for why, data in result.failures:
        print(f"BROKEN: {why}\n  input: {data[:120]!r}")
    print("every rule held" if not result.failures else f"{len(result.failures)} broken")
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
