"""What the views show of secret sharing: labelled shares, one value split, where values go."""

from __future__ import annotations

import random

import pytest
import torch

import fedlab as sy
from fedlab.viz.shared import beaver_by_hand, draw_beaver, draw_flows, flows


@pytest.fixture
def ws(me):
    return [sy.VirtualWorker(me.hook, id=i) for i in ("bob", "alice", "james")]


def test_the_panel_names_each_share_next_to_its_secret(ws, me):
    bob, alice, james = ws
    panel = sy.watch(bob, alice, james, me)
    try:
        x = torch.tensor([7, 8]).share(bob, alice, crypto_provider=james)
        number = x.child.number
        text = repr(panel)
        assert "bob:1  tensor  int64[2]" in text and f"(share 1/2 of #{number})" in text
        assert f"(share 2/2 of #{number})" in text
        assert "me:1 -> bob:1" in text and text.count(f"of #{number})") == 4  # stores and me
        assert f"[AdditiveSharingTensor #{number}]" in repr(x)
        x.get()
        assert f"of #{number})" not in repr(panel)  # fetched: the labels go with the shares
    finally:
        panel.close()


def test_draw_of_a_shared_tensor_is_one_value_split_over_workers(ws):
    bob, alice, james = ws
    x = torch.tensor([0.5, 1.5]).fix_prec().share(bob, alice, crypto_provider=james)
    fig = sy.draw(x)
    assert repr(fig) == (
        f"<shared tensor #{x.child.child.child.number}: 2 shares on bob, alice; "
        "crypto provider james>"
    )
    gids = {a.get_gid() for a in fig.axes[0].patches}
    assert {"secret", "share:bob", "share:alice", "provider:james"} <= gids
    assert len(fig._repr_png_()) > 10_000


def test_flows_show_the_triples_coming_from_the_provider(ws):
    bob, alice, james = ws
    x = torch.tensor([5]).share(bob, alice, crypto_provider=james)
    y = torch.tensor([7]).share(bob, alice, crypto_provider=james)
    with sy.trace() as t:
        z = x * y
    pairs = flows(t)
    assert pairs[("james", "bob")][0] == pairs[("james", "alice")][0] == 3  # a, b and c
    assert ("bob", "james") not in pairs and ("alice", "james") not in pairs
    assert sy.secure.carries(t, torch.tensor([5])) == []
    assert sy.secure.carries(t, torch.tensor([35])) == []
    assert repr(draw_flows(t, "x * y")).startswith("<x * y: ")
    assert z.get().item() == 35


def test_beaver_by_hand_multiplies_for_any_values():
    rng = random.Random(0)
    for seed in range(50):
        x, y, q = rng.randrange(1000), rng.randrange(1000), rng.choice([101, 1000, 2**16])
        s = beaver_by_hand(x, y, q, seed)
        assert s["z"] == x * y % q and sum(s["z_sh"]) % q == s["z"]
        assert s["eps"] == (x - s["a"]) % q and s["delta"] == (y - s["b"]) % q
    fig = draw_beaver(beaver_by_hand(5, 7))
    assert "add up to 35" in repr(fig)
