"""Message traces: ``with sy.trace() as t: ...`` records every message of the block.

``t`` prints as a compact table (#, from, to, kind, summary, bytes); ``t.draw()``
is a sequence diagram with one lifeline per worker. It shows, for instance, that
``x.move(alice)`` sends the data from bob straight to alice, never through ``me``.
"""

from __future__ import annotations

from typing import Any

import torch

from fedlab import events
from fedlab.log import MessageEvent, messages
from fedlab.viz import style
from fedlab.viz.model import local_id
from fedlab.wrapper import is_pointer

HEAD, TAIL = 30, 5  # rows printed for a long trace: the first ones and the last ones
MAX_DRAWN = 40  # arrows in a sequence diagram


class Trace:
    """The messages sent while the ``with sy.trace() as t:`` block ran."""

    def __init__(self) -> None:
        self._log: list[events.Exchange] = []  # as published: inner exchanges first
        self._events: list[MessageEvent] | None = []
        self._subscription: events.Subscription | None = None

    def __enter__(self) -> Trace:
        self._log.clear()
        self._events = []
        self._subscription = events.subscribe(self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop recording (leaving the ``with`` block does this)."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def _record(self, e: Any) -> None:
        if type(e) is events.Exchange:
            self._log.append(e)
            self._events = None

    @property
    def events(self) -> list[MessageEvent]:
        """The messages, requests and replies, in the order they travelled."""
        if self._events is None:
            self._events = messages(self._log)
        return self._events

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self):
        return iter(self.events)

    def __getitem__(self, i: int) -> MessageEvent:
        return self.events[i]

    @property
    def workers(self) -> list[str]:
        """The workers that sent or received a message: ``me`` first, then by first appearance."""
        seen: dict[str, None] = {}
        me = local_id()
        if me is not None and any(me in (e.sender, e.receiver) for e in self.events):
            seen[me] = None
        for e in self.events:
            seen.setdefault(e.sender)
            seen.setdefault(e.receiver)
        return list(seen)

    @property
    def nbytes(self) -> int:
        """The bytes of all recorded messages."""
        return sum(e.nbytes for e in self.events)

    def _rows(self) -> tuple[list[tuple[int, MessageEvent]], int]:
        numbered = list(enumerate(self.events, 1))
        if len(numbered) <= HEAD + TAIL:
            return numbered, 0
        return numbered[:HEAD] + numbered[-TAIL:], len(numbered) - HEAD - TAIL

    def __repr__(self) -> str:
        n = len(self.events)
        head = f"trace: {n} message{'' if n == 1 else 's'}, {style.nbytes(self.nbytes)}"
        if not n:
            return head
        rows, hidden = self._rows()
        cells = [("#", "from", "to", "kind", "summary", "bytes")]
        for i, e in rows:
            cells.append((str(i), e.sender, e.receiver, e.kind, e.summary, str(e.nbytes)))
            if hidden and i == HEAD:
                cells.append(("...", "", "", "", f"{hidden} more messages", ""))
        widths = [max(len(r[k]) for r in cells) for k in range(6)]
        lines = [
            "  ".join(
                c.rjust(w) if k in (0, 5) else c.ljust(w) for k, (c, w) in enumerate(zip(r, widths))
            ).rstrip()
            for r in cells
        ]
        return "\n".join([head, *lines])

    def _repr_html_(self) -> str:
        rows, hidden = self._rows()
        td = "padding:1px 8px;white-space:nowrap"
        body = []
        for i, e in rows:
            dim = "color:#6b7280;" if e.kind in ("reply", "error") else ""
            body.append(
                f'<tr style="{dim}"><td style="{td};text-align:right">{i}</td>'
                f'<td style="{td};color:{style.colour(e.sender)};font-weight:600">'
                f"{style.esc(e.sender)}</td>"
                f'<td style="{td};color:{style.colour(e.receiver)};font-weight:600">'
                f"&rarr; {style.esc(e.receiver)}</td>"
                f'<td style="{td}">{style.esc(e.kind)}</td>'
                f'<td style="{td};font-family:{style.MONO}">{style.esc(e.summary)}</td>'
                f'<td style="{td};text-align:right">{e.nbytes}</td></tr>'
            )
            if hidden and i == HEAD:
                body.append(
                    f'<tr><td colspan="6" style="{td};color:#6b7280">... {hidden} more</td></tr>'
                )
        head = "".join(
            f'<th style="{td};text-align:left;border-bottom:1px solid #d1d5db">{h}</th>'
            for h in ("#", "from", "to", "kind", "summary", "bytes")
        )
        n = len(self.events)
        return (
            f'<div class="fedlab-trace" style="font-family:{style.SANS};font-size:12px">'
            f'<div style="font-weight:600">trace: {n} message{"" if n == 1 else "s"}, '
            f"{style.esc(style.nbytes(self.nbytes))}</div>"
            f'<table style="border-collapse:collapse"><tr>{head}</tr>{"".join(body)}</table></div>'
        )

    def where(self, keep: Any) -> Trace:
        """A trace of only the messages for which ``keep(message)`` is true, in order."""
        out = Trace()
        out._events = [e for e in self.events if keep(e)]
        return out

    def tensors(self) -> Trace:
        """Only the messages that carried a tensor's values (a send, or a reply with values).

        What travelled, without the requests and replies that carry only ids or names:
        ``t.tensors().draw()`` draws a model's journey.
        """
        return self.where(carries_tensor)

    def draw(self, max_messages: int = MAX_DRAWN) -> Any:
        """A sequence diagram (matplotlib Figure): lifelines per worker, one arrow per message."""
        from fedlab.viz.sequence import sequence_diagram

        return sequence_diagram(self.events, self.workers, max_messages)


def carries_tensor(message: MessageEvent) -> bool:
    """True when the message carried a tensor's values (not only ids, names or shapes)."""
    payload = message.payload
    value = getattr(payload, "obj", getattr(payload, "value", None))
    # a pointer travelling in a message is a reference, not values
    return isinstance(value, torch.Tensor) and not is_pointer(value)


def trace() -> Trace:
    """Record the messages sent inside ``with sy.trace() as t:``; then show ``t``, ``t.draw()``."""
    return Trace()
