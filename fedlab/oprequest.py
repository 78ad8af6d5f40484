"""The compact operation request: how ``serde`` writes an envelope around a flat ``RunOp``.

Decoding it is ``fedlab.decoding.request``; both sides remember each head they meet.
"""

from __future__ import annotations

import struct
from typing import Any

from fedlab.serde import _HEADS, HOT, _remember, _short_head, args_struct


def _flat(values: Any) -> tuple[bytes, list, bytes] | None:
    """An operation's flat values as (codes, numbers, texts); None if any value is not flat."""
    codes = bytearray()
    numbers: list = []
    texts = bytearray()
    ref = HOT["ObjRef"]
    for a in values:
        t = type(a)
        if t is ref and type(a.id) is int:
            codes.append(82)  # R
            numbers.append(a.id)
        elif t is int:
            codes.append(105)  # i
            numbers.append(a)
        elif t is float:
            codes.append(102)  # f
            numbers.append(a)
        elif a is None:
            codes.append(78)  # N
        elif t is bool:
            codes.append(84 if a else 70)  # T, F
        elif t is str and len(a) < 64 and a.isascii():
            codes.append(115)  # s
            texts.append(len(a))
            texts += a.encode()
        else:
            return None
    return bytes(codes), numbers, bytes(texts)


# An operation request (an envelope around a RunOp with flat values) travels as
#   Q, the names' head (as an envelope's: sender, receiver), the op head's length,
#   the op head, the struct-packed numbers, the short strings
# where the op head (operation, grad flag, counts, keyword names and value codes)
# repeats from call to call: both sides remember each head they meet. (Names and
# operations are remembered apart: with a thousand workers, names are many, ops few.)
_REQUESTS: dict[tuple, tuple[bytes, struct.Struct]] = {}


def request_head(op: str, grad: bool, nargs: int, names: tuple, codes: bytes) -> bytes | None:
    """The op head of a compact request (after its length byte); None if it does not fit."""
    if not all(type(n) is str for n in (op, *names)):
        return None
    raw = [n.encode() for n in (op, *names)]
    counts = [len(raw[0]), grad, nargs, len(names)] + [len(b) for b in raw[1:]]
    if max(counts) > 255:
        return None
    head = bytes(counts) + b"".join(raw) + codes
    return head if len(head) <= 255 else None


def _enc_request(sender: Any, receiver: Any, v: Any, out: bytearray) -> bool:
    args, kwargs, grad = v.args, v.kwargs, v.grad_enabled
    if type(args) is not tuple or type(kwargs) is not dict or type(grad) is not bool:
        return False
    names = _HEADS.get((sender, receiver))
    if names is None:
        names = _short_head(b"E", sender, receiver)
        if names is None:
            return False
        _remember(_HEADS, (sender, receiver), names)
    flat = _flat((*args, *kwargs.values()) if kwargs else args)
    if flat is None:
        return False
    codes, numbers, texts = flat
    key = (v.op, grad, len(args), tuple(kwargs), codes)
    plan = _REQUESTS.get(key)
    if plan is None:
        head = request_head(v.op, grad, len(args), tuple(kwargs), codes)
        if head is None:
            return False
        plan = _remember(_REQUESTS, key, (bytes([len(head)]) + head, args_struct(codes)[0]))
    try:
        packed = plan[1].pack(*numbers)
    except struct.error:  # an integer out of range
        return False
    out += b"Q"
    out += memoryview(names)[1:]  # (the envelope's head without its tag)
    out += plan[0]
    out += packed
    out += texts
    return True
