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
        torch.float64,
        torch.float32,
        torch.float16,
        torch.bfloat16,
        torch.complex64,
        torch.complex128,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
    )
}
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
    """Class decorator: make a message dataclass encodable under a one-byte ``code``."""

    def wrap(cls: type) -> type:
        MESSAGE_CLASSES[code] = cls
        MESSAGE_CODES[cls] = code
        cls._fields = tuple(cls.__dataclass_fields__)
        _ENCODERS[cls] = _enc_message
        return cls

    return wrap


def _enc(v: Any, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise SerdeError("this value is nested too deeply to send")
    # One dict lookup by exact type keeps the common case (small messages) fast.
    enc = _ENCODERS.get(type(v))
    if enc is not None:
        enc(v, out, depth)
    elif isinstance(v, torch.Tensor):
        _enc_tensor(v, out, depth)
    else:
        _unsendable(v)


def _enc_none(v, out, depth):
    out += b"N"


def _enc_bool(v, out, depth):
    out += b"T" if v else b"F"


def _enc_int(v, out, depth):
    if not -(2**63) <= v < 2**63:
        raise SerdeError(f"the integer {v} is too large to send")
    out += b"i"
    out += _Q.pack(v)


def _enc_float(v, out, depth):
    out += b"f"
    out += _D.pack(v)


def _enc_bytes(v, out, depth):
    out += b"b"
    out += _I.pack(len(v))
    out += v


def _enc_seq(v, out, depth):
    out += b"t" if type(v) is tuple else b"l"
    out += _I.pack(len(v))
    for x in v:
        _enc(x, out, depth + 1)


def _enc_dict(v, out, depth):
    out += b"d"
    out += _I.pack(len(v))
    for k, x in v.items():
        _enc(k, out, depth + 1)
        _enc(x, out, depth + 1)


def _enc_message(v, out, depth):
    out += b"M"
    out.append(MESSAGE_CODES[type(v)])
    for name in v._fields:
        _enc(getattr(v, name), out, depth + 1)


def _enc_size(v, out, depth):
    out += b"z"
    _enc(tuple(v), out, depth + 1)


def _enc_dtype(v, out, depth):
    _enc_str(DTYPE_NAMES.get(v) or _unsendable(v), out, b"y")


def _enc_slice(v, out, depth):
    out += b"c"
    for x in (v.start, v.stop, v.step):
        _enc(x, out, depth + 1)


_ENCODERS: dict[type, Any] = {
    type(None): _enc_none,
    bool: _enc_bool,
    int: _enc_int,
    float: _enc_float,
    str: lambda v, out, depth: _enc_str(v, out, b"s"),
    bytes: _enc_bytes,
    tuple: _enc_seq,
    list: _enc_seq,
    dict: _enc_dict,
    torch.Size: _enc_size,
    torch.dtype: _enc_dtype,
    slice: _enc_slice,
    type(Ellipsis): lambda v, out, depth: out.extend(b"e"),
    torch.memory_format: lambda v, out, depth: _enc_str(MEMORY_FORMAT_NAMES[v], out, b"m"),
    torch.device: lambda v, out, depth: _enc_str(str(v), out, b"v"),
}  # (tensors are added below, once ``_enc_tensor`` is defined)


# Compact forms for the messages on every operation's path: an envelope, an operation
# with flat arguments, an argument reference, a stored result, a reply and a delete.
# Each is a few struct calls instead of a walk over fields; a value of an unexpected
# type takes the general form, so nothing is lost. Heads (worker and operation names)
# are encoded once and remembered.
HOT: dict[str, type] = {}  # the hot classes by name (set by ``fedlab.messages``)
SHAPES = [struct.Struct(f"<{n}q") for n in range(256)]  # a shape of n dimensions
# A stored result: id, n, a shape of n dimensions, dtype code, flags (grad, leaf, existing).
STORED = [struct.Struct(f"<qB{n}qBB") for n in range(256)]
_HEADS: dict[Any, bytes] = {}  # (sender, receiver) -> their encoded head
_ARGS: dict[bytes, tuple] = {}  # argument codes (b"RRf") -> their struct
_ARG_FORMAT = {ord("R"): "q", ord("i"): "q", ord("f"): "d", **dict.fromkeys(b"NTFs", "")}
_NUMBER_CODES = frozenset(b"Rif")
DTYPE_LIST = tuple(DTYPES)  # a stored result's dtype travels as its index here
_DTYPE_CODE = {n: i for i, n in enumerate(DTYPE_LIST)}


def install_compact(**classes: type) -> None:
    """Use the compact forms for the hot message classes (called by ``fedlab.messages``)."""
    HOT.update(classes)
    for name, enc in [
        ("ObjRef", _enc_ref),
        ("Stored", _enc_stored),
        ("Envelope", _enc_envelope),
        ("Reply", _enc_reply),
        ("Delete", _enc_delete),
    ]:
        _ENCODERS[classes[name]] = enc


def text_bytes(s: str) -> bytes:
    """A string as the codec writes it after its tag: length, then UTF-8."""
    b = s.encode()
    return _I.pack(len(b)) + b


def _remember(cache: dict, key: Any, value: Any) -> Any:
    # Heads are few (two per pair of workers that talk, a few per operation): the bound
    # is far above any class's needs, and a flood of odd ones cannot grow memory.
    if len(cache) > 65536:
        cache.clear()
    cache[key] = value
    return value


def args_struct(codes: bytes) -> tuple[struct.Struct, bool]:
    """The struct of an operation's flat values with these codes, and whether all are numbers.

    Codes: R ref, i int, f float (packed in the struct); N None, T True, F False (no
    bytes); s a short string (a length byte and UTF-8, after the struct).
    """
    found = _ARGS.get(codes)
    if found is None:
        try:
            fmt = "".join(_ARG_FORMAT[c] for c in codes)
        except KeyError:
            raise SerdeError("an operation's arguments are malformed") from None
        numbers = all(c in _NUMBER_CODES for c in codes)
        found = _remember(_ARGS, codes, (struct.Struct("<" + fmt), numbers))
    return found


def _enc_ref(v: Any, out: bytearray, depth: int) -> None:
    if type(v.id) is not int or not -(2**63) <= v.id < 2**63:
        return _enc_message(v, out, depth)
    out += b"R"
    out += _Q.pack(v.id)


def _stored_bytes(v: Any) -> bytes | None:
    """A stored result's compact form (after its tag); None if a field has an odd type."""
    shape, rg, leaf, ex = v.shape, v.requires_grad, v.is_leaf, v.existing
    if type(v.id) is not int or type(shape) is not tuple or len(shape) > 255:
        return None
    code = _DTYPE_CODE.get(v.dtype) if type(v.dtype) is str else None
    if code is None or not (type(rg) is type(leaf) is type(ex) is bool):
        return None
    try:
        return STORED[len(shape)].pack(v.id, len(shape), *shape, code, rg | leaf << 1 | ex << 2)
    except struct.error:  # a dimension that is not an int, or out of range
        return None


def _enc_stored(v: Any, out: bytearray, depth: int) -> None:
    packed = _stored_bytes(v)
    if packed is None:
        return _enc_message(v, out, depth)
    out += b"S"
    out += packed


def _short_head(tag: bytes, *names: Any) -> bytes | None:
    """``tag``, the names' byte lengths (one byte each), then the names; None if unfit."""
    if not all(type(n) is str for n in names):
        return None
    raw = [n.encode() for n in names]
    if any(len(b) > 255 for b in raw):
        return None
    return tag + bytes(len(b) for b in raw) + b"".join(raw)


def _enc_envelope(v: Any, out: bytearray, depth: int) -> None:
    if not _enc_in_envelope(v.sender, v.receiver, v.msg, out, depth):
        _enc_message(v, out, depth)


def _enc_in_envelope(sender: Any, receiver: Any, msg: Any, out: bytearray, depth: int) -> bool:
    """Write ``msg`` in a compact envelope; False (nothing written) if the names do not fit."""
    if type(msg) is HOT["RunOp"] and _enc_request(sender, receiver, msg, out):
        return True  # the usual message: an operation request in one compact form
    key = (sender, receiver)
    head = _HEADS.get(key)
    if head is None:
        head = _short_head(b"E", sender, receiver)
        if head is None:
            return False
        _remember(_HEADS, key, head)
    out += head
    _enc(msg, out, depth + 1)
    return True


def _enc_reply(v: Any, out: bytearray, depth: int) -> None:
    out += b"P"
    if type(v.value) is HOT["Stored"]:  # the usual reply, without a lookup
        _enc_stored(v.value, out, depth + 1)
    else:
        _enc(v.value, out, depth + 1)


def _delete_bytes(obj_id: Any, reason: Any) -> bytes | None:
    """A delete's compact form (from its tag on); None if a field has an odd type."""
    if type(obj_id) is not int or type(reason) is not str or not -(2**63) <= obj_id < 2**63:
        return None
    return b"K" + _Q.pack(obj_id) + text_bytes(reason)


def delete_bytes(sender: str, receiver: str, obj_id: int, reason: str) -> bytes:
    """``encode_envelope(sender, receiver, Delete(obj_id, reason))`` for a dying pointer."""
    head = _HEADS.get((sender, receiver))
    body = _delete_bytes(obj_id, reason)
    if head is None or body is None:
        return encode_envelope(sender, receiver, HOT["Delete"](obj_id, reason))
    return head + body


def _enc_delete(v: Any, out: bytearray, depth: int) -> None:
    body = _delete_bytes(v.id, v.reason)
    if body is None:
        return _enc_message(v, out, depth)
    out += body


def _unsendable(v: Any):
    raise SerdeError(
        f"fedlab cannot send an object of type {type(v).__name__} to a worker; "
        "send tensors, numbers, strings, or lists and tuples of them"
    )


def _enc_str(s: str, out: bytearray, tag: bytes) -> None:
    out += tag
    out += text_bytes(s)


# A tensor's head (tag, dtype name, shape, grad flag, byte count) by (dtype, shape, grad):
# a training loop sends tensors of a few shapes, over and over.
_TENSOR_HEADS: dict[tuple, tuple[bytes, int]] = {}


def _tensor_head(dtype: torch.dtype, shape: torch.Size, requires_grad: bool) -> tuple[bytes, int]:
    name = DTYPE_NAMES.get(dtype)
    if name is None:
        raise SerdeError(f"fedlab cannot send tensors of dtype {dtype}")
    nbytes = shape.numel() * dtype.itemsize
    n = len(shape)
    head = b"Xs" + text_bytes(name) + bytes([n]) + SHAPES[n].pack(*shape)
    return head + bytes([requires_grad]) + _Q.pack(nbytes), nbytes


def _enc_tensor(t: torch.Tensor, out: bytearray, depth: int) -> None:
    if type(t) is not torch.Tensor and type(t) is not torch.nn.Parameter:
        raise SerdeError(
            f"a {type(t).__name__} cannot be sent as data; "
            "pointers travel as references, not as values"
        )
    if t.layout != torch.strided or not t.is_cpu:
        raise SerdeError("fedlab sends dense CPU tensors only")
    rg = t.requires_grad
    key = (t.dtype, t.shape, rg)
    head = _TENSOR_HEADS.get(key)
    if head is None:
        head = _remember(_TENSOR_HEADS, key, _tensor_head(*key))
    out += head[0]
    if head[1]:
        _tensor_data(t.detach() if rg else t, head[1], out)
    grad = t.grad if t.is_leaf else None
    _enc(None if grad is None else grad.detach(), out, depth + 1)


_ENCODERS[torch.Tensor] = _ENCODERS[torch.nn.Parameter] = _enc_tensor


def _tensor_data(data: torch.Tensor, nbytes: int, out: bytearray) -> None:
    if nbytes <= 65536:
        try:  # a small tensor in one numpy call (``tobytes`` writes any strides in C order)
            out += data.numpy().tobytes()
            return
        except (TypeError, RuntimeError):  # bfloat16 has no numpy dtype; conj/neg views
            pass
    # Straight from the tensor's memory into the message: no intermediate bytes.
    flat = data.resolve_conj().resolve_neg().contiguous().reshape(-1)
    view = memoryview(flat.view(torch.uint8).numpy())
    if type(out) is _Out:  # joined in by ``_joined``: one big buffer per message, not two
        out.big = [*out.big, (len(out), view)]
    else:
        out += view


class _Out(bytearray):
    """A message being written; its big tensor buffers wait in ``big``, with their offsets."""

    big: list[tuple[int, memoryview]] | tuple = ()  # (made a list by the first one)


def _joined(out: _Out) -> bytes:
    """The message's bytes, its big buffers joined in: one copy of each, no regrowing."""
    whole, parts, at = memoryview(out), [], 0
    for pos, view in out.big:
        parts += (whole[at:pos], view)
        at = pos
    return b"".join([*parts, whole[at:]])


def encode(value: Any) -> bytes:
    """Encode a value (a message, usually) to bytes."""
    out = _Out()
    _enc(value, out, 0)
    return _joined(out) if out.big else bytes(out)


def encode_envelope(sender: str, receiver: str, msg: Any) -> bytes:
    """``encode(Envelope(sender, receiver, msg))``, without building the envelope first."""
    out = _Out()
    if not _enc_in_envelope(sender, receiver, msg, out, 0):
        _enc(HOT["Envelope"](sender, receiver, msg), out, 0)
    return _joined(out) if out.big else bytes(out)


_TORCH_DTYPE_CODE = {DTYPES[n]: i for n, i in _DTYPE_CODE.items()}


def stored_reply(obj_id: int, t: torch.Tensor, existing: bool) -> bytes | None:
    """``encode_reply(Stored(...))`` for a plain tensor stored as ``obj_id``, read off ``t``."""
    shape, code = t.shape, _TORCH_DTYPE_CODE.get(t.dtype)
    if code is None or len(shape) > 255:
        return None
    flags = t.requires_grad | t.is_leaf << 1 | existing << 2
    return b"PS" + STORED[len(shape)].pack(obj_id, len(shape), *shape, code, flags)


def encode_reply(value: Any) -> bytes:
    """``encode(Reply(value))``, without building the reply first."""
    if type(value) is HOT["Stored"]:  # the usual answer: an operation's stored result
        packed = _stored_bytes(value)
        if packed is not None:
            return b"PS" + packed
    return encode(HOT["Reply"](value))


# The decoder lives in its own module; ``serde.decode`` stays the one entry point.
from fedlab.decoding import decode as decode  # noqa: E402
from fedlab.decoding import delete_request as delete_request  # noqa: E402
from fedlab.decoding import request as request  # noqa: E402
from fedlab.decoding import stored_reply_value as stored_reply_value  # noqa: E402
from fedlab.oprequest import _enc_request  # noqa: E402  (the request form, in its own file)
