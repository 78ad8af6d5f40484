"""Decoding fedlab's bytes: the safe half of the codec (see ``fedlab.serde``).

Decoding builds nothing but plain Python values, tensors (dtype, shape and a raw
buffer) and the registered message dataclasses; anything else, and any malformed,
truncated or oversized input, is a ``SerdeError``. It never uses pickle.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import torch

from fedlab.exceptions import SerdeError
from fedlab.serde import (
    _D,
    _I,
    _Q,
    DTYPE_LIST,
    DTYPES,
    HOT,
    MAX_DEPTH,
    MEMORY_FORMATS,
    MESSAGE_CLASSES,
    SHAPES,
    STORED,
    _remember,
    args_struct,
)

_EARLY = "the message ends too early (truncated or corrupted bytes)"


def _truncated() -> SerdeError:
    return SerdeError(_EARLY)


def _text(buf: bytes, pos: int, depth: int = 0) -> tuple[str, int]:
    (n,) = _I.unpack_from(buf, pos)
    pos += 4
    if pos + n > len(buf):
        raise _truncated()
    try:
        return buf[pos : pos + n].decode(), pos + n
    except UnicodeDecodeError as e:
        raise SerdeError("a string in the message is not valid UTF-8") from e


def _dec(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    """Decode one value at ``pos``; return it and the position after it."""
    if depth > MAX_DEPTH:
        raise SerdeError("the message is nested too deeply")
    # One table lookup by tag byte (an IndexError past the end means truncated bytes).
    return _DECODERS[buf[pos]](buf, pos + 1, depth)


def _dec_message(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    cls = MESSAGE_CLASSES.get(buf[pos])
    if cls is None:
        raise SerdeError("the message names an unknown message kind")
    pos += 1
    values = []
    for _ in cls._fields:
        v, pos = _dec(buf, pos, depth + 1)
        values.append(v)
    return cls(*values), pos


def _dec_seq(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    (n,) = _I.unpack_from(buf, pos)
    tag = buf[pos - 1]
    pos += 4
    if n > len(buf) - pos:  # each item takes at least one byte
        raise _truncated()
    items = []
    for _ in range(n):
        v, pos = _dec(buf, pos, depth + 1)
        items.append(v)
    return (tuple(items) if tag == _TUP else items), pos


def _dec_dict(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    (n,) = _I.unpack_from(buf, pos)
    pos += 4
    if n > len(buf) - pos:
        raise _truncated()
    d: dict = {}
    for _ in range(n):
        k, pos = _dec(buf, pos, depth + 1)
        if type(k) not in (str, int):
            raise SerdeError("dictionary keys in a message must be strings or integers")
        d[k], pos = _dec(buf, pos, depth + 1)
    return d, pos


def _dec_bytes(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    (n,) = _I.unpack_from(buf, pos)
    pos += 4
    if pos + n > len(buf):
        raise _truncated()
    return bytes(buf[pos : pos + n]), pos + n


def _dec_ref(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    return HOT["ObjRef"](_Q.unpack_from(buf, pos)[0]), pos + 8


def _dec_stored(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    st = STORED[buf[pos + 8]]
    obj_id, _, *shape, code, flags = st.unpack_from(buf, pos)
    if code >= len(DTYPE_LIST) or flags > 7:
        raise SerdeError("a stored result in the message is malformed")
    rg, leaf, existing = bool(flags & 1), bool(flags & 2), bool(flags & 4)
    return HOT["Stored"](obj_id, tuple(shape), DTYPE_LIST[code], rg, leaf, existing), pos + st.size


_NAMES: dict[bytes, tuple[str, ...]] = {}  # a short head's bytes -> its names, remembered


def _short_head(buf: bytes, pos: int, count: int) -> tuple[tuple[str, ...], int]:
    """Names written by ``serde._short_head``: ``count`` one-byte lengths, then the names."""
    end = pos + count + sum(buf[pos : pos + count])
    raw = buf[pos:end]
    names = _NAMES.get(raw)
    if names is None:
        if end > len(buf) or count > len(raw):
            raise _truncated()
        at = pos + count
        parts = []
        for n in buf[pos : pos + count]:
            try:
                parts.append(buf[at : at + n].decode())
            except UnicodeDecodeError as e:
                raise SerdeError("a name in the message is not valid UTF-8") from e
            at += n
        names = _remember(_NAMES, raw, tuple(parts))
    return names, end


def _dec_envelope(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    (sender, receiver), pos = _short_head(buf, pos, 2)
    msg, pos = _dec(buf, pos, depth + 1)
    return HOT["Envelope"](sender, receiver, msg), pos


# Op heads met so far (see ``oprequest.request_head``) -> what they say, parsed once.
_PLANS: dict[bytes, tuple] = {}


def _request_plan(head: bytes) -> tuple:
    """Parse and check an op head: operation, grad flag, counts, codes and their struct."""
    if len(head) < 4:
        raise _truncated()
    lo, grad, nargs, nkw = head[:4]
    at = 4 + nkw
    names = []
    for n in (lo, *head[4:at]):
        try:
            names.append(head[at : at + n].decode())
        except UnicodeDecodeError as e:
            raise SerdeError("a name in the message is not valid UTF-8") from e
        at += n
    codes = head[at:]
    if grad > 1 or len(codes) != nargs + nkw or len(head) < at:
        raise SerdeError("an operation in the message is malformed")
    st, numbers_only = args_struct(codes)
    op, *kw = names
    return _remember(_PLANS, head, (op, grad == 1, nargs, tuple(kw), codes, st, numbers_only))


def request_values(buf: bytes, pos: int, depth: int = 0) -> tuple[tuple, int]:
    """A request's (names, plan, values) (see ``_request_plan``), references as bare ids."""
    names, pos = _short_head(buf, pos, 2)
    end = pos + 1 + buf[pos]
    if end > len(buf):
        raise _truncated()
    head = buf[pos + 1 : end]
    plan = _PLANS.get(head) or _request_plan(head)
    st = plan[5]
    numbers = st.unpack_from(buf, end)
    pos = end + st.size
    if plan[6]:  # numbers only (the usual case: pointers and numbers)
        return (names, plan, numbers), pos
    values, pos = _flat_values(buf, pos, plan[4], numbers)
    return (names, plan, values), pos


def _dec_request(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    ((sender, receiver), (op, grad, nargs, names, codes, *_), values), pos = request_values(
        buf, pos
    )
    ref = HOT["ObjRef"]
    values = [ref(v) if c == _REF else v for c, v in zip(codes, values)]
    kwargs = dict(zip(names, values[nargs:])) if names else {}
    msg = HOT["RunOp"](op, tuple(values[:nargs]), kwargs, grad)
    return HOT["Envelope"](sender, receiver, msg), pos


def request(data: bytes) -> tuple[tuple, tuple, Any]:
    """A compact operation request (``Q``) as names, plan and values, without message objects.

    Names are (sender, receiver); the plan is (op, grad, nargs, keyword names, codes, ...);
    values follow the codes, references (code ``R``) as bare ids. Malformed: ``SerdeError``.
    """
    return _whole(request_values, data, 1)


_CONSTANTS = {ord("N"): None, ord("T"): True, ord("F"): False}


def _flat_values(buf: bytes, pos: int, codes: bytes, numbers: tuple) -> tuple[list, int]:
    """An operation's values in order: numbers from the struct, constants, short strings."""
    values: list = []
    it = iter(numbers)
    for c in codes:
        if c in _CONSTANTS:
            values.append(_CONSTANTS[c])
        elif c == _TXT:
            n = buf[pos]
            if pos + 1 + n > len(buf):
                raise _truncated()
            try:
                values.append(buf[pos + 1 : pos + 1 + n].decode("ascii"))
            except UnicodeDecodeError as e:
                raise SerdeError("a string in the message is not ASCII") from e
            pos += 1 + n
        else:
            values.append(next(it))
    return values, pos


def _dec_reply(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if buf[pos] == _STO:  # the usual reply, without a lookup
        value, pos = _dec_stored(buf, pos + 1, depth + 1)
    else:
        value, pos = _dec(buf, pos, depth + 1)
    return HOT["Reply"](value), pos


def _dec_delete(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    (obj_id,) = _Q.unpack_from(buf, pos)
    reason, pos = _text(buf, pos + 8)
    return HOT["Delete"](obj_id, reason), pos


_DEVICES = {"cpu": torch.device("cpu")}


def _named(table: dict[str, Any], what: str):
    """A decoder for values travelling by name (dtype, memory format, device): known names only."""

    def dec(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
        name, pos = _text(buf, pos)
        if name not in table:
            raise SerdeError(f"unknown {what} {name!r} in the message")
        return table[name], pos

    return dec


def _dec_size(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    shape, pos = _dec(buf, pos, depth + 1)
    if type(shape) is not tuple or not all(type(n) is int for n in shape):
        raise SerdeError("a torch.Size in the message is malformed")
    return torch.Size(shape), pos


def _dec_slice(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    start, pos = _dec(buf, pos, depth + 1)
    stop, pos = _dec(buf, pos, depth + 1)
    step, pos = _dec(buf, pos, depth + 1)
    return slice(start, stop, step), pos


def _unknown(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    raise SerdeError(f"unknown tag {bytes([buf[pos - 1]])!r} in the message (not fedlab bytes?)")


_ITEMSIZE = {d: torch.empty((), dtype=d).element_size() for d in DTYPES.values()}


# A tensor's head bytes (dtype name, shape, grad flag, byte count) -> what they say, checked.
_TENSOR_PLANS: dict[bytes, tuple[torch.dtype, list[int], bool, int]] = {}


def _tensor_plan(head: bytes) -> tuple[torch.dtype, list[int], bool, int]:
    """Parse and check a tensor's head: its dtype, shape, grad flag and byte count."""
    name, pos = _text(head, 1)
    if name not in DTYPES:
        raise SerdeError(f"unknown dtype {name!r} in the message")
    dtype = DTYPES[name]
    ndim = head[pos]
    shape = list(SHAPES[ndim].unpack_from(head, pos + 1))
    if any(n < 0 for n in shape):
        raise SerdeError("a tensor in the message has a negative dimension")
    pos += 1 + 8 * ndim
    requires_grad = bool(head[pos])
    (nbytes,) = _Q.unpack_from(head, pos + 1)
    numel = 1
    for n in shape:
        numel *= n
    if nbytes != numel * _ITEMSIZE[dtype]:
        raise SerdeError("a tensor's byte count does not match its shape and dtype")
    if requires_grad and not (dtype.is_floating_point or dtype.is_complex):
        raise SerdeError("only floating-point tensors can require gradients")
    return _remember(_TENSOR_PLANS, head, (dtype, shape, requires_grad, nbytes))


def _dec_tensor(buf: bytes, pos: int, depth: int) -> tuple[torch.Tensor, int]:
    if buf[pos] != _TXT:
        raise SerdeError("a tensor in the message is malformed (no dtype name)")
    (n,) = _I.unpack_from(buf, pos + 1)
    at = pos + 5 + n
    if at >= len(buf):
        raise _truncated()
    end = at + 1 + 8 * buf[at] + 9  # the dtype name, then ndim, shape, grad flag, byte count
    if end > len(buf):
        raise _truncated()
    head = buf[pos:end]
    dtype, shape, requires_grad, nbytes = _TENSOR_PLANS.get(head) or _tensor_plan(head)
    pos = end
    if pos + nbytes > len(buf):
        raise _truncated()
    if nbytes == 0:
        t = torch.empty(shape, dtype=dtype)
    else:
        # One copy out of the message buffer, so the tensor owns writable memory.
        raw = bytearray(memoryview(buf)[pos : pos + nbytes])
        t = torch.frombuffer(raw, dtype=dtype)
        if len(shape) != 1:
            t = t.reshape(shape)
    pos += nbytes
    grad, pos = _dec(buf, pos, depth + 1)
    if requires_grad:
        t.requires_grad_(True)
    if grad is not None:
        if not isinstance(grad, torch.Tensor) or grad.shape != t.shape:
            raise SerdeError("a tensor's gradient in the message has the wrong shape")
        t.grad = grad
    return t, pos


_TUP, _REF, _STO, _TXT = ord("t"), ord("R"), ord("S"), ord("s")
_DECODERS = [_unknown] * 256
for _tag, _fn in {
    "N": lambda buf, pos, depth: (None, pos),
    "T": lambda buf, pos, depth: (True, pos),
    "F": lambda buf, pos, depth: (False, pos),
    "i": lambda buf, pos, depth: (_Q.unpack_from(buf, pos)[0], pos + 8),
    "f": lambda buf, pos, depth: (_D.unpack_from(buf, pos)[0], pos + 8),
    "s": _text,
    "b": _dec_bytes,
    "t": _dec_seq,
    "l": _dec_seq,
    "d": _dec_dict,
    "M": _dec_message,
    "X": _dec_tensor,
    "R": _dec_ref,
    "S": _dec_stored,
    "E": _dec_envelope,
    "Q": _dec_request,
    "P": _dec_reply,
    "K": _dec_delete,
    "z": _dec_size,
    "y": _named(DTYPES, "dtype"),
    "c": _dec_slice,
    "e": lambda buf, pos, depth: (Ellipsis, pos),
    "m": _named(MEMORY_FORMATS, "memory format"),
    "v": _named(_DEVICES, "device (workers compute on the CPU only)"),
}.items():
    _DECODERS[ord(_tag)] = _fn


def decode(data: bytes) -> Any:
    """Decode bytes made by ``encode``; malformed bytes raise ``SerdeError``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SerdeError(f"expected bytes, got {type(data).__name__}")
    return _whole(_dec, bytes(data) if not isinstance(data, bytes) else data, 0)


def delete_request(data: bytes) -> Any:
    """A ``Delete`` read from its compact envelope, without the envelope; None for others."""
    if type(data) is not bytes or data[:1] != b"E" or len(data) < 3:
        return None
    at = 3 + data[1] + data[2]
    if data[at : at + 1] != b"K":
        return None
    # The names lie before the K, so they are whole: this can only refuse bad UTF-8.
    _short_head(data, 1, 2)  # (checks the names, as ``decode`` would)
    return _whole(_dec_delete, data, at + 1)


def stored_reply_value(data: bytes) -> Any:
    """The ``Stored`` of a stored-result reply (bytes starting ``PS``), without a ``Reply``."""
    return _whole(_dec_stored, data, 2)


def _whole(read: Callable, buf: bytes, pos: int) -> Any:
    """What the reader ``read`` finds at ``pos``, which must end ``buf``; else ``SerdeError``."""
    try:
        value, end = read(buf, pos, 0)
    except _READ_ERRORS as e:
        raise _read_error(e) from e
    if end != len(buf):
        raise SerdeError("there are stray bytes after the end of the message")
    return value


# What reading malformed bytes can raise besides SerdeError: each becomes a SerdeError.
_READ_ERRORS = (IndexError, struct.error, TypeError, ValueError, RuntimeError, OverflowError)


def _read_error(e: Exception) -> SerdeError:
    if isinstance(e, IndexError):  # a read past the end
        return SerdeError(_EARLY)
    return SerdeError(f"the bytes are not a well-formed fedlab message ({e})")
