"""``python -m fedlab.grading.kernel -f CONNECTION_FILE``: a Jupyter kernel for grading.

The same IPython kernel as usual, started by ``fedlab grade`` for one submission, after
confining itself (``fedlab.grading.sandbox``) while it still has a single thread:
it may write only in ``$FEDLAB_SANDBOX`` (the submission's temporary copy), bind only
its Jupyter ports and connect only to the grader's server (``$FEDLAB_EXAM``).
"""

from __future__ import annotations

import json
import os
import sys

SANDBOX = "FEDLAB_SANDBOX"


def _ports(argv: list[str]) -> list[int]:
    path = argv[argv.index("-f") + 1] if "-f" in argv else None
    if path is None:
        return []
    with open(path, encoding="utf-8") as f:
        info = json.load(f)
    return [int(v) for k, v in info.items() if k.endswith("_port")]


def _load_sandbox():
    """``fedlab.grading.sandbox`` loaded alone: importing fedlab (torch) may start threads."""
    import importlib.util

    spec = importlib.util.find_spec("fedlab")
    path = os.path.join(os.path.dirname(spec.origin), "grading", "sandbox.py")
    module_spec = importlib.util.spec_from_file_location("_fedlab_sandbox", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    """Confine, then run the IPython kernel."""
    argv = list(sys.argv[1:] if argv is None else argv)
    folder = os.environ.get(SANDBOX)
    if folder:
        sandbox = _load_sandbox()
        exam = os.environ.get("FEDLAB_EXAM", "")
        server = [int(exam.split(":")[1])] if exam.count(":") == 2 else []
        sandbox.confine([folder, os.devnull], bind_ports=_ports(argv), connect_ports=server)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=argv)


if __name__ == "__main__":
    main()
