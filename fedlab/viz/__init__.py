"""Watching remote execution: a live panel, who-keeps-it-alive, message traces, pointer graphs.

``sy.watch(bob, alice)``, ``sy.explain(x)``, ``with sy.trace() as t: ...`` and
``sy.draw(x)``. ipywidgets, IPython and matplotlib are imported only when needed.
"""

from __future__ import annotations

from fedlab.viz.explain import Explanation, explain
from fedlab.viz.graph import draw
from fedlab.viz.panel import Panel, watch
from fedlab.viz.trace import Trace, trace

__all__ = ["Explanation", "Panel", "Trace", "draw", "explain", "trace", "watch"]
