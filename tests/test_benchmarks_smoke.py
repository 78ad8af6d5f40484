"""The benchmark suite runs end to end on tiny sizes (the real run is `make bench`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_benchmark_writes_results_figures_and_equal_losses(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=590,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    for name in ("fedavg.png", "ops.png", "scale.png", "secure.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    for model in ("linear", "mlp"):
        systems = results["fedavg"][model]["systems"]
        assert {"torch", "fedlab", "fedlab-plan"} <= set(systems)
        losses = {s: v["final_loss"] for s, v in systems.items()}
        # Equal work: the same SGD steps from the same start end at the same loss,
        # and that loss is lower than where training began.
        assert max(losses.values()) - min(losses.values()) < 1e-3, losses
        assert systems["fedlab"]["final_loss"] < systems["fedlab"]["initial_loss"]
    assert results["ops"]["messages_per_remote_add"] == 2  # the op and its result's delete
    assert [s["workers"] for s in results["scale"]] == [5, 10, 20]
    assert all(s["objects_left_behind"] == 0 for s in results["scale"])
    # The round with a plan does the same work in a third of the messages.
    assert all(s["plan_equals_op_by_op"] for s in results["scale"])
    assert results["scale"][0]["messages_per_worker"] == {"op_by_op": 15, "plan": 5}
    secure = results["secure"]  # secure aggregation ends where plain FedAvg does
    for key in ("fedavg", "fedavg_with_plans"):
        systems = secure[key]["systems"]
        assert all(s["max_param_diff_from_plain"] < 0.01 for s in systems.values()), systems
        assert secure[key]["objects_left_behind"] == 0
    assert secure["matmul"][0]["max_error"] < 0.02
    assert "| target |" in proc.stdout and set(results["targets"]) >= {
        "remote_op_us",
        "send_get_vs_save_load",
        "hook_overhead_max",
        "secure_aggregation_vs_fedavg",
    }
