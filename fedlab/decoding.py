"""Decoding fedlab's bytes: the safe half of the codec (see ``fedlab.serde``).

Decoding builds nothing but plain Python values, tensors (dtype, shape and a raw
buffer) and the registered message dataclasses; anything else, and any malformed,
truncated or oversized input, is a ``SerdeError``. It never uses pickle.
"""

from __future__ import annotations

import struct
from typing import Any

import torch

from fedlab.exceptions import SerdeError
from fedlab.serde import (
    _D,
    _I,
    _Q,
    _QB,
    DTYPE_LIST,
    DTYPES,
    HOT,
    MAX_DEPTH,
    MEMORY_FORMATS,
    MESSAGE_CLASSES,
    SHAPES,
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
    obj_id, ndim = _QB.unpack_from(buf, pos)
    pos += _QB.size
    shape = SHAPES[ndim].unpack_from(buf, pos)
    pos += 8 * ndim
    code, flags = buf[pos], buf[pos + 1]
    if code >= len(DTYPE_LIST) or flags > 7:
        raise SerdeError("a stored result in the message is malformed")
    rg, leaf, existing = bool(flags & 1), bool(flags & 2), bool(flags & 4)
    return HOT["Stored"](obj_id, shape, DTYPE_LIST[code], rg, leaf, existing), pos + 2


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
    if buf[pos] == _OP:  # the usual message, without a lookup
        msg, pos = _dec_runop(buf, pos + 1, depth + 1)
    else:
        msg, pos = _dec(buf, pos, depth + 1)
    return HOT["Envelope"](sender, receiver, msg), pos


def _dec_runop(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    (op,), pos = _short_head(buf, pos, 1)
    grad, nargs, nkw = buf[pos], buf[pos + 1], buf[pos + 2]
    pos += 3
    names: tuple[str, ...] = ()
    if nkw:
        names, pos = _short_head(buf, pos, nkw)
    n = nargs + nkw
    codes = buf[pos : pos + n]
    if grad > 1 or len(codes) != n:
        raise SerdeError("an operation in the message is malformed")
    st, numbers_only = args_struct(codes)
    numbers = st.unpack_from(buf, pos + n)
    pos += n + st.size
    ref = HOT["ObjRef"]
    if numbers_only:  # the usual case: pointers and numbers
        values = [ref(v) if c == _REF else v for c, v in zip(codes, numbers)]
    else:
        values, pos = _flat_values(buf, pos, codes, numbers)
    kwargs = dict(zip(names, values[nargs:])) if nkw else {}
    return HOT["RunOp"](op, tuple(values[:nargs]), kwargs, grad == 1), pos


_CONSTANTS = {ord("N"): None, ord("T"): True, ord("F"): False}


def _flat_values(buf: bytes, pos: int, codes: bytes, numbers: tuple) -> tuple[list, int]:
    """An operation's values in order: numbers from the struct, constants, short strings."""
    ref = HOT["ObjRef"]
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
            v = next(it)
            values.append(ref(v) if c == _REF else v)
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


def _dec_tensor(buf: bytes, pos: int, depth: int) -> tuple[torch.Tensor, int]:
    name, pos = _dec(buf, pos, depth + 1)
    if name not in DTYPES:
        raise SerdeError(f"unknown dtype {name!r} in the message")
    dtype = DTYPES[name]
    if pos >= len(buf):
        raise _truncated()
    ndim = buf[pos]
    pos += 1
    shape = list(SHAPES[ndim].unpack_from(buf, pos))
    pos += 8 * ndim
    if any(n < 0 for n in shape):
        raise SerdeError("a tensor in the message has a negative dimension")
    if pos >= len(buf):
        raise _truncated()
    requires_grad = bool(buf[pos])
    (nbytes,) = _Q.unpack_from(buf, pos + 1)
    pos += 9
    numel = 1
    for n in shape:
        numel *= n
    if nbytes != numel * _ITEMSIZE[dtype]:
        raise SerdeError("a tensor's byte count does not match its shape and dtype")
    if pos + nbytes > len(buf):
        raise _truncated()
    if numel == 0:
        t = torch.empty(shape, dtype=dtype)
    else:
        # One copy out of the message buffer, so the tensor owns writable memory.
        raw = bytearray(memoryview(buf)[pos : pos + nbytes])
        t = torch.frombuffer(raw, dtype=dtype).reshape(shape)
    pos += nbytes
    grad, pos = _dec(buf, pos, depth + 1)
    if requires_grad:
        if not (dtype.is_floating_point or dtype.is_complex):
            raise SerdeError("only floating-point tensors can require gradients")
        t.requires_grad_(True)
    if grad is not None:
        if not isinstance(grad, torch.Tensor) or grad.shape != t.shape:
            raise SerdeError("a tensor's gradient in the message has the wrong shape")
        t.grad = grad
    return t, pos


_TUP, _REF, _OP, _STO, _TXT = ord("t"), ord("R"), ord("O"), ord("S"), ord("s")
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
    "O": _dec_runop,
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
    buf = bytes(data) if not isinstance(data, bytes) else data
    try:
        value, pos = _dec(buf, 0, 0)
    except SerdeError:
        raise
    except IndexError as e:  # a read past the end
        raise SerdeError(_EARLY) from e
    except (struct.error, TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise SerdeError(f"the bytes are not a well-formed fedlab message ({e})") from e
    if pos != len(buf):
        raise SerdeError("there are stray bytes after the end of the message")
    return value
