"""Fuzzing every message kind and the Ray frames: only SerdeError, no store changed."""

from __future__ import annotations

from fedlab import messages as m
from tests.support import fuzz

KINDS = {
    c.__name__
    for c in (m.SendObject, m.RunOp, m.Fetch, m.Delete, m.Move, m.RemoteGet, m.ClearObjects,
              m.Forward, m.Search, m.RunPlan, m.Reply, m.ErrorReply)
}  # fmt: skip


def test_the_corpus_holds_every_message_kind_and_ray_frames():
    messages, frames, kinds = fuzz.record()
    assert kinds == KINDS
    assert frames and len(messages) > 50


def test_mutated_messages_and_frames_break_no_rule(capfd):
    """A small campaign in CI (``make fuzz`` runs a large one): every rule holds."""
    result = fuzz.campaign(20000, seed=1)
    assert result.failures == [], "\n".join(f"{w}: {d[:80]!r}" for w, d in result.failures)
    # The fuzzer bites: most inputs are refused, some still decode and run.
    assert result.outcomes["SerdeError"] > 10000
    assert result.outcomes["accepted"] > 100
    assert len(result.outcomes) >= 4
    assert "Exception ignored" not in capfd.readouterr().err
