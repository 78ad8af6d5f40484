"""The compact operation request: how ``serde`` writes an envelope around a flat ``RunOp``.

Decoding it is ``fedlab.decoding.request``; both sides remember each head they meet.
"""

from __future__ import annotations

import struct
from typing import Any

from fedlab.serde import HOT, _remember, _short_head, args_struct


def flat_value(a: Any, codes: bytearray, numbers: list, texts: bytearray) -> bool:
    """Append a plain value's code (and its number or text); False if it has no code."""
    t = type(a)
    if t is int or t is float:
        codes.append(105 if t is int else 102)  # i, f
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
        return False
    return True


def _flat(values: Any) -> tuple[bytearray, list, bytearray] | None:
    """A ``RunOp``'s flat values as (codes, numbers, texts); None if any value is not flat."""
    codes, numbers, texts = bytearray(), [], bytearray()
    ref = HOT["ObjRef"]
    for a in values:
        if type(a) is ref and type(a.id) is int:
            codes.append(82)  # R
            numbers.append(a.id)
        elif not flat_value(a, codes, numbers, texts):
            return None
    return codes, numbers, texts


# An operation request (an envelope around a RunOp with flat values) travels as
#   Q, the names' head (as an envelope's: sender, receiver), the op head's length,
#   the op head, the struct-packed numbers, the short strings
# where the op head (operation, grad flag, counts, keyword names and value codes)
# repeats from call to call: both sides remember each head they meet. (Names and
# operations are remembered apart: with a thousand workers, names are many, ops few.)
_REQUESTS: dict[tuple, tuple[bytes, struct.Struct]] = {}
_QHEADS: dict[tuple, bytes] = {}  # (sender, receiver) -> Q and their names' head


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


def encode_op(
    sender: str,
    receiver: str,
    op: str,
    grad: bool,
    nargs: int,
    kwnames: tuple,
    codes: bytes | bytearray,
    numbers: list,
    texts: bytes | bytearray,
) -> bytes | None:
    """A whole compact request from flat values (see ``_flat``); None if it does not fit."""
    names = _QHEADS.get((sender, receiver))
    if names is None:
        names = _short_head(b"Q", sender, receiver)
        if names is None:
            return None
        _remember(_QHEADS, (sender, receiver), names)
    key = (op, grad, nargs, kwnames, bytes(codes))
    plan = _REQUESTS.get(key)
    if plan is None:
        head = request_head(op, grad, nargs, kwnames, key[4])
        if head is None:
            return None
        plan = _remember(_REQUESTS, key, (bytes([len(head)]) + head, args_struct(key[4])[0]))
    try:
        packed = plan[1].pack(*numbers)
    except struct.error:  # an integer out of range
        return None
    return b"".join((names, plan[0], packed, texts))


def _enc_request(sender: Any, receiver: Any, v: Any, out: bytearray) -> bool:
    args, kwargs, grad = v.args, v.kwargs, v.grad_enabled
    if type(args) is not tuple or type(kwargs) is not dict or type(grad) is not bool:
        return False
    if type(v.op) is not str:
        return False
    flat = _flat((*args, *kwargs.values()) if kwargs else args)
    if flat is None:
        return False
    data = encode_op(sender, receiver, v.op, grad, len(args), tuple(kwargs), *flat)
    if data is None:
        return False
    out += data
    return True
