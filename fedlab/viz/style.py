"""Shared look of the views: one colour per worker, fonts, small text helpers.

Every view (panel, trace, graph, explain) uses the same colour for a worker, so a
student learns "bob is blue" once.
"""

from __future__ import annotations

import html
import zlib
from typing import Any

# The course's usual cast gets fixed colours; any other worker gets one from the
# palette chosen by a stable hash of its name (never Python's salted ``hash``).
FIXED = {
    "me": "#4b5563",
    "bob": "#2563eb",
    "alice": "#dc2626",
    "carol": "#16a34a",
    "charlie": "#16a34a",
    "dave": "#9333ea",
    "secure_worker": "#b45309",
}
PALETTE = ("#0891b2", "#c026d3", "#65a30d", "#ea580c", "#4f46e5", "#be123c", "#0d9488")

SANS = "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
MONO = "SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
NEW_BG = "#dcfce7"
GONE_BG = "#fee2e2"
MUTED = "#6b7280"


def colour(worker_id: str) -> str:
    """The colour of a worker, the same in every view."""
    return FIXED.get(worker_id) or PALETTE[zlib.crc32(worker_id.encode()) % len(PALETTE)]


def esc(value: Any) -> str:
    """``value`` as HTML-safe text."""
    return html.escape(str(value), quote=True)


def nbytes(n: int) -> str:
    """A byte count for people: ``96 B``, ``1.2 kB``, ``3.4 MB``."""
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1_000_000:.1f} MB"


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _nested(v: Any) -> str:
    return "[" + ", ".join(_nested(x) for x in v) + "]" if isinstance(v, list) else _num(v)


def preview(t: Any, limit: int = 6) -> str:
    """A tensor's first values: ``[1, 2, 3]``, ``[[1, 2], [3, 4]]``, ``[0.5, 1.25, ...]``."""
    try:
        if t.numel() <= limit:
            return _nested(t.detach().tolist())
        values = t.detach().reshape(-1)[:limit].tolist()
    except Exception:  # a tensor that cannot be read (meta, sparse): show nothing
        return ""
    return "[" + ", ".join(_num(v) for v in values) + ", ...]"


def table(rows: list[tuple[str, ...]], indent: str = "") -> list[str]:
    """Rows of cells as left-aligned text columns (trailing spaces removed)."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip() for r in rows]
