"""fedlab's benchmark suite: `make bench` runs `python -m benchmarks` (see __main__.py)."""
