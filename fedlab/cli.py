"""The ``fedlab`` command: ``grade`` for instructors, ``worker`` for data owners."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each subcommand lives with its feature and adds itself to the parser:
# module path -> (name, one-line help). A module provides add_arguments(parser) and run(args).
SUBCOMMANDS = {
    "fedlab.grading.cli": ("grade", "grade exercise submissions"),
    "fedlab.transport.worker_cli": (
        "worker",
        "run a named worker process that joins a Ray cluster",
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fedlab`` command."""
    parser = argparse.ArgumentParser(prog="fedlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name, (name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(_module=module_name)
        try:
            importlib.import_module(module_name).add_arguments(p)
        except ModuleNotFoundError as e:
            if e.name is None or not module_name.startswith(e.name):
                raise
    args = parser.parse_args(argv)
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
