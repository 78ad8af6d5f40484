"""A small, safe bytes codec for fedlab messages: no pickle, no code, only data.

Every value is a one-byte tag followed by its fields. Decoding builds nothing but
plain Python values, tensors (dtype, shape and a raw buffer) and the message
dataclasses registered in ``fedlab.messages``; anything else is a ``SerdeError``.
"""

from __future__ import annotations

import struct
from typing import Any

import torch

from fedlab.exceptions import SerdeError

DTYPES: dict[str, torch.dtype] = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float64, torch.float32, torch.float16, torch.bfloat16,
        torch.complex64, torch.complex128,
        torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool,
    )
}  # fmt: skip
DTYPE_NAMES = {d: n for n, d in DTYPES.items()}
MEMORY_FORMATS = {
    "preserve_format": torch.preserve_format,
    "contiguous_format": torch.contiguous_format,
    "channels_last": torch.channels_last,
}
MEMORY_FORMAT_NAMES = {v: k for k, v in MEMORY_FORMATS.items()}
MAX_DEPTH = 64

_Q = struct.Struct("<q")
_D = struct.Struct("<d")
_I = struct.Struct("<I")

# Registered message classes: code -> class and class -> code (filled by messages.py).
MESSAGE_CLASSES: dict[int, type] = {}
MESSAGE_CODES: dict[type, int] = {}


def register(code: int):
    """Class decorator: make a frozen dataclass encodable under a one-byte ``code``."""

    def wrap(cls: type) -> type:
        MESSAGE_CLASSES[code] = cls
        MESSAGE_CODES[cls] = code
        cls._fields = tuple(cls.__dataclass_fields__)
        return cls

    return wrap


def tensor_bytes(t: torch.Tensor) -> bytes:
    """The raw bytes of a tensor's values, in C order."""
    flat = t.detach().contiguous().reshape(-1)
    if flat.numel() == 0:
        return b""
    return flat.view(torch.uint8).numpy().tobytes()


def _enc(v: Any, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise SerdeError("this value is nested too deeply to send")
    t = type(v)
    if v is None:
        out += b"N"
    elif v is True:
        out += b"T"
    elif v is False:
        out += b"F"
    elif t is int:
        if not -(2**63) <= v < 2**63:
            raise SerdeError(f"the integer {v} is too large to send")
        out += b"i"
        out += _Q.pack(v)
    elif t is float:
        out += b"f"
        out += _D.pack(v)
    elif t is str:
        _enc_str(v, out, b"s")
    elif t is bytes:
        out += b"b"
        out += _I.pack(len(v))
        out += v
    elif t is tuple or t is list:
        out += b"t" if t is tuple else b"l"
        out += _I.pack(len(v))
        for x in v:
            _enc(x, out, depth + 1)
    elif t is dict:
        out += b"d"
        out += _I.pack(len(v))
        for k, x in v.items():
            _enc(k, out, depth + 1)
            _enc(x, out, depth + 1)
    elif t in MESSAGE_CODES:
        out += b"M"
        out.append(MESSAGE_CODES[t])
        for name in t._fields:
            _enc(getattr(v, name), out, depth + 1)
    elif isinstance(v, torch.Tensor):
        _enc_tensor(v, out, depth)
    elif t is torch.Size:
        out += b"z"
        _enc(tuple(v), out, depth + 1)
    elif t is torch.dtype:
        _enc_str(DTYPE_NAMES.get(v) or _unsendable(v), out, b"y")
    elif t is slice:
        out += b"c"
        for x in (v.start, v.stop, v.step):
            _enc(x, out, depth + 1)
    elif v is Ellipsis:
        out += b"e"
    elif t is torch.memory_format:
        _enc_str(MEMORY_FORMAT_NAMES[v], out, b"m")
    elif t is torch.device:
        _enc_str(str(v), out, b"v")
    else:
        _unsendable(v)


def _unsendable(v: Any):
    raise SerdeError(
        f"fedlab cannot send an object of type {type(v).__name__} to a worker; "
        "send tensors, numbers, strings, or lists and tuples of them"
    )


def _enc_str(s: str, out: bytearray, tag: bytes) -> None:
    b = s.encode()
    out += tag
    out += _I.pack(len(b))
    out += b


def _enc_tensor(t: torch.Tensor, out: bytearray, depth: int) -> None:
    if type(t) not in (torch.Tensor, torch.nn.Parameter):
        raise SerdeError(
            f"a {type(t).__name__} cannot be sent as data; "
            "pointers travel as references, not as values"
        )
    if t.layout != torch.strided or t.device.type != "cpu":
        raise SerdeError("fedlab sends dense CPU tensors only")
    dtype = DTYPE_NAMES.get(t.dtype)
    if dtype is None:
        raise SerdeError(f"fedlab cannot send tensors of dtype {t.dtype}")
    out += b"X"
    _enc_str(dtype, out, b"s")
    out.append(t.dim())
    for n in t.shape:
        out += _Q.pack(n)
    out.append(1 if t.requires_grad else 0)
    raw = tensor_bytes(t)
    out += _Q.pack(len(raw))
    out += raw
    grad = t.grad if t.is_leaf else None
    _enc(None if grad is None else grad.detach(), out, depth + 1)


def encode(value: Any) -> bytes:
    """Encode a value (a message, usually) to bytes."""
    out = bytearray()
    _enc(value, out, 0)
    return bytes(out)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = memoryview(buf)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise SerdeError("the message ends too early (truncated or corrupted bytes)")
        chunk = self.buf[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, s: struct.Struct):
        return s.unpack(self.take(s.size))[0]

    def text(self) -> str:
        try:
            return str(self.take(self.unpack(_I)), "utf-8")
        except UnicodeDecodeError as e:
            raise SerdeError("a string in the message is not valid UTF-8") from e


def _dec(r: _Reader, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise SerdeError("the message is nested too deeply")
    tag = bytes(r.take(1))
    if tag == b"N":
        return None
    if tag == b"T":
        return True
    if tag == b"F":
        return False
    if tag == b"i":
        return r.unpack(_Q)
    if tag == b"f":
        return r.unpack(_D)
    if tag == b"s":
        return r.text()
    if tag == b"b":
        return bytes(r.take(r.unpack(_I)))
    if tag in (b"t", b"l"):
        n = r.unpack(_I)
        items = [_dec(r, depth + 1) for _ in range(min(n, len(r.buf)) if n else 0)]
        if len(items) != n:
            raise SerdeError("the message ends too early (truncated or corrupted bytes)")
        return tuple(items) if tag == b"t" else items
    if tag == b"d":
        n = r.unpack(_I)
        d: dict = {}
        for _ in range(n):
            k = _dec(r, depth + 1)
            if type(k) not in (str, int):
                raise SerdeError("dictionary keys in a message must be strings or integers")
            d[k] = _dec(r, depth + 1)
        return d
    if tag == b"M":
        cls = MESSAGE_CLASSES.get(r.take(1)[0])
        if cls is None:
            raise SerdeError("the message names an unknown message kind")
        return cls(*(_dec(r, depth + 1) for _ in cls._fields))
    if tag == b"X":
        return _dec_tensor(r, depth)
    if tag == b"z":
        shape = _dec(r, depth + 1)
        if type(shape) is not tuple or not all(type(n) is int for n in shape):
            raise SerdeError("a torch.Size in the message is malformed")
        return torch.Size(shape)
    if tag == b"y":
        name = r.text()
        if name not in DTYPES:
            raise SerdeError(f"unknown dtype {name!r} in the message")
        return DTYPES[name]
    if tag == b"c":
        return slice(_dec(r, depth + 1), _dec(r, depth + 1), _dec(r, depth + 1))
    if tag == b"e":
        return Ellipsis
    if tag == b"m":
        name = r.text()
        if name not in MEMORY_FORMATS:
            raise SerdeError(f"unknown memory format {name!r} in the message")
        return MEMORY_FORMATS[name]
    if tag == b"v":
        name = r.text()
        if name != "cpu":
            raise SerdeError(f"workers compute on the CPU only, not on {name!r}")
        return torch.device("cpu")
    raise SerdeError(f"unknown tag {tag!r} in the message (not fedlab bytes?)")


def _dec_tensor(r: _Reader, depth: int) -> torch.Tensor:
    name = _dec(r, depth + 1)
    if name not in DTYPES:
        raise SerdeError(f"unknown dtype {name!r} in the message")
    dtype = DTYPES[name]
    ndim = r.take(1)[0]
    shape = [r.unpack(_Q) for _ in range(ndim)]
    if any(n < 0 for n in shape):
        raise SerdeError("a tensor in the message has a negative dimension")
    requires_grad = bool(r.take(1)[0])
    nbytes = r.unpack(_Q)
    numel = 1
    for n in shape:
        numel *= n
    itemsize = torch.empty((), dtype=dtype).element_size()
    if nbytes != numel * itemsize:
        raise SerdeError("a tensor's byte count does not match its shape and dtype")
    raw = r.take(nbytes)
    if numel == 0:
        t = torch.empty(shape, dtype=dtype)
    else:
        # One copy out of the message buffer, so the tensor owns writable memory.
        t = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape)
    grad = _dec(r, depth + 1)
    if requires_grad:
        if not (dtype.is_floating_point or dtype.is_complex):
            raise SerdeError("only floating-point tensors can require gradients")
        t.requires_grad_(True)
    if grad is not None:
        if not isinstance(grad, torch.Tensor) or grad.shape != t.shape:
            raise SerdeError("a tensor's gradient in the message has the wrong shape")
        t.grad = grad
    return t


def decode(data: bytes) -> Any:
    """Decode bytes made by ``encode``; malformed bytes raise ``SerdeError``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SerdeError(f"expected bytes, got {type(data).__name__}")
    r = _Reader(data)
    try:
        value = _dec(r, 0)
    except SerdeError:
        raise
    except (struct.error, TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise SerdeError(f"the bytes are not a well-formed fedlab message ({e})") from e
    if r.pos != len(r.buf):
        raise SerdeError("there are stray bytes after the end of the message")
    return value
