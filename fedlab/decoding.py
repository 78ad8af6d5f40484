"""Decoding fedlab's bytes: the safe half of the codec (see ``fedlab.serde``).

Decoding builds nothing but plain Python values, tensors (dtype, shape and a raw
buffer) and the registered message dataclasses; anything else, and any malformed,
truncated or oversized input, is a ``SerdeError``. It never uses pickle.
"""

from __future__ import annotations

import struct
from typing import Any

import torch

from fedlab import serde as _s
from fedlab.exceptions import SerdeError
from fedlab.serde import (
    _D,
    _I,
    _Q,
    _QB,
    DTYPES,
    MAX_DEPTH,
    MEMORY_FORMATS,
    MESSAGE_CLASSES,
)

_EARLY = "the message ends too early (truncated or corrupted bytes)"


def _truncated() -> SerdeError:
    return SerdeError("the message ends too early (truncated or corrupted bytes)")


def _text(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = _I.unpack_from(buf, pos)
    pos += 4
    if pos + n > len(buf):
        raise _truncated()
    try:
        return buf[pos : pos + n].decode(), pos + n
    except UnicodeDecodeError as e:
        raise SerdeError("a string in the message is not valid UTF-8") from e


_N, _T, _F, _INT, _FLT, _STR, _BYT = b"N"[0], b"T"[0], b"F"[0], b"i"[0], b"f"[0], b"s"[0], b"b"[0]
_TUP, _LST, _DCT, _MSG, _TEN = b"t"[0], b"l"[0], b"d"[0], b"M"[0], b"X"[0]
_REF, _STO = b"R"[0], b"S"[0]


def _dec(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    """Decode one value at ``pos``; return it and the position after it."""
    if depth > MAX_DEPTH:
        raise SerdeError("the message is nested too deeply")
    if pos >= len(buf):
        raise _truncated()
    tag = buf[pos]
    pos += 1
    if tag == _MSG:
        if pos >= len(buf):
            raise _truncated()
        cls = MESSAGE_CLASSES.get(buf[pos])
        if cls is None:
            raise SerdeError("the message names an unknown message kind")
        pos += 1
        # Fill the frozen dataclass directly: its generated __init__ (one
        # object.__setattr__ per field) would double the cost of decoding a small message.
        obj = object.__new__(cls)
        fields = obj.__dict__
        for name in cls._fields:
            fields[name], pos = _dec(buf, pos, depth + 1)
        return obj, pos
    if tag == _REF and _s._REF_CLASS is not None:
        obj = object.__new__(_s._REF_CLASS)
        obj.__dict__["id"] = _Q.unpack_from(buf, pos)[0]
        return obj, pos + 8
    if tag == _STO and _s._STORED_CLASS is not None:
        return _dec_stored(buf, pos)
    if tag == _INT:
        return _Q.unpack_from(buf, pos)[0], pos + 8
    if tag == _STR:
        return _text(buf, pos)
    if tag in (_TUP, _LST):
        (n,) = _I.unpack_from(buf, pos)
        pos += 4
        if n > len(buf) - pos:  # each item takes at least one byte
            raise _truncated()
        items = []
        for _ in range(n):
            v, pos = _dec(buf, pos, depth + 1)
            items.append(v)
        return (tuple(items) if tag == _TUP else items), pos
    if tag == _N:
        return None, pos
    if tag == _T:
        return True, pos
    if tag == _F:
        return False, pos
    if tag == _FLT:
        return _D.unpack_from(buf, pos)[0], pos + 8
    if tag == _DCT:
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
    if tag == _TEN:
        return _dec_tensor(buf, pos, depth)
    if tag == _BYT:
        (n,) = _I.unpack_from(buf, pos)
        pos += 4
        if pos + n > len(buf):
            raise _truncated()
        return bytes(buf[pos : pos + n]), pos + n
    return _dec_rare(buf, pos, depth, tag)


def _dec_stored(buf: bytes, pos: int) -> tuple[Any, int]:
    obj_id, ndim = _QB.unpack_from(buf, pos)
    pos += _QB.size
    shape = struct.unpack_from(f"<{ndim}q", buf, pos)
    pos += 8 * ndim
    if pos >= len(buf) or buf[pos] != _STR:
        raise SerdeError("a stored result in the message is malformed")
    dtype, pos = _text(buf, pos + 1)
    if pos >= len(buf):
        raise _truncated()
    flags = buf[pos]
    obj = object.__new__(_s._STORED_CLASS)
    obj.__dict__.update(
        id=obj_id,
        shape=shape,
        dtype=dtype,
        requires_grad=bool(flags & 1),
        is_leaf=bool(flags & 2),
        existing=bool(flags & 4),
    )
    return obj, pos + 1


_DEVICES = {"cpu": torch.device("cpu")}


def _named(buf: bytes, pos: int, table: dict[str, Any], what: str) -> tuple[Any, int]:
    """A value travelling by name (a dtype, a memory format, a device): known names only."""
    name, pos = _text(buf, pos)
    if name not in table:
        raise SerdeError(f"unknown {what} {name!r} in the message")
    return table[name], pos


def _dec_rare(buf: bytes, pos: int, depth: int, tag: int) -> tuple[Any, int]:
    t = bytes([tag])
    if t == b"z":
        shape, pos = _dec(buf, pos, depth + 1)
        if type(shape) is not tuple or not all(type(n) is int for n in shape):
            raise SerdeError("a torch.Size in the message is malformed")
        return torch.Size(shape), pos
    if t == b"y":
        return _named(buf, pos, DTYPES, "dtype")
    if t == b"c":
        start, pos = _dec(buf, pos, depth + 1)
        stop, pos = _dec(buf, pos, depth + 1)
        step, pos = _dec(buf, pos, depth + 1)
        return slice(start, stop, step), pos
    if t == b"e":
        return Ellipsis, pos
    if t == b"m":
        return _named(buf, pos, MEMORY_FORMATS, "memory format")
    if t == b"v":
        return _named(buf, pos, _DEVICES, "device (workers compute on the CPU only)")
    raise SerdeError(f"unknown tag {t!r} in the message (not fedlab bytes?)")


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
    shape = list(struct.unpack_from(f"<{ndim}q", buf, pos))
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
        t = torch.frombuffer(raw, dtype=torch.uint8).view(dtype).reshape(shape)
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


def decode(data: bytes) -> Any:
    """Decode bytes made by ``encode``; malformed bytes raise ``SerdeError``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SerdeError(f"expected bytes, got {type(data).__name__}")
    buf = bytes(data) if not isinstance(data, bytes) else data
    try:
        value, pos = _dec(buf, 0, 0)
    except SerdeError:
        raise
    except (struct.error, TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise SerdeError(f"the bytes are not a well-formed fedlab message ({e})") from e
    if pos != len(buf):
        raise SerdeError("there are stray bytes after the end of the message")
    return value
