"""Turn the results into target checks, a Markdown table and matplotlib figures."""

from __future__ import annotations

from pathlib import Path

SYSTEM_NAMES = {
    "torch": "plain torch (no workers)",
    "fedlab": "fedlab, in-process",
    "fedlab-plan": "fedlab, in-process, plans",
    "fedlab-ray": "fedlab, Ray workers",
    "fedlab-ray-plan": "fedlab, Ray workers, plans",
    "flower": "Flower simulation (Ray)",
}


def targets(r: dict) -> dict:
    """Each target of the issue: the measured value, the limit, and whether it is met."""
    ops, lin = r["ops"], r["fedavg"]["linear"]["systems"]
    out = {
        "remote_op_us": _t(ops["remote_add_kept"]["median"] * 1e6, "<=", 50),
        "send_get_vs_save_load": _t(
            ops["send_get_1M"]["median"] / ops["save_load_1M"]["median"], "<=", 2
        ),
        "hook_overhead_max": _t(max(v["paired_overhead"] for v in r["hook"].values()), "<", 0.05),
        "fedlab_vs_torch_end_to_end": _t(lin["fedlab"]["wall_s"] / lin["torch"]["wall_s"], "<=", 3),
    }
    if "flower" in lin:
        out["flower_vs_fedlab_end_to_end"] = _t(
            lin["flower"]["wall_s"] / lin["fedlab"]["wall_s"], ">=", 10
        )
    by_n = {s["workers"]: s for s in r["scale"]}
    biggest = max(by_n)
    # fedlab's fastest way to run the round: the client's step as a plan (one message).
    out[f"round_with_{biggest}_workers_s"] = _t(by_n[biggest]["plan_round_s"], "<", 1)
    # Not targets: what plain torch alone needs for the same work, the floor for any system,
    # and the same round written operation by operation, as the course writes it.
    r["bounds"] = {
        f"plain_torch_round_with_{biggest}_clients_s": by_n[biggest].get("plain_torch_round_s"),
        f"op_by_op_round_with_{biggest}_workers_s": by_n[biggest]["round_s"],
        "flower_vs_plain_torch_end_to_end": (
            lin["flower"]["wall_s"] / lin["torch"]["wall_s"] if "flower" in lin else None
        ),
    }
    if "secure" in r:  # secure aggregation against plain FedAvg, training as a plan
        out["secure_aggregation_vs_fedavg"] = _t(
            r["secure"]["fedavg_with_plans"]["ratios"]["secure"], "<=", 10
        )
    smallest_big = sorted(by_n)[-2]
    out["per_worker_time_growth"] = _t(
        by_n[biggest]["per_worker_ms"] / by_n[smallest_big]["per_worker_ms"], "<=", 1.5
    )
    return out


def _t(value: float, op: str, limit: float) -> dict:
    met = {"<=": value <= limit, "<": value < limit, ">=": value >= limit}[op]
    return {"value": value, "target": f"{op} {limit}", "met": bool(met)}


def markdown(r: dict) -> str:
    """The README's performance table (and the targets) as Markdown."""
    m = r["machine"]
    lines = [
        f"Measured on {m['cpus']} cores ({m.get('cpu_model', m['processor'])}), Python "
        f"{m['python']}, torch {m['torch']}, one torch thread; shared machine, so medians.",
        "",
        "| FedAvg, 4 clients, 10 rounds | model | whole process (s) | first round (s) "
        "| later rounds (s, median) | final loss |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for model, res in r["fedavg"].items():
        for s, v in res["systems"].items():
            later = "" if v["later_round_s"] is None else f"{v['later_round_s']:.3f}"
            lines.append(
                f"| {SYSTEM_NAMES.get(s, s)} | {model} | {v['wall_s']:.1f} | "
                f"{v['first_round_s']:.3f} | {later} | {v['final_loss']:.4f} |"
            )
    for model, res in r["fedavg"].items():
        for s, err in res.get("errors", {}).items():
            reason = next((x for x in reversed(err.splitlines()) if x.strip()), "")
            lines.append(f"| {SYSTEM_NAMES.get(s, s)} | {model} | not measured: {reason[:90]} |")
    ops = r["ops"]
    lines += [
        "",
        "| per operation | fedlab | plain torch | ratio |",
        "| --- | ---: | ---: | ---: |",
        _row(
            "small op (10 floats), result kept", ops["remote_add_kept"], ops["local_add"], 1e6, "us"
        ),
        _row("small op, result freed (+1 delete)", ops["remote_add"], ops["local_add"], 1e6, "us"),
        _row(
            "1M float32: send+get vs torch.save/load",
            ops["send_get_1M"],
            ops["save_load_1M"],
            1e3,
            "ms",
        ),
    ]
    for op, v in r["hook"].items():
        lines.append(
            f"| `{op}` after vs before hooking | {v['after_s'] * 1e6:.1f} us | "
            f"{v['before_s'] * 1e6:.1f} us | {v['paired_overhead']:+.1%} |"
        )
    lines += ["", "| workers | one round, op by op (s) | one round, with a plan (s) "
              "| same updates in plain torch (s) | per worker, op by op / plan (ms) "
              "| kept per worker (KB) |",
              "| ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for s in r["scale"]:
        plain = s.get("plain_torch_round_s")
        lines.append(
            f"| {s['workers']} | {s['round_s']:.3f} | {s['plan_round_s']:.3f} "
            f"| {'' if plain is None else f'{plain:.3f}'} "
            f"| {s['per_worker_ms']:.2f} / {s['plan_per_worker_ms']:.2f} "
            f"| {s['kept_bytes_per_worker'] / 1024:.1f} |"
        )
    if "secure" in r:
        lines += secure_table(r["secure"])
    lines += ["", "| target | measured | limit | met |", "| --- | ---: | --- | --- |"]
    for name, t in r["targets"].items():
        lines.append(
            f"| {name} | {t['value']:.3g} | {t['target']} | {'yes' if t['met'] else 'NO'} |"
        )
    for name, v in r.get("bounds", {}).items():
        if v is not None:
            lines.append(f"| {name} (for comparison, not a target) | {v:.3g} | | |")
    return "\n".join(lines)


def secure_table(sec: dict) -> list[str]:
    """Secure aggregation per round, and shared matmul, as Markdown rows."""
    lines = ["", "| FedAvg round, 4 clients, digits MLP | training op by op (s) "
             "| ratio | training as a plan (s) | ratio |",
             "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    a, b = sec["fedavg"], sec["fedavg_with_plans"]
    for name in a["systems"]:
        lines.append(
            f"| {name} aggregation | {a['systems'][name]['later_round_s']:.3f} | "
            f"{a['ratios'][name]:.2f}x | {b['systems'][name]['later_round_s']:.3f} | "
            f"{b['ratios'][name]:.2f}x |"
        )
    lines += ["", "| n x n matmul | plain torch | fixed precision, shared | ratio | messages |",
              "| ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for m in sec["matmul"]:
        lines.append(
            f"| {m['n']} | {m['torch_s'] * 1e6:.1f} us | {m['shared_s'] * 1e3:.1f} ms | "
            f"{m['ratio']:.0f}x | {m['messages']} |"
        )
    return lines


def _row(name: str, a: dict, b: dict, scale: float, unit: str) -> str:
    return (
        f"| {name} | {a['median'] * scale:.1f} {unit} | {b['median'] * scale:.1f} {unit} | "
        f"{a['median'] / b['median']:.1f}x |"
    )


def figures(r: dict, out: Path) -> list[Path]:
    """Draw fedavg.png, ops.png and scale.png into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    models = list(r["fedavg"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in (
        (axes[0], "wall_s", "whole process (s)"),
        (axes[1], "later_round_s", "one round after the first (s)"),
    ):
        systems = list(r["fedavg"][models[0]]["systems"])
        width = 0.8 / len(models)
        for i, model in enumerate(models):
            sys_res = r["fedavg"][model]["systems"]
            vals = [sys_res[s][key] or 0 if s in sys_res else 0 for s in systems]
            xs = [j + i * width for j in range(len(systems))]
            bars = ax.bar(xs, vals, width, label=model)
            ax.bar_label(bars, fmt="%.2g", fontsize=7)
        ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(systems))])
        names = [SYSTEM_NAMES.get(s, s).replace(", ", ",\n").replace(" (", "\n(") for s in systems]
        ax.set_xticklabels(names, fontsize=7)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("FedAvg on digits: 4 clients, 10 rounds, 1 local epoch (lower is better)")
    fig.tight_layout()
    paths.append(_save(fig, out / "fedavg.png"))

    ops = r["ops"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].bar(["local", "remote,\nkept", "remote,\nfreed"],
                [ops["local_add"]["median"] * 1e6, ops["remote_add_kept"]["median"] * 1e6,
                 ops["remote_add"]["median"] * 1e6])  # fmt: skip
    axes[0].axhline(50, color="red", ls="--", label="target 50 us")
    axes[0].set_title("x + y, 10 floats (us)")
    axes[0].legend(fontsize=8)
    axes[1].bar(
        ["send+get", "torch.save\n+load"],
        [ops["send_get_1M"]["median"] * 1e3, ops["save_load_1M"]["median"] * 1e3],
    )
    axes[1].set_title("1M float32 round trip (ms)")
    names = list(r["hook"])
    axes[2].bar(names, [100 * r["hook"][n]["paired_overhead"] for n in names])
    axes[2].axhline(5, color="red", ls="--", label="target 5%")
    axes[2].axhline(0, color="black", lw=0.5)
    axes[2].set_title("plain torch after hooking (% slower)")
    axes[2].tick_params(axis="x", labelsize=7)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    paths.append(_save(fig, out / "ops.png"))

    sc = r["scale"]
    ns = [s["workers"] for s in sc]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].loglog(ns, [s["round_s"] for s in sc], "o-", label="op by op")
    axes[0].loglog(ns, [s["plan_round_s"] for s in sc], "^-", label="with a plan")
    axes[0].loglog(ns, [s["plain_torch_round_s"] for s in sc], "s--", label="plain torch")
    axes[0].loglog(ns, [sc[0]["round_s"] * n / ns[0] for n in ns], ":", label="linear")
    axes[0].axhline(1, color="red", ls="--", label="target: 1 s")
    axes[0].set_title("one FedAvg round (s)")
    axes[0].set_xlabel("in-process workers")
    axes[0].legend(fontsize=8)
    axes[1].loglog(ns, [s["kept_bytes_after_setup"] / 2**20 for s in sc], "o-", label="kept")
    axes[1].loglog(ns, [s["round_peak_bytes"] / 2**20 for s in sc], "s-", label="round peak")
    axes[1].set_title("memory (MiB, tracemalloc)")
    axes[1].set_xlabel("in-process workers")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    paths.append(_save(fig, out / "scale.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
