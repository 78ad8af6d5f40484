"""The pointer graph: ``sy.draw(x)`` draws workers as boxes and pointers as arrows.

Each box lists the objects a worker holds (for ``me``: the pointers in variables);
each arrow goes from a pointer to the object it points at, so a chain
``me:3 -> alice:2 -> bob:1`` reads left to right. It is a snapshot: it reads the
stores once, when called.
"""

from __future__ import annotations

from typing import Any

from fedlab import events, pointer, registry
from fedlab.viz import style
from fedlab.viz.model import local_id

BOX_W, GAP, ROW = 2.4, 1.3, 0.42


def _pointers_of(x: Any) -> list[pointer.PointerTensor]:
    """The pointers inside ``x``: a pointer, a multi-pointer or a model's parameters."""
    if isinstance(x, pointer.PointerTensor):
        return [x]
    if hasattr(x, "named_parameters"):
        return [p for _, t in x.named_parameters() for p in _pointers_of(t)]
    if pointer.record_of(x) is not None:
        return [pointer.record_of(x)]
    inner = getattr(getattr(x, "__dict__", {}).get("child"), "child", None)
    if isinstance(inner, dict):
        return [p for v in inner.values() for p in _pointers_of(v)]
    raise TypeError(f"draw() takes pointers (or models sent to a worker), not {type(x).__name__}")


def _stored(w: str, i: int) -> Any:
    try:
        return registry.get_worker(w).get_obj(i)
    except Exception:  # deleted, or on a worker we cannot look into
        return None


def _row_text(obj: Any) -> str:
    if obj is None:
        return "gone"
    kind, summary = events.describe(obj)
    return summary if kind in ("pointer", "tensor") else f"{kind} {summary}".strip()


def collect(xs: tuple[Any, ...]) -> tuple[dict[str, dict[int, str]], list[tuple[str, str]]]:
    """Boxes (worker -> {id: text}) and arrows (``"me:3"`` -> ``"bob:1"``) to draw."""
    me = local_id()
    boxes: dict[str, dict[int, str]] = {}
    arrows: list[tuple[str, str]] = []
    if xs:
        todo = [p for x in xs for p in _pointers_of(x)]
        for p in todo:
            boxes.setdefault(p.owner.id, {})[p.id] = f"-> {p.location_id}:{p.id_at_location}"
            w, i = p.location_id, p.id_at_location
            seen: set[tuple[str, int]] = set()
            while i is not None and (w, i) not in seen:  # follow the chain to its tensor
                seen.add((w, i))
                obj = _stored(w, i)
                boxes.setdefault(w, {})[i] = _row_text(obj)
                child = pointer.record_of(obj)
                if child is None:
                    break
                w, i = child.location_id, child.id_at_location
        for p in todo:
            arrows.append((f"{p.owner.id}:{p.id}", f"{p.location_id}:{p.id_at_location}"))
        for w, rows in list(boxes.items()):
            for i in rows:
                child = pointer.record_of(_stored(w, i))
                if child is not None and w != me:
                    arrows.append((f"{w}:{i}", f"{child.location_id}:{child.id_at_location}"))
    else:
        for w in registry.all_workers():
            if not w.objects():
                continue  # a picture of what is alive: empty workers only add noise
            boxes[w.id] = {i: _row_text(o) for i, o in sorted(w.objects().items())}
            for i, o in boxes[w.id].items():
                if o.startswith("-> "):
                    arrows.append((f"{w.id}:{i}", o.split("-> ")[1]))
        for p in sorted(pointer.live_pointers(), key=lambda p: p.id):
            if p.owner.id == me and p.generation == registry.current_generation:
                boxes.setdefault(me, {})[p.id] = f"-> {p.location_id}:{p.id_at_location}"
                arrows.append((f"{me}:{p.id}", f"{p.location_id}:{p.id_at_location}"))
    return {w: dict(sorted(boxes[w].items())) for w in _order(boxes, arrows, me)}, list(
        dict.fromkeys(arrows)
    )


def _order(boxes: dict, arrows: list[tuple[str, str]], me: str | None) -> list[str]:
    """Columns so that pointers point to the right: a worker sits after those pointing at it."""
    depth = dict.fromkeys(boxes, 0)
    for _ in range(len(boxes)):  # longest path from the left, bounded (chains may loop)
        for a, b in arrows:
            wa, wb = a.split(":")[0], b.split(":")[0]
            if wa in depth and wb in depth and wb != me and depth[wb] < depth[wa] + 1:
                depth[wb] = min(depth[wa] + 1, len(boxes))
    first = list(boxes)
    return sorted(first, key=lambda w: (w != me, depth[w], first.index(w)))


def draw(*pointers: Any) -> Any:
    """A matplotlib Figure: workers as boxes, pointers as arrows (all live ones if none given)."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from fedlab.viz.figure import new_figure
    from fedlab.viz.shared import draw_shared, is_shared

    if len(pointers) == 1 and is_shared(pointers[0]):  # one value split over workers
        return draw_shared(pointers[0])

    boxes, arrows = collect(pointers)
    tallest = max((len(r) for r in boxes.values()), default=0)
    low = -ROW * (max(tallest, 1) + 0.6)  # the bottom of the tallest box
    # Room below the boxes only for arrows that skip a column and dip under them.
    column = {w: k for k, w in enumerate(boxes)}
    dips = any(
        abs(column.get(a.split(":")[0], 0) - column.get(b.split(":")[0], 0)) > 1 for a, b in arrows
    )
    bottom = low - (0.9 if dips else 0.3)
    fig = new_figure(
        max(3.0, 0.4 + 1.45 * len(boxes) * (BOX_W + GAP) / 2.4),
        0.74 * (0.7 - bottom),
        f"pointer graph: {len(boxes)} workers, {len(arrows)} pointers",
    )
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_axis_off()
    anchor: dict[str, tuple[float, float]] = {}
    for k, (w, rows) in enumerate(boxes.items()):
        x, c = k * (BOX_W + GAP), style.colour(w)
        h = ROW * (max(len(rows), 1) + 0.6)
        ax.add_patch(FancyBboxPatch(
            (x, -h), BOX_W, h, boxstyle="round,pad=0.05,rounding_size=0.12",
            fc="white", ec=c, lw=1.8, gid=f"worker:{w}",
        ))  # fmt: skip
        ax.text(
            x + BOX_W / 2,
            0.16,
            w,
            ha="center",
            va="bottom",
            fontsize=11,
            fontweight="bold",
            color=c,
        )
        if not rows:
            ax.text(
                x + BOX_W / 2,
                -h / 2,
                "empty",
                ha="center",
                va="center",
                fontsize=8,
                color=style.MUTED,
                style="italic",
            )
        for r, (i, text) in enumerate(rows.items()):
            y = -ROW * (r + 0.8)
            ax.text(
                x + 0.12,
                y,
                f"{w}:{i}",
                va="center",
                fontsize=8,
                family="monospace",
                fontweight="bold",
            )
            ax.text(x + BOX_W - 0.12, y, text, ha="right", va="center", fontsize=7.5,
                    family="monospace", color="#374151")  # fmt: skip
            anchor[f"{w}:{i}"] = (x, y)
    drawn = 0
    for a, b in arrows:
        if a not in anchor or b not in anchor:
            continue
        (xa, ya), (xb, yb) = anchor[a], anchor[b]
        forward = xb > xa
        start = (xa + BOX_W, ya) if forward else (xa, ya)
        end = (xb, yb) if forward else (xb + BOX_W, yb)
        rad = 0.0
        if abs(xb - xa) > BOX_W + GAP + 0.01:  # skipping a column: dip below the boxes
            dx = end[0] - start[0]
            rad = 2 * ((start[1] + end[1]) / 2 - (low - 0.25)) / dx
        ax.add_patch(FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=14, lw=1.6, zorder=3,
            color=style.colour(a.split(":")[0]), connectionstyle=f"arc3,rad={rad:.3f}",
            gid=f"pointer:{a}",
        ))  # fmt: skip
        drawn += 1
    ax.set_xlim(-0.3, len(boxes) * (BOX_W + GAP) - GAP + 0.3)
    ax.set_ylim(bottom, 0.7)
    fig.description = (
        f"pointer graph: {len(boxes)} worker{'s' * (len(boxes) != 1)}, "
        f"{drawn} pointer{'s' * (drawn != 1)}"
    )
    return fig
