"""Drawing secret sharing: one value split over workers, and where values travel.

``sy.draw(x)`` of a shared tensor draws the secret on top and one box per party
below, each with its share (random-looking int64 values that add up to the secret
modulo 2**64), and the crypto provider aside, holding no share. ``draw_flows(t)``
draws, from a trace, every worker as a node and every tensor that travelled as an
arrow: from the provider to the parties (triples and masks), between parties
(masked values), from and to ``me``. Both are snapshots built with matplotlib.
"""

from __future__ import annotations

import math
from typing import Any

import fedlab as sy
from fedlab.secure.audit import received
from fedlab.secure.labels import label
from fedlab.viz import style
from fedlab.viz.figure import FedlabFigure, new_figure

BOX_W, BOX_H, GAP = 2.7, 1.75, 0.5


def is_shared(x: Any) -> bool:
    """True for a shared tensor (integer or fixed-precision)."""
    return _record(x) is not None


def _record(x: Any) -> Any:
    child = getattr(x, "__dict__", {}).get("child")
    if isinstance(child, sy.FixedPrecisionTensor):
        child = getattr(child.child, "__dict__", {}).get("child")
    return child if isinstance(child, sy.AdditiveSharingTensor) else None


def _share_text(ptr: Any, rows: int = 3) -> str:
    """A share's first values, one per line (read from the store, as ``bob._objects``)."""
    rec = ptr.__dict__["child"]
    try:
        value = sy.get_worker(rec.location_id)._objects[rec.id_at_location]
    except Exception:  # in another process, or already gone
        return "(in another process)"
    values = value.reshape(-1).tolist()
    lines = [str(v) for v in values[:rows]]
    return "\n".join(lines + (["..."] if len(values) > rows else []))


def draw_shared(x: Any) -> FedlabFigure:
    """One value split over workers: the secret, its shares, the crypto provider."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    rec = _record(x)
    fixed = x.child if isinstance(x.child, sy.FixedPrecisionTensor) else None
    parties = list(rec.child.items())
    n = len(parties)
    provider = rec.crypto_provider.id
    width = n * (BOX_W + GAP) + BOX_W + 0.6
    fig = new_figure(
        max(5.0, width * 0.95),
        3.8,
        f"shared tensor #{rec.number}: {n} shares on {', '.join(w for w, _ in parties)}; "
        f"crypto provider {provider}",
    )
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_axis_off()
    row = n * (BOX_W + GAP) - GAP
    top_x = (row - BOX_W * 1.3) / 2
    shape = list(rec.shape)
    secret = f"secret #{rec.number}  int64{shape}"
    how = " + ".join(f"share {i}" for i in range(1, n + 1)) + "  (mod 2**64)"
    if fixed is not None:
        secret += f", fixed precision ({fixed.precision_fractional} digits)"
    ax.add_patch(FancyBboxPatch((top_x, 0.4), BOX_W * 1.3, 0.9, boxstyle="round,pad=0.05",
                                fc="#f3f4f6", ec="#111827", lw=1.4, gid="secret"))  # fmt: skip
    ax.text(top_x + BOX_W * 0.65, 1.02, secret, ha="center", fontsize=9, fontweight="bold")
    ax.text(top_x + BOX_W * 0.65, 0.62, f"nobody holds it: {how}", ha="center", fontsize=7.5,
            color=style.MUTED)  # fmt: skip
    for i, (w, ptr) in enumerate(parties):
        x0, c = i * (BOX_W + GAP), style.colour(w)
        ax.add_patch(FancyBboxPatch((x0, -2.5), BOX_W, BOX_H, boxstyle="round,pad=0.05",
                                    fc="white", ec=c, lw=1.8, gid=f"share:{w}"))  # fmt: skip
        ax.text(x0 + BOX_W / 2, -0.95, w, ha="center", fontsize=10, fontweight="bold", color=c)
        ax.text(x0 + BOX_W / 2, -1.22, f"share {i + 1}/{n}", ha="center", fontsize=8)
        ax.text(x0 + BOX_W / 2, -1.4, _share_text(ptr), ha="center", va="top", fontsize=7,
                family="monospace", color="#374151", linespacing=1.3)  # fmt: skip
        arrow = FancyArrowPatch((top_x + BOX_W * 0.65, 0.4), (x0 + BOX_W / 2, -0.7),
                                arrowstyle="-|>", mutation_scale=12, color=c, lw=1.3)  # fmt: skip
        ax.add_patch(arrow)
        if i:
            ax.text(x0 - GAP / 2, -1.6, "+", ha="center", va="center", fontsize=14)
    px = row + GAP + 0.1
    pc = style.colour(provider)
    ax.add_patch(FancyBboxPatch((px, -2.5), BOX_W, BOX_H, boxstyle="round,pad=0.05", fc="white",
                                ec=pc, lw=1.4, ls="--", gid=f"provider:{provider}"))  # fmt: skip
    ax.text(px + BOX_W / 2, -0.95, provider, ha="center", fontsize=10, fontweight="bold", color=pc)
    ax.text(px + BOX_W / 2, -1.22, "crypto provider", ha="center", fontsize=8)
    ax.text(px + BOX_W / 2, -1.6, "holds no share;\nmakes triples and masks", ha="center",
            va="top", fontsize=7, color=style.MUTED)  # fmt: skip
    ax.set_xlim(-0.3, px + BOX_W + 0.3)
    ax.set_ylim(-2.8, 1.5)
    return fig


def flows(trace: Any) -> dict[tuple[str, str], tuple[int, int]]:
    """(sender, receiver) -> (tensors, bytes) for every message of ``trace`` carrying one."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for e, _ in received(trace):
        n, b = out.get((e.sender, e.receiver), (0, 0))
        out[(e.sender, e.receiver)] = (n + 1, b + e.nbytes)
    return out


def draw_flows(trace: Any, title: str = "where the values travelled") -> FedlabFigure:
    """Workers on a circle; an arrow per pair that exchanged tensors, with their count."""
    from matplotlib.patches import FancyArrowPatch

    pairs = flows(trace)
    names = list(dict.fromkeys(w for pair in pairs for w in pair)) or ["me"]
    total = sum(n for n, _ in pairs.values())
    fig = new_figure(5.6, 4.4, f"{title}: {total} tensors between {len(names)} workers")
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.92))
    ax.set_axis_off()
    fig.suptitle(title, fontsize=10, fontweight="bold")
    at = {}
    for k, w in enumerate(names):
        angle = math.pi / 2 - 2 * math.pi * k / len(names)
        at[w] = (1.6 * math.cos(angle), 1.2 * math.sin(angle))
    for (a, b), (n, nbytes) in sorted(pairs.items()):
        (xa, ya), (xb, yb) = at[a], at[b]
        ax.add_patch(FancyArrowPatch((xa, ya), (xb, yb), arrowstyle="-|>", mutation_scale=13,
                                     lw=1.0 + min(n, 12) / 4, color=style.colour(a), alpha=0.8,
                                     shrinkA=22, shrinkB=22, connectionstyle="arc3,rad=0.15",
                                     gid=f"flow:{a}->{b}"))  # fmt: skip
        # the label a third of the way from the sender, off to the arc's side
        mx, my = xa + (xb - xa) * 0.36 + (yb - ya) * 0.08, ya + (yb - ya) * 0.36 - (xb - xa) * 0.08
        ax.text(mx, my, f"{n} ({style.nbytes(nbytes)})", ha="center", va="center", fontsize=7,
                bbox={"fc": "white", "ec": "none", "pad": 0.3, "alpha": 0.9})  # fmt: skip
    for w, (x, y) in at.items():
        c = style.colour(w)
        box = {"boxstyle": "round,pad=0.4", "fc": c, "ec": c}
        ax.text(x, y, w, ha="center", va="center", fontsize=10, fontweight="bold", color="white",
                bbox=box, gid=f"worker:{w}")  # fmt: skip
    ax.set_xlim(-2.4, 2.4)
    ax.set_ylim(-1.7, 1.7)
    return fig


__all__ = [
    "beaver_by_hand",
    "draw_beaver",
    "draw_flows",
    "draw_shared",
    "flows",
    "is_shared",
    "label",
]


def beaver_by_hand(x: int, y: int, q: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Every number of one Beaver multiplication of x and y between two parties, modulo q
    (small, to be readable): the triple, its shares, eps, delta and the shares of x*y."""
    import random

    rng = random.Random(seed)

    def split(v: int) -> tuple[int, int]:
        first = rng.randrange(q)
        return first, (v - first) % q

    a, b = rng.randrange(q), rng.randrange(q)
    s = {"q": q, "x": x, "y": y, "a": a, "b": b, "c": a * b % q}
    s["x_sh"], s["y_sh"] = split(x), split(y)
    s["a_sh"], s["b_sh"], s["c_sh"] = split(a), split(b), split(s["c"])
    s["eps"] = sum(xi - ai for xi, ai in zip(s["x_sh"], s["a_sh"])) % q
    s["delta"] = sum(yi - bi for yi, bi in zip(s["y_sh"], s["b_sh"])) % q
    e, d = s["eps"], s["delta"]
    z = [(ci + e * bi + ai * d) % q for ai, bi, ci in zip(s["a_sh"], s["b_sh"], s["c_sh"])]
    z[0] = (z[0] + e * d) % q
    s["z_sh"] = tuple(z)
    s["z"] = sum(z) % q
    return s


def draw_beaver(s: dict[str, Any], parties: tuple[str, str] = ("bob", "alice"),
                provider: str = "secure_worker") -> FedlabFigure:  # fmt: skip
    """Beaver's multiplication in three steps, with the numbers of ``beaver_by_hand``."""
    q, (p1, p2) = s["q"], parties
    fig = new_figure(11.0, 3.9, f"Beaver multiplication of {s['x']} and {s['y']} modulo {q}")
    steps = [
        (f"1. {provider} deals a triple",
         f"a = {s['a']}, b = {s['b']}\nc = a*b = {s['c']}  (mod {q})",
         [f"a = {s['a_sh'][i]}\nb = {s['b_sh'][i]}\nc = {s['c_sh'][i]}" for i in range(2)]),
        ("2. they reveal eps and delta",
         f"eps = x - a = {s['eps']}\ndelta = y - b = {s['delta']}\n(a, b hide x, y)",
         [f"x - a: {(s['x_sh'][i] - s['a_sh'][i]) % q}\ny - b: {(s['y_sh'][i] - s['b_sh'][i]) % q}"
          for i in range(2)]),
        ("3. each computes its share of x*y",
         f"z = {s['z_sh'][0]} + {s['z_sh'][1]} = {s['z']} (mod {q})\n= {s['x']} * {s['y']}",
         [f"c + eps*b + a*delta\n+ eps*delta\n= {s['z_sh'][0]}",
          f"c + eps*b + a*delta\n\n= {s['z_sh'][1]}"]),
    ]  # fmt: skip
    box = {"boxstyle": "round,pad=0.4", "fc": "white", "lw": 1.5}
    for k, (title, top, cells) in enumerate(steps):
        ax = fig.add_axes((0.01 + k / 3, 0.02, 0.31, 0.9))
        ax.set_axis_off()
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.text(0.5, 0.98, title, ha="center", va="top", fontsize=10, fontweight="bold")
        top_colour = style.colour(provider) if k == 0 else "#111827"
        ax.text(0.5, 0.72, top, ha="center", va="center", fontsize=8.5, family="monospace",
                bbox={**box, "ec": top_colour, "ls": "--" if k == 0 else "-"})  # fmt: skip
        for i, (who, text) in enumerate(zip((p1, p2), cells)):
            x0, c = 0.25 + 0.5 * i, style.colour(who)
            ax.text(x0, 0.28, f"{who}\n{text}", ha="center", va="center", fontsize=8,
                    family="monospace", bbox={**box, "ec": c})  # fmt: skip
            start, end = ((0.5, 0.6), (x0, 0.45)) if k == 0 else ((x0, 0.45), (0.5, 0.6))
            ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": c})
    fig.description = (
        f"Beaver multiplication of {s['x']} and {s['y']} modulo {q}: shares {s['z_sh']} "
        f"add up to {s['z']}"
    )
    return fig
