"""The panel's two faces: a compact text table (for nbval and terminals) and HTML.

Both are pure functions of a ``StoreModel``: same events in, same text out.
"""

from __future__ import annotations

from fedlab.secure.labels import label
from fedlab.viz import style
from fedlab.viz.model import Entry, StoreModel

MAX_ROWS = 12  # objects listed per worker; the rest are counted


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _cells(e: Entry) -> tuple[str, str, str, str, str]:
    mark = "x" if e.reason is not None else "+" if e.new else " "
    ref = f"{e.ref} -> {e.target}" if e.target else e.ref
    if e.reason is not None:
        detail = f"deleted: {e.reason}"
    elif e.kind == "tensor":
        obj = e.value()
        detail = style.preview(obj) if obj is not None else ""
    else:
        detail = ""
    if e.reason is None:  # what the secure layer made it: "share 1/2 of #3", "beaver a 2/2"
        where, _, i = (e.target or e.ref).partition(":")
        what = label(where, int(i)) if i.isdigit() else None
        detail = f"{detail}  ({what})".strip() if what else detail
    return mark, ref, e.kind, e.shape, detail


def _counter(model: StoreModel, w: str) -> str:
    m_in, b_in, m_out, b_out = model.counts(w)
    return (
        f"in {_plural(m_in, 'msg')} {style.nbytes(b_in)}, "
        f"out {_plural(m_out, 'msg')} {style.nbytes(b_out)}"
    )


def _listing(model: StoreModel, w: str, entries: list[Entry]) -> tuple[list[Entry], list[str]]:
    """The entries to list and the notes about those left out."""
    notes = []
    alive = [e for e in entries if e.reason is None]
    if len(alive) > MAX_ROWS:
        extra = alive[MAX_ROWS:]
        left_out = {id(e) for e in extra}  # by identity: comparing entries is quadratic
        entries = [e for e in entries if id(e) not in left_out]
        notes.append(f"... and {_plural(len(extra), 'more object')}")
    hidden = model.hidden(w)
    if hidden:
        notes.append(f"... and {hidden} more deleted")
    return entries, notes


def text(model: StoreModel, closed: bool = False) -> str:
    """The panel as a text table: one section per worker."""
    lines = [f"fedlab panel: {', '.join(model.ids)}" + (" (closed)" if closed else "")]
    for w in model.ids:
        every = model.entries(w)
        n = model.stored_count(w)
        held = sum(1 for e in every if e.reason is None) - n
        entries, notes = _listing(model, w, every)
        what = _plural(n, "object")
        if held:  # the local worker's pointers live in variables, not in its store
            what = (f"{what}, " if n else "") + f"{_plural(held, 'pointer')} held"
        lines.append(f"{w}  {what}; {_counter(model, w)}")
        lines.extend(style.table([_cells(e) for e in entries], indent="  "))
        lines.extend("  " + note for note in notes)
    return "\n".join(lines)


def _row_html(e: Entry, compact: bool = False) -> str:
    _, ref, kind, shape, detail = _cells(e)
    state = "deleted" if e.reason is not None else "new" if e.new else "live"
    bg = {"deleted": style.GONE_BG, "new": style.NEW_BG}.get(state, "transparent")
    strike = "text-decoration:line-through;color:#991b1b;" if state == "deleted" else ""
    badge = {"new": "new", "deleted": "deleted"}.get(state, "")
    if e.target:
        loc = e.target.split(":", 1)[0]
        ref_html = (
            f'<span style="{strike}">{style.esc(e.ref)}</span> &rarr; '
            f'<b style="color:{style.colour(loc)}">{style.esc(e.target)}</b>'
        )
    else:
        ref_html = f'<span style="{strike}">{style.esc(ref)}</span>'
    note = (
        f'<span style="color:#991b1b">{style.esc(detail)}</span>'
        if e.reason is not None
        else style.esc(detail)
    )
    tag = (
        f'<span style="font-size:10px;font-weight:600;text-transform:uppercase;'
        f'color:{"#166534" if state == "new" else "#991b1b"}">{badge}</span>'
        if badge
        else ""
    )
    cell = "padding:2px 6px;white-space:nowrap;vertical-align:top"
    row = (
        f'<tr class="fedlab-row fedlab-{state}" data-ref="{style.esc(e.ref)}" '
        f'style="background:{bg}">'
        f'<td style="{cell};font-family:{style.MONO}">{ref_html}</td>'
    )
    if compact:  # a narrow side area: no kind, no badge (the colour says it), values wrap
        wrap = "padding:2px 6px;vertical-align:top;overflow-wrap:anywhere"
        return (
            f'{row}<td style="{wrap};font-family:{style.MONO}">{style.esc(shape)} {note}</td></tr>'
        )
    return (
        f'{row}<td style="{cell};color:{style.MUTED}">{style.esc(kind)}</td>'
        f'<td style="{cell};font-family:{style.MONO}">{style.esc(shape)}</td>'
        f'<td style="{cell};font-family:{style.MONO}">{note}</td>'
        f'<td style="{cell}">{tag}</td></tr>'
    )


def _column_html(model: StoreModel, w: str, compact: bool = False) -> str:
    c = style.colour(w)
    entries, notes = _listing(model, w, model.entries(w))
    rows = "".join(_row_html(e, compact) for e in entries)
    if not entries:
        rows = (
            f'<tr><td style="padding:2px 6px;color:{style.MUTED};font-style:italic">empty</td></tr>'
        )
    extra = "".join(
        f'<div style="color:{style.MUTED};font-size:11px;padding:0 6px">{style.esc(n)}</div>'
        for n in notes
    )
    return (
        f'<div class="fedlab-worker" data-worker="{style.esc(w)}" style="border:1px solid '
        f"#e5e7eb;border-top:4px solid {c};border-radius:6px;padding:6px 4px;"
        f"{'min-width:0' if compact else 'min-width:180px'};"
        f'background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.06)">'
        f'<div style="font-weight:700;font-size:14px;color:{c};padding:0 6px 4px">'
        f"{style.esc(w)}</div>"
        f'<table style="border-collapse:collapse;font-size:12px;margin:0">{rows}</table>{extra}'
        f'<div class="fedlab-counter" style="color:{style.MUTED};font-size:11px;padding:4px 6px 0;'
        f'border-top:1px solid #f3f4f6;margin-top:4px">{style.esc(_counter(model, w))}</div></div>'
    )


def html(model: StoreModel, closed: bool = False, compact: bool = False) -> str:
    """The panel as HTML: one card per worker, side by side, in the worker's colour.

    ``compact`` stacks the cards and drops the kind column, for a narrow side area.
    """
    cols = "".join(_column_html(model, w, compact) for w in model.ids)
    status = " &middot; closed" if closed else ""
    flow = "flex-direction:column;align-items:stretch" if compact else "align-items:flex-start"
    return (
        f'<div class="fedlab-panel" style="font-family:{style.SANS};color:#111827">'
        f'<div style="font-size:11px;color:{style.MUTED};margin-bottom:4px">fedlab &middot; '
        f"watching {style.esc(', '.join(model.ids))}{status}</div>"
        f'<div style="display:flex;gap:10px;flex-wrap:wrap;{flow}">{cols}</div>'
        "</div>"
    )
