"""Safe by construction: the codec decodes only data, and crafted messages change no store."""

from __future__ import annotations

import pickle

import msgpack
import pytest
import torch

import fedlab as sy
from fedlab import messages as m
from fedlab import serde
from fedlab.exceptions import OperationNotAllowedError, SerdeError


def contents(w):
    return {k: v.clone() for k, v in w.objects().items()}


def unchanged(w, before):
    now = w.objects()
    return now.keys() == before.keys() and all(torch.equal(now[k], before[k]) for k in now)


def answer(worker, data: bytes):
    """The reply a worker gives to raw bytes (it must be an error reply)."""
    reply = serde.decode(worker.recv_msg(data), (m.Reply, m.ErrorReply))[2]
    assert isinstance(reply, m.ErrorReply), reply
    return reply


def wire(doc: bytes, raw: bytes = b"") -> bytes:
    """A hand-made message: the document's length, the document, aligned, then raw bytes."""
    head = len(doc).to_bytes(4, "little") + doc
    return head + bytes(-len(head) % 16 if raw else 0) + raw


@pytest.fixture
def bob_with_data():
    bob = sy.VirtualWorker(None, id="bob")
    x = torch.tensor([1.0, 2.0]).send(bob)
    yield bob, x


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x02",
        b"Z",
        wire(b"\x94\x01\xa3abc"),  # truncated
        wire(b"\x95\x7f\xa1a\xa1b\xc0\xc0"),  # an unknown kind
        wire(b"\x96\x04\xa1a\xa3bob\x01\xa1r\x00"),  # a field too many
        pickle.dumps({"a": 1}),
        pickle.dumps(torch.tensor([1.0])),
        wire(msgpack.packb([1, "me", "bob", msgpack.ExtType(1, b"\xff\xff\xff\x7f"), None])),
        wire(msgpack.packb([1, "me", "bob", msgpack.ExtType(99, b""), None])),  # unknown ext
        wire(msgpack.packb([4, "me", "bob", 1, "r"])) + b"\x00",  # a stray byte after it
        wire(msgpack.packb([4, "me", "bob", 1, "r"]) + b"\x00"),  # a stray byte inside
        (2**30).to_bytes(4, "little") + b"\x94",  # a document longer than the bytes
    ],
)
def test_malformed_bytes_are_refused(bob_with_data, data):
    bob, _ = bob_with_data
    before = contents(bob)
    reply = answer(bob, data)
    assert reply.error == "SerdeError"
    assert unchanged(bob, before)


def test_pickle_payload_never_runs(bob_with_data, tmp_path):
    bob, _ = bob_with_data
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    before = contents(bob)
    reply = answer(bob, pickle.dumps(Evil()))
    assert reply.error == "SerdeError"
    assert not marker.exists()
    assert unchanged(bob, before)


def test_operations_outside_the_allowlist_are_refused_by_the_worker(bob_with_data):
    bob, _ = bob_with_data
    before = contents(bob)
    for op in [
        "os.system",
        "Tensor.__reduce_ex__",
        "builtins.eval",
        "torch.load",
        "Tensor.item",
        "torch.save",
        "Tensor.numpy",
        "",
        "Tensor.grad.__delete__",
        "Tensor.set_",
        "Tensor.as_strided",
        "Tensor.untyped_storage",
        "Tensor.apply_",
        "Tensor.register_hook",
    ]:
        reply = answer(bob, serde.encode("me", "bob", m.RunOp(op, (m.ObjRef(1),), {}, True)))
        assert reply.error == "OperationNotAllowedError", op
        assert repr(op) in reply.message
    assert unchanged(bob, before)


def test_an_unknown_id_is_refused(bob_with_data):
    bob, _ = bob_with_data
    before = contents(bob)
    for msg in [
        m.RunOp("Tensor.add", (m.ObjRef(99), 1), {}, True),
        m.Fetch(99),
        m.Move(99, "bob"),
        m.RemoteGet(99),
        m.Forward(99, "bob", "me"),
    ]:
        reply = answer(bob, serde.encode("me", "bob", msg))
        assert reply.error == "ObjectNotFoundError" and "99" in reply.message
    assert unchanged(bob, before)


@pytest.mark.parametrize(
    "fields",
    [
        (m.RunOp, (42, (), {}, True)),
        (m.RunOp, ("Tensor.add", (m.ObjRef(1),), {1: 2}, True)),  # a non-string keyword
        (m.RunOp, ("Tensor.add", (m.ObjRef(1),), {}, 1)),  # a grad flag that is no bool
        (m.SendObject, ("not a tensor", None)),
        (m.SendObject, (m.PointerRef("alice", 1, 5, "float32", False, True), None)),  # shape 5
        (m.SendObject, (m.PointerRef("alice", 1, (2,), "quint8", False, True), None)),
        (m.Fetch, ("1",)),
        (m.Fetch, (True,)),
        (m.Delete, ([1], "r")),
        (m.Move, (1, ["alice"])),
        (m.Move, (1, "nobody")),
        (m.Forward, (1, "bob", 3)),
        (m.ClearObjects, (None,)),
        (m.RunPlan, ("p", (m.ObjRef(1),), b"\x00garbage", ())),
        (m.Reply, (1,)),  # a reply is no request
        (m.Search, ([["#x"]],)),  # a tag that is no string (found by tests/test_fuzz.py)
        (m.SendObject, (m.PointerRef("alice", 1, (2,), "float32", False, True, [{}]), None)),
    ],
)
def test_wrongly_typed_fields_are_refused_with_a_serde_error(bob_with_data, fields, capfd):
    bob, _ = bob_with_data
    cls, values = fields
    before = contents(bob)
    raw = serde._Writer().message([serde.CODES[cls], "me", "bob", *values])
    reply = answer(bob, raw)
    assert reply.error in ("SerdeError", "WorkerNotFoundError"), reply
    assert unchanged(bob, before)
    assert "Exception ignored" not in capfd.readouterr().err


def test_the_codec_round_trips_what_it_accepts():
    values = [
        None,
        True,
        False,
        0,
        -(2**63),
        2**63 - 1,
        1.5,
        "héllo",
        b"\x00\xff",
        (1, [2, {"a": 3}]),
        ((0, 1), [0, 1]),  # tuples stay tuples, lists stay lists
        torch.Size([2, 3]),
        torch.float16,
        slice(1, None, 2),
        Ellipsis,
        torch.preserve_format,
        torch.device("cpu"),
        m.RunOp("Tensor.add", (m.ObjRef(1), 2.0), {"alpha": 3}, False),
        m.Stored(3, (2, 5), "float32", True, False, True),
        m.PointerRef("bob", 4, (), "int64", False, True),
        m.Slot(2, -1),
    ]
    for v in values:
        back = serde.decode_value(serde.encode_value(v))
        assert back == v and type(back) is type(v)
    assert type(serde.decode_value(serde.encode_value(((0, 1), [0, 1])))[0]) is tuple


@pytest.mark.parametrize(
    "t",
    [
        torch.randn(3, 4),
        torch.randn(3, 4, dtype=torch.float64).t(),  # a strided view
        torch.tensor(3.5),  # 0-d
        torch.zeros(0, 3),  # empty
        torch.randn(5).to(torch.bfloat16),  # no numpy dtype
        torch.randn(4, dtype=torch.complex64).conj(),  # a conjugate view
        torch.tensor([True, False]),
        torch.arange(6, dtype=torch.int8).view(2, 3),
        torch.randn(2, 2).neg(),
    ],
)
def test_tensors_round_trip_bit_for_bit(t):
    back = serde.decode_value(serde.encode_value(t))
    want = t.resolve_conj().resolve_neg()
    assert back.dtype == t.dtype and back.shape == t.shape
    assert torch.equal(back.view(torch.uint8) if t.dtype == torch.bfloat16 else back,
                       want.view(torch.uint8) if t.dtype == torch.bfloat16 else want)  # fmt: skip


def test_a_tensor_travels_with_its_gradient_and_flag():
    t = torch.randn(3, requires_grad=True)
    t.grad = torch.randn(3)
    back = serde.decode_value(serde.encode_value(t))
    assert back.requires_grad and torch.equal(back.grad, t.grad) and torch.equal(back, t)


def test_a_tensors_declared_size_must_match_its_bytes():
    good = serde.encode_value(torch.arange(4.0))
    assert torch.equal(serde.decode_value(good), torch.arange(4.0))
    for data in (good[:-1], good + bytes(16), good[:20], good[:-16]):
        with pytest.raises(SerdeError):
            serde.decode_value(bytes(data))


def test_a_received_tensor_is_used_where_it_arrived_and_copied_from_read_only_bytes():
    data = serde.encode_value(torch.arange(4.0))
    aliased, copied = serde.decode_value(data), serde.decode_value(bytes(data))
    aliased.add_(1)  # (a tensor made from a writable message owns that memory now)
    copied.add_(1)
    assert aliased.tolist() == copied.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_a_bool_tensor_byte_is_0_or_1_whatever_arrives():
    data = bytearray(serde.encode_value(torch.tensor([True, False, True])))
    data[-3] = 7  # a crafted byte
    back = serde.decode_value(bytes(data))
    assert back.tolist() == [True, False, True] and back.view(torch.uint8).max() == 1


def test_a_tuple_index_is_not_a_list_index(bob):
    x = torch.arange(12).view(3, 4)
    xp = x.send(bob)
    assert torch.equal(xp[(0, 1)].get(), x[(0, 1)])
    assert torch.equal(xp[[0, 1]].get(), x[[0, 1]])
    assert torch.equal(xp[..., 1:3].get(), x[..., 1:3])
    assert torch.equal(xp[None, 0].get(), x[None, 0])


def test_every_prefix_of_a_message_is_refused():
    for msg in [
        m.RunOp("F.mse_loss", (m.ObjRef(1), m.ObjRef(2)), {"reduction": "mean"}, True),
        m.SendObject(torch.randn(3, requires_grad=True), "me"),
        m.Reply(m.Stored(3, (2, 5), "float32", True, False, True)),
        m.Delete(3, "pointer me:4 died"),
    ]:
        data = serde.encode("me", "bob", msg)
        assert isinstance(msg, m.SendObject) or serde.decode(data)[2] == msg
        for cut in range(len(data)):
            with pytest.raises(SerdeError):
                serde.decode(data[:cut])


def test_the_codec_refuses_to_encode_arbitrary_objects():
    with pytest.raises(SerdeError, match="cannot send an object of type object"):
        serde.encode_value(object())
    with pytest.raises(SerdeError, match="does not fit in 64 bits"):
        serde.encode_value(2**70)
    with pytest.raises(SerdeError, match="cannot be sent as data"):
        serde.encode_value(torch.zeros(2).as_subclass(sy.Wrapper))


def test_a_local_check_matches_the_worker_check():
    x = torch.tensor([1.0]).send(sy.VirtualWorker(None, id="bob"))
    with pytest.raises(OperationNotAllowedError):
        x.pin_memory()


def test_a_message_for_another_worker_is_refused(bob_with_data):
    bob, _ = bob_with_data
    before = contents(bob)
    reply = answer(bob, serde.encode("me", "alice", m.Fetch(1)))
    assert reply.error == "SerdeError" and "alice" in reply.message
    assert unchanged(bob, before)
