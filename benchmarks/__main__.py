"""``python -m benchmarks`` (``make bench``): run the suite, write results.json and figures.

Every measurement runs in a fresh process with one torch thread, and every ratio
compares numbers taken side by side in this run (medians over repeats). Options:
``--quick`` (tiny sizes, for the smoke test), ``--no-flower``, ``--out DIR``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import flower_env, report
from benchmarks.task import Config, save_npz
from benchmarks.timing import ENV, PYTHON, ROOT, machine, run_json

RESULTS = Path(__file__).resolve().parent / "results"
# Every system must end at the same loss: they do the same SGD steps from the same start.
LOSS_TOLERANCE = 1e-3


def log(msg: str) -> None:
    """Progress on stderr, so stdout stays the summary."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ops(quick: bool) -> dict:
    """Per-operation costs, in a fresh process."""
    out, _ = run_json([PYTHON, "-m", "benchmarks.ops", *(["--quick"] if quick else [])])
    return out


def hook_overhead(quick: bool) -> dict:
    """Plain torch ops with what ``TorchHook`` adds switched off and on, in one process.

    Blocks a few milliseconds apart, alternated: two processes (one never hooked) fall
    in different fast or slow spells of the host and differed by -1% to +26% for the
    same code (see ``benchmarks.plain_ops``)."""
    out, _ = run_json([PYTHON, "-m", "benchmarks.plain_ops", *(["--quick"] if quick else [])])
    return out["ops"]


def fedavg(cfg: Config, data: str, repeats: int, flower: bool, ray: bool) -> dict:
    """The FedAvg task with every system; whole-process and per-round times, final losses."""
    systems = ["torch", "fedlab", "fedlab-plan"]
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    for _ in range(repeats):
        for s in systems:  # interleaved, so a burst of load hits every system alike
            runs[s].append(_fl_run(s, cfg, data))
    # Ray workers and Flower take a minute or more per run here: one run each.
    # Both start Ray, which can time out on a busy machine: then say so and go on.
    errors = {}
    if ray and importlib.util.find_spec("fedlab.transport.ray") is not None:
        for system in ("fedlab-ray", "fedlab-ray-plan"):
            try:
                runs[system] = [_fl_run(system, cfg, data)]
            except RuntimeError as e:
                errors[system] = str(e)[-1500:]
    if flower:
        py = str(flower_env.ensure(log))
        log(f"  {cfg.model}: flower (Ray starts inside its first round)")
        cmd = [py, "-m", "benchmarks.flower_app", cfg.model, data, str(cfg.rounds)]
        try:
            out, wall = run_json(cmd, timeout=900)
            runs["flower"] = [{**out, "wall_s": wall}]
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            errors["flower"] = str(e)[-1500:]
    summary = {s: _summarise(r) for s, r in runs.items()}
    losses = {s: v["final_loss"] for s, v in summary.items()}
    spread = max(losses.values()) - min(losses.values())
    assert spread <= LOSS_TOLERANCE, f"the systems did not do the same work: losses {losses}"
    return {"config": cfg.__dict__, "systems": summary, "loss_spread": spread, "errors": errors}


def _fl_run(system: str, cfg: Config, data: str) -> dict:
    log(f"  {cfg.model}: {system}")
    cmd = [PYTHON, "-m", "benchmarks.fl_run", system, cfg.model, data, str(cfg.rounds)]
    out, wall = run_json(cmd)
    return {**out, "wall_s": wall}


def _summarise(runs: list[dict]) -> dict:
    walls = [r["wall_s"] for r in runs]
    later = [t for r in runs for t in r["round_times"][1:]]
    return {
        "wall_s": statistics.median(walls),
        "wall_all_s": walls,
        "first_round_s": statistics.median(r["round_times"][0] for r in runs),
        "later_round_s": statistics.median(later) if later else None,
        "rounds_total_s": statistics.median(sum(r["round_times"]) for r in runs),
        "final_loss": runs[0]["final_loss"],
        "final_losses": [r["final_loss"] for r in runs],
        "initial_loss": runs[0]["initial_loss"],
        "runs": len(runs),
    }


def scale(sizes: list[int], rounds: int) -> list[dict]:
    """One FedAvg round with N in-process workers, each N in its own process."""
    out = []
    for n in sizes:
        log(f"  {n} workers")
        r, _ = run_json([PYTHON, "-m", "benchmarks.scale", str(n), str(rounds)])
        r["round_s"] = statistics.median(r["round_times"][1:] or r["round_times"])
        plain = r["plain_torch_round_times"]
        r["plain_torch_round_s"] = statistics.median(plain[1:] or plain)
        r["per_worker_ms"] = 1000 * r["round_s"] / n
        r["plan_round_s"] = statistics.median(r["plan_round_times"][1:] or r["plan_round_times"])
        r["plan_per_worker_ms"] = 1000 * r["plan_round_s"] / n
        if not r["plan_equals_op_by_op"]:
            raise RuntimeError(f"{n} workers: the rounds with a plan ended with another model")
        r["kept_bytes_per_worker"] = r["kept_bytes_after_setup"] / n
        out.append(r)
    return out


def helper(name: str, run: bool, saved: str) -> dict | None:
    """Another helper's benchmark (ray_ops, panel_overhead) if it exists: run it now (it
    saves benchmarks/results/SAVED), or take what it saved last (its ratios are its own,
    measured side by side)."""
    if not (ROOT / "benchmarks" / f"{name}.py").exists():
        return None
    error = None
    if run:
        # It saves its own results (and prints a line for people, not JSON): only check it ran.
        cmd = [PYTHON, "-m", f"benchmarks.{name}"]
        proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:  # their failure must not hide our results; report it instead
            error = f"exit {proc.returncode}: {proc.stdout[-1000:]}{proc.stderr[-1000:]}"
    path = RESULTS / saved
    out = json.loads(path.read_text()) if path.exists() else {}
    out["source"] = f"benchmarks/results/{saved}" + ("" if run and not error else " (saved)")
    if error:
        out["error"] = error
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the suite and write the results."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    p.add_argument("--no-flower", action="store_true", help="skip Flower's simulation")
    p.add_argument("--no-ray", action="store_true", help="skip fedlab on Ray workers")
    p.add_argument(
        "--ray-ops",
        action="store_true",
        help="rerun benchmarks/ray_ops.py (else its saved results)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    args = p.parse_args(argv)
    quick = args.quick
    start = time.perf_counter()
    results: dict = {"machine": machine(), "quick": quick}
    log("per-operation costs")
    results["ops"] = ops(quick)
    log("hooking overhead")
    results["hook"] = hook_overhead(quick)
    log("federated averaging")
    with tempfile.TemporaryDirectory() as tmp:
        results["fedavg"] = {}
        for model in ("linear", "mlp"):
            cfg = Config(model=model, rounds=2 if quick else Config.rounds)
            data = str(Path(tmp) / f"{model}.npz")
            save_npz(data, cfg)
            flower = not (quick or args.no_flower)
            # Ray workers: the linear model only (a 10-round run takes a minute here).
            ray = not (quick or args.no_ray) and model == "linear"
            results["fedavg"][model] = fedavg(cfg, data, 1 if quick else 3, flower, ray)
    log("scale")
    results["scale"] = scale([5, 10, 20] if quick else [10, 100, 1000], 2 if quick else 4)
    log("secure aggregation and shared matmul")
    results["secure"], _ = run_json(
        [PYTHON, "-m", "benchmarks.secure", *(["--quick"] if quick else [])], timeout=1800
    )
    if not quick:  # they have their own tests; the smoke run skips them
        log("ray_ops")
        results["ray_ops"] = helper("ray_ops", args.ray_ops, "ray.json")
        log("panel_overhead")
        results["panel_overhead"] = helper("panel_overhead", True, "panel_overhead.json")
    results["elapsed_s"] = time.perf_counter() - start
    results["targets"] = report.targets(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report.figures(results, args.out)
    from benchmarks import secure

    secure.figure(results["secure"], args.out)
    print(report.markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
