"""The secure lessons' practice checks (16-20): right answers pass, typical wrong ones fail
with the sentence that says what to do, and a check sends no message."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

import fedlab as sy
from fedlab.viz import practice

Q = 23740629843760239486723  # the course's Q (lessons 16 and 17)


def _check(name: str, ns: dict) -> practice.Feedback:
    """The check's feedback, and that it sent no message."""
    with sy.trace() as t:
        result = practice.check(name, namespace=ns)
    assert len(t) == 0, "a check must send no message"
    return result


def _failure(result: practice.Feedback) -> str:
    assert not result.passed and repr(result).endswith("Not yet: fix the ✗ and run again.")
    return result.steps[-1][1]


# -- 16: share-arithmetic ---------------------------------------------------------------------


def _right_sub(a, b):
    return tuple((a_i - b_i) % Q for a_i, b_i in zip(a, b))


def _right_imul(a, scalar):
    return tuple((a_i * scalar) % Q for a_i in a)


def test_share_arithmetic_passes_share_by_share_and_leaves_random_alone():
    random.seed(3)
    before = random.getstate()
    result = _check("share-arithmetic", {"Q": Q, "sub": _right_sub, "imul": _right_imul})
    assert result.passed, repr(result)
    assert random.getstate() == before, "the check drew from the notebook's random"


def test_share_arithmetic_rejects_unsolved_decrypting_and_unreduced_answers():
    def unsolved(a, b):
        """The shares of a - b."""
        # your code here

    ns = {"Q": Q, "sub": unsolved, "imul": unsolved}
    assert "`sub` returns nothing yet" in _failure(_check("share-arithmetic", ns))

    def decrypting(a, b):  # right sum, but it decrypts both secrets to get there
        secret = (sum(a) - sum(b)) % Q
        return (secret, 0, 0)

    ns["sub"] = decrypting
    assert "each party may use only its own shares" in _failure(_check("share-arithmetic", ns))

    ns["sub"] = lambda a, b: tuple(a_i - b_i for a_i, b_i in zip(a, b))
    assert "take each modulo Q" in _failure(_check("share-arithmetic", ns))

    ns["sub"] = _right_sub
    ns["imul"] = lambda a, s: tuple(a_i * s for a_i in a[:2])
    assert "one share per party (3 here)" in _failure(_check("share-arithmetic", ns))


# -- 17: fixed-precision-product --------------------------------------------------------------


def _signed(v):
    return v if v <= Q / 2 else v - Q


def _right_mul(a, b):
    return (_signed(a) * _signed(b) // 10**4) % Q


FIXED = {"Q": Q, "BASE": 10, "PRECISION": 4}


def test_fixed_precision_product_passes_the_lessons_solution():
    result = _check("fixed-precision-product", {**FIXED, "mul": _right_mul})
    assert result.passed, repr(result)


@pytest.mark.parametrize(
    ("mul", "sentence"),
    [
        (lambda a, b: None, "`mul` returns nothing yet"),
        (lambda a, b: _signed(a) * _signed(b) / 10**4, "keep integers"),
        (lambda a, b: a * b % Q, "at twice the scale"),
        (lambda a, b: a * b // 10**4 % Q, "make a and b signed first"),
        (lambda a, b: _signed(a) * _signed(b) // 10**4, "take the result modulo Q"),
        (lambda a, b: int(_signed(a) * _signed(b) / 10**4) % Q, "floor division"),  # toward 0
        (lambda a, b: (_signed(a) * _signed(b) + 5000) // 10**4 % Q, "floor division"),  # nearest
        (
            lambda a, b: round(_signed(a) / 10**4 * (_signed(b) / 10**4) * 10**4) % Q,
            "a float cannot hold it exactly",  # decoded, multiplied, encoded again
        ),
        (
            lambda a, b: math.floor(_signed(a) * _signed(b) / 10**4) % Q,
            "a float cannot hold it exactly",  # floor, but of a float division
        ),
    ],
)
def test_fixed_precision_product_says_what_is_wrong(mul, sentence):
    assert sentence in _failure(_check("fixed-precision-product", {**FIXED, "mul": mul}))


# -- 18: shared-product ------------------------------------------------------------------------

X, Y = torch.tensor([0.5, -1.25, 2.0]), torch.tensor([4.0, 0.5, -0.75])


@pytest.fixture
def secure_worker():
    return sy.VirtualWorker(sy.local_worker.hook, id="secure_worker")


def _shared(values, *parties, provider):
    return values.fix_precision().share(*parties, crypto_provider=provider)


def test_shared_product_passes_a_product_on_shares(bob, alice, secure_worker):
    my_x = _shared(X, bob, alice, provider=secure_worker)
    my_y = _shared(Y, bob, alice, provider=secure_worker)
    with sy.trace() as my_trace:
        my_product = (my_x * my_y).get().float_precision()
    ns = {"my_x": my_x, "my_y": my_y, "my_trace": my_trace, "my_product": my_product}
    result = _check("shared-product", ns)
    assert result.passed, repr(result)
    assert len(result.steps) == 7


def test_shared_product_rejects_unsolved_and_typical_mistakes(bob, alice, secure_worker):
    with sy.trace() as my_trace:
        pass
    ns = {"my_x": ..., "my_y": ..., "my_trace": my_trace, "my_product": ...}
    assert "`my_x` is still `...`" in _failure(_check("shared-product", ns))

    ns["my_x"] = X.fix_precision()
    assert "encoded but not shared yet" in _failure(_check("shared-product", ns))

    ns["my_x"] = _shared(X, bob, alice, provider=sy.local_worker)  # no provider named: me
    assert "with me: share it with .share(bob, alice, crypto_provider=secure_worker)" in (
        _failure(_check("shared-product", ns))
    )

    ns["my_x"] = _shared(Y, bob, alice, provider=secure_worker)
    assert "`my_x`'s shares add up to [4.0, 0.5, -0.75]" in _failure(_check("shared-product", ns))

    ns["my_x"] = _shared(X, bob, alice, provider=secure_worker)
    ns["my_y"] = _shared(Y, bob, alice, provider=secure_worker)
    product = ns["my_x"] * ns["my_y"]  # multiplied outside the with block
    with sy.trace() as ns["my_trace"]:
        ns["my_product"] = product.get().float_precision()
    assert "secure_worker sent nothing" in _failure(_check("shared-product", ns))

    with sy.trace() as ns["my_trace"]:
        ns["my_product"] = ns["my_x"] * ns["my_y"]  # not decrypted
    assert "`my_product` is still shared" in _failure(_check("shared-product", ns))

    with sy.trace() as ns["my_trace"]:
        ns["my_product"] = (ns["my_x"] + ns["my_y"]).get().float_precision()  # + is free
    assert "secure_worker sent nothing" in _failure(_check("shared-product", ns))
    ns["my_trace"] = my_trace_with_triple = _traced_product(ns)
    assert my_trace_with_triple
    assert "but x * y is [2.0, -0.625, -1.5]" in _failure(_check("shared-product", ns))


def _traced_product(ns):
    with sy.trace() as t:
        (ns["my_x"] * ns["my_y"]).get()
    return t


# -- 19: encrypted-average ---------------------------------------------------------------------


@pytest.fixture
def james():
    return sy.VirtualWorker(sy.local_worker.hook, id="james")


def _updates(bob, alice):
    return torch.tensor([0.5, -1.25, 0.75]).send(bob), torch.tensor([0.25, 0.5, -1.5]).send(alice)


def _share_where_it_lives(update, bob, alice, james):
    return update.copy().fix_precision().share(bob, alice, crypto_provider=james).get()


def test_encrypted_average_passes_the_lessons_aggregation(bob, alice, james):
    bob_update, alice_update = _updates(bob, alice)
    with sy.trace() as my_trace:
        shared = [_share_where_it_lives(u, bob, alice, james) for u in (bob_update, alice_update)]
        my_average = (shared[0] + shared[1]).get().float_precision() / 2
    ns = {"bob_update": bob_update, "alice_update": alice_update, "my_trace": my_trace,
          "my_average": my_average}  # fmt: skip
    result = _check("encrypted-average", ns)
    assert result.passed, repr(result)
    assert "tensor(" not in repr(result)


def test_encrypted_average_catches_an_update_that_travelled_or_was_decrypted(bob, alice, james):
    bob_update, alice_update = _updates(bob, alice)
    ns = {"bob_update": bob_update, "alice_update": alice_update, "my_average": ...}
    with sy.trace() as ns["my_trace"]:
        pass
    assert "`my_average` is still `...`" in _failure(_check("encrypted-average", ns))

    ns["my_average"] = torch.tensor([0.375, -0.375, -0.375])  # the right numbers, typed in
    assert "no share went from bob to alice" in _failure(_check("encrypted-average", ns))

    with sy.trace() as ns["my_trace"]:  # the plain average: the server sees both updates
        ns["my_average"] = (bob_update.copy().get() + alice_update.copy().get()) / 2
    assert "bob's update travelled (bob -> me" in _failure(_check("encrypted-average", ns))

    with sy.trace() as ns["my_trace"]:  # shared where they live, but decrypted one by one
        b, a = (_share_where_it_lives(u, bob, alice, james) for u in (bob_update, alice_update))
        ns["my_average"] = (b.get().float_precision() + a.get().float_precision()) / 2
    assert "you decrypted bob's update on its own" in _failure(_check("encrypted-average", ns))

    with sy.trace() as ns["my_trace"]:  # right, but not divided by two
        b, a = (_share_where_it_lives(u, bob, alice, james) for u in (bob_update, alice_update))
        ns["my_average"] = (b + a).get().float_precision()
    assert "divide by 2" in _failure(_check("encrypted-average", ns))

    ns["bob_update"] = bob_update.get()
    assert "`bob_update` is no longer on bob" in _failure(_check("encrypted-average", ns))


# -- 20: encrypted-prediction ------------------------------------------------------------------


@pytest.fixture
def inference(bob, alice):
    """A shared classifier, images and their plain predictions, as lesson 20 has them."""
    provider = sy.VirtualWorker(sy.local_worker.hook, id="crypto_provider")
    torch.manual_seed(0)
    client_x = torch.rand(60, 4)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    with torch.no_grad():
        plain_predictions = model(client_x).argmax(1)
    model.fix_precision().share(alice, bob, crypto_provider=provider)
    return {"client_x": client_x, "plain_predictions": plain_predictions, "model": model,
            "provider": provider, "alice": alice, "bob": bob}  # fmt: skip


def _images(inf, rows=slice(50, 55)):
    x = inf["client_x"][rows]
    return x.fix_precision().share(inf["alice"], inf["bob"], crypto_provider=inf["provider"])


def test_encrypted_prediction_passes_when_only_the_digits_are_decrypted(inference):
    my_images = _images(inference)
    with sy.trace() as my_trace, torch.no_grad():
        my_prediction = inference["model"](my_images).argmax(dim=1).get().float_precision()
    ns = {**inference, "my_images": my_images, "my_trace": my_trace,
          "my_prediction": my_prediction.long()}  # fmt: skip
    result = _check("encrypted-prediction", ns)
    assert result.passed, repr(result)


def test_encrypted_prediction_catches_decrypted_scores_and_wrong_images(inference):
    my_images = _images(inference)
    with sy.trace() as my_trace, torch.no_grad():
        scores = inference["model"](my_images).get().float_precision()
    ns = {**inference, "my_images": my_images, "my_trace": my_trace,
          "my_prediction": scores.argmax(1)}  # fmt: skip
    assert "values of shape [5, 3] came to you" in _failure(_check("encrypted-prediction", ns))

    ns["my_images"] = _images(inference, slice(0, 5))
    assert (
        "`my_images`'s shares add up to other values (of shape [5, 4]), not client_x[50:55]"
        in _failure(_check("encrypted-prediction", ns))
    )

    ns["my_images"] = inference["client_x"][50:55]
    assert "`my_images` is not shared yet" in _failure(_check("encrypted-prediction", ns))
