"""Timing helpers: medians over repeats, subprocess runs, and the machine's description."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One torch thread everywhere, for every system alike: on a busy 2-core machine torch's
# thread pool spins while it waits, and a tiny op then takes 20-80x longer (measured).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def per_call(fn: Callable[[], object], number: int, repeats: int) -> dict:
    """Seconds per call of ``fn``: the median (and min, max) of ``repeats`` timed loops.

    Like ``timeit``, the cyclic garbage collector is paused while timing: a loop that
    keeps its results (thousands of pointers) would otherwise pay for full collections
    of the whole heap (about 0.1 s each, with torch imported) that no single call causes.
    """
    fn()  # warm up: first calls pay for lazy initialisation
    samples = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples.append((time.perf_counter() - start) / number)
    finally:
        if enabled:
            gc.enable()
    return summary(samples)


def summary(samples: list[float]) -> dict:
    """Median, min and max of a list of timings (the median is what we compare)."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


def run_json(cmd: list[str], timeout: float = 600) -> tuple[dict, float]:
    """Run ``cmd`` (prints one JSON line last); return that JSON and the process's wall time."""
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    last = [line for line in proc.stdout.splitlines() if line.startswith("{")][-1]
    return json.loads(last), wall


def machine() -> dict:
    """What the numbers were measured on."""
    import torch

    info = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": 1,
    }
    try:
        info["load_average_at_start"] = os.getloadavg()
    except OSError:
        pass
    try:
        model = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        info["cpu_model"] = model[0] if model else ""
    except OSError:
        pass
    return info


PYTHON = sys.executable
