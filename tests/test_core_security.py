"""Safe by construction: crafted messages are refused and change no store."""

from __future__ import annotations

import pickle

import pytest
import torch

import fedlab as sy
from fedlab import messages as m
from fedlab import serde
from fedlab.exceptions import OperationNotAllowedError, SerdeError


def contents(w):
    return {k: v.clone() for k, v in w._objects.items()}


def unchanged(w, before):
    now = w._objects
    return now.keys() == before.keys() and all(torch.equal(now[k], before[k]) for k in now)


def answer(worker, msg_bytes):
    reply = serde.decode(worker.recv_msg(msg_bytes))
    assert isinstance(reply, m.ErrorReply), reply
    return reply


@pytest.fixture
def bob_with_data():
    bob = sy.VirtualWorker(None, id="bob")
    x = torch.tensor([1.0, 2.0]).send(bob)
    yield bob, x


def envelope(msg):
    return serde.encode(m.Envelope("mallory", "bob", msg))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x02",
        b"Z",
        b"s\xff\xff\xff\xff",
        b"l\xff\xff\xff\x7f",
        b"M\xfe",
        pickle.dumps({"a": 1}),
        pickle.dumps(torch.tensor([1.0])),
        b"X" + b"s\x07\x00\x00\x00float32" + b"\x01" + (2**40).to_bytes(8, "little") + b"\x00",
    ],
)
def test_malformed_bytes_are_refused(bob_with_data, data):
    bob, _ = bob_with_data
    before = contents(bob)
    reply = answer(bob, data)
    assert reply.kind == "SerdeError"
    assert unchanged(bob, before)


def test_pickle_payload_never_runs(bob_with_data, tmp_path):
    bob, _ = bob_with_data
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    before = contents(bob)
    reply = answer(bob, pickle.dumps(Evil()))
    assert reply.kind == "SerdeError"
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
    ]:
        reply = answer(bob, envelope(m.RunOp(op, (m.ObjRef(1),), {}, True)))
        assert reply.kind == "OperationNotAllowedError", op
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
    ]:
        reply = answer(bob, envelope(msg))
        assert reply.kind == "ObjectNotFoundError" and "99" in reply.message
    assert unchanged(bob, before)


def test_wrongly_typed_fields_are_refused(bob_with_data):
    bob, _ = bob_with_data
    before = contents(bob)
    for msg in [
        m.RunOp(42, (), {}, True),
        m.RunOp("Tensor.add", [m.ObjRef(1)], {}, True),
        m.SendObject("not a tensor"),
        m.Fetch("1"),
        m.Move(1, "nobody"),
        m.Reply(1),
    ]:
        answer(bob, envelope(msg))
    assert unchanged(bob, before)


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
        torch.Size([2, 3]),
        torch.float16,
        slice(1, None, 2),
        Ellipsis,
        torch.preserve_format,
        m.RunOp("Tensor.add", (m.ObjRef(1), 2.0), {"alpha": 3}, False),
    ]
    for v in values:
        assert serde.decode(serde.encode(v)) == v
    t = torch.randn(3, 4)
    assert torch.equal(serde.decode(serde.encode(t)), t)


def test_big_tensors_are_joined_into_the_same_bytes_and_round_trip():
    # Big buffers are set aside while a message is written and joined in at the end;
    # the bytes must be those of writing everything in order, and decode to the values.
    big = torch.randn(300, 200, requires_grad=True)
    big.grad = torch.randn(300, 200)
    values = [
        big,
        (torch.arange(70_000.0), 7, torch.randn(200, 300).t(), "tail"),  # a strided view
        m.SendObject(torch.randn(40_000, dtype=torch.float64)),
        torch.randn(40_000).to(torch.bfloat16),  # no numpy dtype
        torch.randn(20_000, dtype=torch.complex64).conj(),  # a conj view
    ]
    for v in values:
        in_order = bytearray()
        serde._enc(v, in_order, 0)
        data = serde.encode(v)
        assert data == bytes(in_order) and type(data) is bytes
        assert serde.encode_envelope("me", "bob", v) == serde.encode(m.Envelope("me", "bob", v))
        back = serde.decode(data)
        got = [back] if not isinstance(v, (tuple, m.SendObject)) else back
        want = [v] if not isinstance(v, (tuple, m.SendObject)) else v
        if isinstance(v, m.SendObject):
            got, want = [back.obj], [v.obj]
        for g, w in zip(got, want):
            if isinstance(w, torch.Tensor):
                assert torch.equal(g, w.resolve_conj()) and g.dtype == w.dtype
            else:
                assert g == w
    assert torch.equal(serde.decode(serde.encode(big)).grad, big.grad)


def test_the_codec_refuses_to_encode_arbitrary_objects():
    with pytest.raises(SerdeError, match="cannot send an object of type object"):
        serde.encode(object())
    with pytest.raises(SerdeError, match="too large"):
        serde.encode(2**70)


def test_a_local_check_matches_the_worker_check():
    x = torch.tensor([1.0]).send(sy.VirtualWorker(None, id="bob"))
    with pytest.raises(OperationNotAllowedError):
        x.pin_memory()


def test_compact_forms_round_trip_and_fall_back_for_odd_values():
    values = [
        m.ObjRef(7),
        m.ObjRef(-(2**63)),
        m.ObjRef("not an int"),  # a crafted value takes the general form
        m.Stored(3, (2, 5), "float32", True, False, True),
        m.Stored(3, (), "int64", False, True, False),
        m.Stored(3, (1.5,), "float32", False, True, False),
        m.Stored(3, (2,), "float32", 1, True, False),
        m.Reply((m.Stored(1, (3,), "bool", False, True, False), None)),
        m.Stored(3, (2,), "quint8", False, True, False),  # a dtype name outside the table
        m.Envelope("me", "bob", m.RunOp("Tensor.add", (m.ObjRef(1), 2, 0.5), {}, True)),
        m.Envelope("me", "bob", m.RunOp("Tensor.add", (m.ObjRef(1), True, None), {}, False)),
        m.Envelope("me", "bob", m.RunOp("Tensor.sum", (m.ObjRef(1),), {"dim": 0}, True)),
        m.Envelope(
            "me",
            "bob",
            m.RunOp("F.mse_loss", (m.ObjRef(1), m.ObjRef(2)), {"reduction": "mean"}, True),
        ),
        m.Envelope("me", "bob", m.RunOp("Tensor.add_", (m.ObjRef(1),), {"alpha": -0.1}, False)),
        m.Envelope("bob", "me", m.RunOp("Tensor.add", (m.ObjRef(1),), {"me": "é"}, True)),
        m.Envelope("me", "bob", m.RunOp("Tensor.add", (m.ObjRef(1),), {"x": "a" * 70}, True)),
        m.Envelope("me", "bob", m.RunOp("Tensor.add", (m.ObjRef(1),), {"x": [1]}, True)),
        m.Envelope("me", "bob", m.RunOp("Tensor.add", (m.ObjRef(True),), {}, True)),
        m.Envelope("me", "bob", m.RunOp("Tensor.add", [m.ObjRef(1)], {}, 1)),
        m.Envelope("me", "x" * 300, m.RunOp("é" * 200, (), {}, True)),  # long names
        m.Envelope("me", "y" * 200, m.RunOp("z" * 100, (), {}, True)),  # a long head
        m.Envelope(7, "bob", m.Delete(3, "pointer me:4 died")),
        m.Envelope("me", "bob", m.Delete(3, b"odd")),
        m.Reply(None),
        m.Reply(3),
    ]
    for v in values:
        back = serde.decode(serde.encode(v))
        assert back == v and type(back) is type(v)
        assert all(type(getattr(back, f)) is type(getattr(v, f)) for f in type(v)._fields)


def test_a_pointer_operation_sends_and_gets_the_canonical_bytes(monkeypatch):
    """The fast lane (values straight to bytes, stored result straight to a reply) writes
    exactly what ``serde.encode`` writes for the same messages, so traces and other
    decoders read the same thing."""
    bob = sy.VirtualWorker(None, id="bob")
    x, y = torch.tensor([1.0, 2.0], requires_grad=True).send(bob), torch.ones(2).send(bob)
    seen: list = []
    recv = bob.recv_msg
    monkeypatch.setattr(
        bob, "recv_msg", lambda data: seen.append((data, recv(data))) or seen[-1][1]
    )
    results = [x + y, torch.nn.functional.mse_loss(x, y, reduction="sum"), x.mul(2.5)]
    y.add_(x, alpha=-0.5)
    assert len(seen) == 4
    for data, reply in seen:
        env = serde.decode(data)
        assert data[:1] == b"Q" and serde.encode(env) == data
        assert type(env.msg) is m.RunOp and env.sender == "me" and env.receiver == "bob"
        assert reply[:2] == b"PS" and serde.encode(serde.decode(reply)) == reply
        assert serde.stored_reply_value(reply) == serde.decode(reply).value
        for cut in range(2, len(reply)):  # a cut stored reply is refused, never misread
            with pytest.raises(SerdeError):
                serde.stored_reply_value(reply[:cut])
        with pytest.raises(SerdeError):
            serde.stored_reply_value(reply + b"\x00")
    assert [r.id_at_location for r in results] == [3, 4, 5]
    seen.clear()
    del results  # three deletes, written and read by their own fast lane too
    deletes = sorted((serde.decode(data).msg for data, _ in seen), key=lambda d: d.id)
    assert deletes == [m.Delete(i, f"pointer me:{i} died") for i in (3, 4, 5)]
    for data, reply in seen:
        assert serde.encode(serde.decode(data)) == data and reply == serde.encode(m.Reply(None))
    before = contents(bob)
    data = serde.delete_bytes("me", "bob", 1, "pointer me:1 died")  # x's object, cut short:
    assert data == serde.encode(m.Envelope("me", "bob", m.Delete(1, "pointer me:1 died")))
    for cut in range(4, len(data)):
        assert isinstance(answer(bob, data[:cut]), m.ErrorReply)
    assert isinstance(answer(bob, data + b"!"), m.ErrorReply)
    assert unchanged(bob, before)


@pytest.mark.parametrize(
    "msg",
    [
        m.Reply(m.Stored(3, (2, 5), "float32", True, False, True)),
        m.Envelope("me", "bob", m.RunOp("Tensor.__add__", (m.ObjRef(1), 2, 0.5), {}, True)),
        m.Envelope(
            "me",
            "bob",
            m.RunOp("F.mse_loss", (m.ObjRef(1), None), {"reduction": "mean", "x": True}, True),
        ),
        m.Envelope("me", "bob", m.Delete(3, "pointer me:4 died")),
    ],
)
def test_truncated_compact_forms_are_refused(msg):
    data = serde.encode(msg)
    for cut in range(len(data)):  # every prefix is refused with a SerdeError, never a crash
        with pytest.raises(SerdeError):
            serde.decode(data[:cut])


def _request(head: bytes, rest: bytes = b"", names: bytes = b"\x02\x03mebob") -> bytes:
    """A compact operation request: Q, sender and receiver, the op head's length and bytes."""
    return b"Q" + names + bytes([len(head)]) + head + rest


@pytest.mark.parametrize(
    "data",
    [
        _request(bytes([3, 1, 0, 0]) + b"add", names=b"\x02\x03me\xffob"),  # a name not UTF-8
        _request(bytes([3, 1, 0, 0]) + b"\xffdd"),  # an operation name that is not UTF-8
        _request(bytes([3, 2, 0, 0]) + b"add"),  # a grad flag that is not 0 or 1
        _request(bytes([3, 1, 1, 0]) + b"addZ", bytes(8)),  # an unknown argument code
        _request(bytes([3, 1, 0, 1, 1]) + b"addxs", b"\x02\xff\xfe"),  # a string not ASCII
        _request(bytes([3, 1, 2, 0]) + b"addR"),  # fewer codes than values
        _request(bytes([9, 1, 0, 0]) + b"add"),  # names longer than the head
        _request(bytes([3, 1, 1, 0]) + b"addR", bytes(9)),  # a stray byte
        b"Q\x02\x03mebob\x20" + bytes(8),  # an op head longer than the message
        b"Q\x02\x09mebob\x00",  # names longer than the message
        b"S" + bytes(8) + b"\x00\xff\x00",  # an unknown dtype code
        b"S" + bytes(8) + b"\x00\x00\x09",  # unknown flags
    ],
)
def test_malformed_compact_forms_are_refused(data):
    with pytest.raises(SerdeError):
        serde.decode(data)
