"""The bytes of fedlab: messages and values encoded with msgpack, never with pickle.

This is the only file that knows bytes. A message is one msgpack array,
``[kind, sender, receiver, *fields]``. Values inside it are msgpack's own (None, bool,
int, float, str, bytes, list, dict with string keys) or extension types: a tensor (dtype,
shape, requires_grad, gradient, tags and description, and its raw bytes), a tuple, a
slice, a dtype, a ``torch.Size``, ``...``, a memory format, a device, and the records of
``fedlab.messages`` (an object reference, a pointer, a stored result, a plan slot).

On the wire: the msgpack document's length (4 bytes), the document, then each tensor's
raw bytes in order (aligned to 16 bytes), as Dask's protocol keeps big buffers out of
its msgpack header. So a tensor is copied once when sent, and a received one is used
where it arrived. Decoding builds nothing but the types above. It refuses bytes over
``MAX_MESSAGE_BYTES``, a message of an unknown kind before building anything, a
document (everything but tensors' raw bytes) over ``MAX_STRUCTURE_BYTES``, more tensors
than ``MAX_TENSORS`` or nesting deeper than ``MAX_DEPTH``, and raw bytes that do not
match the sizes declared; it checks each field against its message's schema and turns
every malformed input into a ``SerdeError``.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import msgpack
import torch

from fedlab.exceptions import SerdeError

MAX_MESSAGE_BYTES = 512 << 20  # the largest message a worker decodes
MAX_STRUCTURE_BYTES = 1 << 20  # a message's msgpack document (it may grow ~60x decoded)
MAX_TENSORS = 4096  # tensors in one message (a 0-d tensor decodes to ~40x its bytes)
MAX_DEPTH = 32  # nested lists, tuples and dicts in one value
_ALIGN = 16

DTYPES: dict[str, torch.dtype] = {
    str(d).removeprefix("torch."): d
    for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
              torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool,
              torch.complex64, torch.complex128)
}  # fmt: skip
DTYPE_NAMES = {d: n for n, d in DTYPES.items()}
_FORMATS = {str(f).removeprefix("torch."): f for f in (torch.preserve_format,
            torch.contiguous_format, torch.channels_last)}  # fmt: skip
TENSOR, TUPLE, SLICE, DTYPE, SIZE, ELLIPSIS, FORMAT, DEVICE = range(1, 9)
_RECORD = 32  # a registered class travels nested as extension 32 + its code

CLASSES: dict[int, type] = {}  # code -> registered message or record class
CODES: dict[type, int] = {}
SCHEMAS: dict[type, tuple] = {}  # class -> per field: the exact types allowed (None: any)
_ARRAYS: dict[type, tuple[int, ...]] = {}  # class -> its tuple fields (sent as arrays)
_NUMBERS: set[type] = set()  # records of one int (an object reference): sent as 8 bytes


def register(code: int) -> Any:
    """Class decorator: a NamedTuple travels under ``code``; its annotations are its schema."""

    def wrap(cls: type) -> type:
        hints = typing.get_type_hints(cls)
        SCHEMAS[cls] = tuple(_allowed(hints[f]) for f in cls._fields)
        _ARRAYS[cls] = tuple(i for i, a in enumerate(SCHEMAS[cls]) if a and tuple in a)
        if SCHEMAS[cls] == ((int,),):
            _NUMBERS.add(cls)
        CLASSES[code], CODES[cls] = cls, code
        return cls

    return wrap


def _allowed(hint: Any) -> tuple | None:
    if hint is Any:
        return None
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    out = tuple(type(None) if o is None else o for o in options)
    return (*out, list) if tuple in out else out  # (a tuple field travels as an array)


# -- encoding -------------------------------------------------------------------------
class _Writer:
    """msgpack's hook for every value that is not one of its own; it keeps tensors' bytes."""

    __slots__ = ("frames", "size")

    def __init__(self) -> None:
        self.frames: list = []
        self.size = 0

    def __call__(self, v: Any) -> msgpack.ExtType:
        t = type(v)
        code = CODES.get(t)
        if code is not None:  # a message or record; an object reference is one number
            if t in _NUMBERS and type(v[0]) is int:
                return msgpack.ExtType(_RECORD + code, v[0].to_bytes(8, "little", signed=True))
            return msgpack.ExtType(_RECORD + code, self.pack(self.fields(v)))
        kind = _KINDS.get(t)
        if kind is not None and (t is not torch.dtype or v in DTYPE_NAMES):
            return msgpack.ExtType(kind[0], kind[1](self, v))
        if isinstance(v, torch.Tensor):
            raise SerdeError(
                f"a {t.__name__} cannot be sent as data; pointers travel as references"
            )
        if t is int:
            raise SerdeError(f"the integer {v} cannot be sent: it does not fit in 64 bits")
        raise SerdeError(
            f"fedlab cannot send an object of type {t.__name__} to a worker; "
            "send tensors, numbers, strings, or lists and tuples of them"
        )

    def pack(self, value: Any) -> bytes:
        try:
            return msgpack.packb(value, default=self, strict_types=True)
        except (OverflowError, ValueError, TypeError) as e:  # e.g. an int beyond 64 bits
            raise SerdeError(f"this value cannot be sent: {e}") from None

    def tensor(self, t: torch.Tensor) -> bytes:
        """The header of ``t`` (dtype, shape, grad, tags...); its bytes go aside."""
        check_sendable(t)
        grad = t.grad if t.is_leaf else None
        own = t.__dict__  # (tags and a description, set by ``t.tag(...)``, travel along)
        header = self.pack([DTYPE_NAMES[t.dtype], list(t.shape), t.requires_grad,
                            None if grad is None else grad.detach(), own.get("tags"),
                            own.get("description")])  # fmt: skip
        data = t.detach().resolve_conj().resolve_neg().contiguous()
        if data.dtype == torch.bfloat16:
            data = data.view(torch.int16)
        raw = memoryview(data.numpy()).cast("B") if data.numel() else b""
        pad = -self.size % _ALIGN
        self.frames += (bytes(pad), raw)  # (after the gradient's, if any: decoded in order)
        self.size += pad + len(raw)
        return header

    def fields(self, record: Any) -> list:
        """A record's fields; its tuple fields as arrays (the schema makes them tuples again)."""
        values = list(record)
        for i in _ARRAYS[type(record)]:
            if type(values[i]) is tuple:
                values[i] = list(values[i])
        return values

    def message(self, value: Any) -> bytes | bytearray:
        doc = self.pack(value)
        head = len(doc).to_bytes(4, "little") + doc
        if not self.frames:
            return head
        pad = -len(head) % _ALIGN  # each tensor's bytes start aligned
        return bytearray(b"").join([head, bytes(pad), *self.frames])  # (one copy of the data)


def check_sendable(t: torch.Tensor) -> None:
    """Raise the ``SerdeError`` that sending ``t`` would raise (before anything changes)."""
    if t.layout != torch.strided or t.device.type != "cpu":
        raise SerdeError(f"fedlab sends dense CPU tensors only, not a {t.layout}/{t.device} one")
    if t.dtype not in DTYPE_NAMES:
        raise SerdeError(f"fedlab cannot send tensors of dtype {t.dtype}")


def encode(sender: str, receiver: str, msg: Any) -> bytes | bytearray:
    """A message from ``sender`` to ``receiver`` as bytes."""
    writer = _Writer()
    return writer.message([CODES[type(msg)], sender, receiver, *writer.fields(msg)])


def encode_value(value: Any) -> bytes | bytearray:
    """Any sendable value as bytes (for what travels outside messages, e.g. Ray frames)."""
    return _Writer().message(value)


# -- decoding -------------------------------------------------------------------------
Buffer = bytes | bytearray


def decode(data: Buffer, accept: typing.Container[type] | None = None) -> tuple[str, str, Any]:
    """``(sender, receiver, message)`` from bytes; a ``SerdeError`` for anything malformed.

    With ``accept``, a message of another class is refused before anything is built.
    """
    reader = _Reader(data, MAX_STRUCTURE_BYTES)
    doc = reader.doc
    cls = CLASSES.get(doc[1]) if len(doc) > 1 else None
    if cls is None or SCHEMAS[cls] is None or doc[0] != 0x93 + len(cls._fields):
        raise SerdeError("these bytes are not a fedlab message (unknown kind or layout)")
    if accept is not None and cls not in accept:
        raise SerdeError(f"a {cls.__name__} message is not accepted here")
    values = reader.read()
    sender, receiver = values[1], values[2]
    if type(sender) is not str or type(receiver) is not str:
        raise SerdeError("a message names its sender and receiver as strings")
    return sender, receiver, _build(cls, values[3:])


def decode_value(data: Buffer) -> Any:
    """The value ``encode_value`` wrote (bounded like a message, with room for more structure)."""
    value = _Reader(data, MAX_MESSAGE_BYTES).read()
    _depth(value, 0)
    return value


class _Reader:
    """One decoding: the document, the tensors' bytes after it, and what it may still make."""

    __slots__ = ("data", "depth", "doc", "pos", "tensors", "writable")

    def __init__(self, data: Buffer, max_doc: int) -> None:
        if not isinstance(data, (bytes, bytearray)) or not 4 <= len(data) <= MAX_MESSAGE_BYTES:
            raise SerdeError("these bytes are not a fedlab message (wrong type or size)")
        n = int.from_bytes(data[:4], "little")
        if n > min(max_doc, len(data) - 4):
            raise SerdeError("these bytes are not a fedlab message (wrong size)")
        self.data, self.writable = data, type(data) is bytearray
        self.doc = memoryview(data)[4 : 4 + n]
        self.pos = 4 + n  # where the tensors' bytes start (each one aligned)
        self.tensors, self.depth = MAX_TENSORS, 0

    def read(self) -> Any:
        value = self.unpack(self.doc)
        if self.pos != len(self.data):
            raise SerdeError("the bytes after the message do not match its tensors' sizes")
        return value

    def unpack(self, data: memoryview | bytes) -> Any:
        try:
            return msgpack.unpackb(data, ext_hook=self, strict_map_key=True)
        except SerdeError:
            raise
        except Exception as e:  # truncated, extra bytes, bad UTF-8, too deep, non-str keys...
            raise SerdeError(f"the message is malformed ({type(e).__name__})") from None

    def __call__(self, code: int, data: bytes) -> Any:  # msgpack's ext_hook
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise SerdeError("the message is nested too deeply")
            return _EXT[code](data, self) if code < _RECORD else _record(code, data, self)
        except (KeyError, IndexError, ValueError, TypeError, UnicodeDecodeError, RuntimeError):
            raise SerdeError("a value in the message is malformed") from None
        finally:
            self.depth -= 1

    def frame(self, nbytes: int) -> Any:
        """The next tensor's bytes: where they arrived if they may be written, else a copy."""
        start = self.pos + (-self.pos % _ALIGN)
        self.pos = start + nbytes
        if self.pos > len(self.data):
            raise SerdeError("a tensor's bytes in the message end too early")
        piece = memoryview(self.data)[start : self.pos]
        return piece if self.writable else bytearray(piece)


def _record(code: int, data: bytes, reader: _Reader) -> Any:
    cls = CLASSES[code - _RECORD]
    if cls in _NUMBERS:
        if len(data) != 8:
            raise SerdeError(f"a {cls.__name__} in the message is malformed")
        return cls(int.from_bytes(data, "little", signed=True))
    values = reader.unpack(data)
    if type(values) is not list:
        raise SerdeError(f"a {cls.__name__} in the message is malformed")
    return _build(cls, values)


def _build(cls: type, values: list) -> Any:
    """``cls(*values)``, each value checked against the class's schema."""
    schema = SCHEMAS[cls]
    if len(values) != len(schema):
        raise SerdeError(f"a {cls.__name__} in the message has the wrong number of fields")
    for i, allowed in enumerate(schema):
        v = values[i]
        t = type(v)
        if t is list or t is tuple or t is dict:
            _depth(v, 0)
            if t is list and allowed is not None and tuple in allowed:
                values[i], t = tuple(v), tuple
            elif t is dict and not all(type(k) is str for k in v):
                raise SerdeError(f"{cls.__name__}.{cls._fields[i]} takes names as its keys")
        if allowed is not None and t not in allowed:
            raise SerdeError(f"{cls.__name__}.{cls._fields[i]} cannot be a {t.__name__}")
    return cls(*values)


def _depth(v: Any, depth: int) -> None:
    t = type(v)
    if t is list or t is tuple or t is dict:
        if depth >= MAX_DEPTH:
            raise SerdeError("the message is nested too deeply")
        for x in v.values() if t is dict else v:
            _depth(x, depth + 1)


def _tensor(data: bytes, reader: _Reader) -> torch.Tensor:
    reader.tensors -= 1
    if reader.tensors < 0:
        raise SerdeError(f"a message carries at most {MAX_TENSORS} tensors")
    name, shape, requires_grad, grad, tags, description = reader.unpack(data)  # (grad: bytes first)
    dtype = DTYPES[name]
    if type(shape) is not list or len(shape) > 64 or min(shape, default=0) < 0:
        raise SerdeError("a tensor's shape in the message is malformed")  # (ints: torch.Size)
    if type(requires_grad) is not bool or not (grad is None or type(grad) is torch.Tensor):
        raise SerdeError("a tensor's gradient in the message is malformed")
    if tags is not None and (type(tags) is not list or {type(x) for x in tags} - {str}):
        raise SerdeError("a tensor's tags in the message are malformed")
    if description is not None and type(description) is not str:
        raise SerdeError("a tensor's description in the message is malformed")
    numel = torch.Size(shape).numel()
    raw = reader.frame(numel * dtype.itemsize)  # (the declared size must be there)
    if dtype == torch.bool:  # a bool's byte is 0 or 1, whatever arrived
        t = torch.frombuffer(raw, dtype=torch.uint8) != 0 if numel else torch.empty(0, dtype=dtype)
    else:
        t = torch.frombuffer(raw, dtype=dtype) if numel else torch.empty(0, dtype=dtype)
    t = t.reshape(shape)
    if requires_grad:
        t.requires_grad_(True)
    if grad is not None:
        t.grad = grad  # (torch checks its shape and dtype: a RuntimeError otherwise)
    if tags is not None:
        t.tags = tags
    if description is not None:
        t.description = description
    return t


def _tuple(data: bytes, reader: _Reader) -> tuple:
    items = reader.unpack(data)
    if type(items) is not list:
        raise SerdeError("a tuple in the message is malformed")
    return tuple(items)


def _slice(data: bytes, reader: _Reader) -> slice:
    start, stop, step = reader.unpack(data)
    if not all(v is None or type(v) is int for v in (start, stop, step)):
        raise SerdeError("a slice in the message is malformed")
    return slice(start, stop, step)


# Each extension type: its code, how it is written, and how it is read back.
_KINDS: dict[type, tuple[int, Any, Any]] = {
    torch.Tensor: (TENSOR, _Writer.tensor, _tensor),
    torch.nn.Parameter: (TENSOR, _Writer.tensor, _tensor),
    tuple: (TUPLE, lambda w, v: w.pack(list(v)), _tuple),
    slice: (SLICE, lambda w, v: w.pack([v.start, v.stop, v.step]), _slice),
    torch.dtype: (DTYPE, lambda w, v: DTYPE_NAMES[v].encode(), lambda d, r: DTYPES[d.decode()]),
    torch.Size: (SIZE, lambda w, v: w.pack(list(v)), lambda d, r: torch.Size(r.unpack(d))),
    type(...): (ELLIPSIS, lambda w, v: b"", lambda d, r: (...,)[len(d)]),  # (empty, or refused)
    torch.memory_format: (FORMAT, lambda w, v: str(v).removeprefix("torch.").encode(),
                          lambda d, r: _FORMATS[d.decode()]),
    torch.device: (DEVICE, lambda w, v: str(v).encode(), lambda d, r: torch.device(d.decode())),
}  # fmt: skip
_EXT = {code: read for code, _, read in _KINDS.values()}
