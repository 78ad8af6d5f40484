"""Generate the student notebooks in exercises/ from exercises/source/ (never edit them by hand).

python tools/make_exercises.py           # regenerate every exercise
python tools/make_exercises.py --check   # exit 1 if a student notebook is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedlab.grading.authoring import MarkerError, generate, render

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "exercises" / "source"
OUT = ROOT / "exercises"


def main(argv: list[str] | None = None) -> int:
    """Regenerate (or, with --check, compare) every student notebook."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale notebooks")
    args = parser.parse_args(argv)
    stale = 0
    for src in sorted(SOURCE.glob("*.ipynb")):
        dest = OUT / src.name
        try:
            if args.check:
                if not dest.exists() or dest.read_text(encoding="utf-8") != render(src):
                    print(f"out of date: {dest.relative_to(ROOT)}", file=sys.stderr)
                    stale += 1
            else:
                generate(src, OUT)
                print(f"wrote {dest.relative_to(ROOT)}")
        except MarkerError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
