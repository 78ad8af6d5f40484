"""The live panel: ``sy.watch(bob, alice)`` shows the workers' stores as they change.

A panel subscribes to the core's events, keeps a ``StoreModel`` and, once displayed
in a notebook, paints it into an ``ipywidgets.HTML``: at most a few times a second
while a cell runs, and once more when the cell ends (IPython's ``post_run_cell``).

Why the displayed bundle has three parts: JupyterLab draws the live widget; the
``text/plain`` and ``text/html`` snapshots of the moment of display are what a saved
notebook keeps, so GitHub and nbconvert show a readable table without a kernel, and
nbval compares the deterministic text (it skips the widget mimetype, whose model id
is random). Later updates travel as widget messages, which nbval ignores, so they
never make a saved notebook differ from a fresh run.
"""

from __future__ import annotations

import math
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

from fedlab import events, registry
from fedlab.viz import render
from fedlab.viz.model import StoreModel, local_id

INTERVAL = 0.25  # seconds between paints while a cell runs (4 updates a second)

# One open panel per set of workers: watching the same workers again (re-running a
# cell) closes the previous panel, so subscribers never pile up.
_open: dict[tuple[str, ...], Panel] = {}
_hooked_shells: weakref.WeakSet = weakref.WeakSet()


def _painter(ref: weakref.ref) -> Callable[[], None]:
    # The subscription holds the panel weakly: a forgotten panel can be collected.
    def tick() -> None:
        panel = ref()
        if panel is not None:
            panel.refresh()

    return tick


class Panel:
    """A live view of some workers' stores; ``close()`` stops it."""

    def __init__(self, worker_ids: list[str]) -> None:
        self.model = StoreModel(worker_ids)
        self.model.load()
        self.closed = False
        self._widget: Any = None
        self._side: Any = None  # the sidecar (JupyterLab's side area) that shows it too
        self._side_view: Any = None  # its compact view there
        self._painted_at = 0.0
        self._painted: tuple[int, bool] | None = None
        # When the next event may paint (perf_counter seconds); never while nothing is shown.
        self._due = [math.inf]
        listener, _ = self.model.handlers(self._due, _painter(weakref.ref(self)))
        # (The model's handlers catch their own errors: a paint that fails must not break
        # a loop.)
        self._subscription = events.subscribe(listener, safe=True)
        weakref.finalize(self, self._subscription.close)

    @property
    def workers(self) -> list[str]:
        """The ids of the watched workers, in column order."""
        return list(self.model.ids)

    def refresh(self) -> None:
        """Paint the current state into the displayed widget now."""
        self._painted_at = time.perf_counter()
        if self._widget is None:
            self._due[0] = math.inf
            return
        self._due[0] = self._painted_at + INTERVAL
        key = (self.model.version(), self.closed)
        if key == self._painted and self.model.local not in self.model.ids:
            return  # nothing changed since the last paint (the local column is recomputed)
        self._painted = key
        page = render.html(self.model, self.closed)
        if self._widget.value != page:
            self._widget.value = page
        if self._side_view is not None:
            side = render.html(self.model, self.closed, compact=True)
            if self._side_view.value != side:
                self._side_view.value = side

    def end_cell(self) -> None:
        """Paint the final state of a cell, then let the new/deleted marks fade."""
        self.refresh()
        self.model.end_epoch()

    def close(self, keep_view: bool = False) -> None:
        """Unsubscribe; the widget is closed too unless ``keep_view`` (then it shows 'closed')."""
        if self.closed:
            return
        self.closed = True
        self._subscription.close()
        for key, panel in list(_open.items()):
            if panel is self:
                del _open[key]
        if self._side is not None:
            if self._side_view is not None:
                self.refresh()  # the side view's last state says "closed"
                self._side_view.close()
            self._side.close()  # a re-run must not pile up side panels
            self._side = self._side_view = None
        if self._widget is not None:
            self.refresh()
            if not keep_view:
                self._widget.close()
            self._widget = None
            self._due[0] = math.inf

    def open_side(self) -> bool:
        """Show the live view in JupyterLab's side area too (``sidecar``); True if shown.

        The side view stays in sight while the notebook scrolls; the cell's own output
        keeps the inline panel and its saved table. Needs a running notebook and the
        ``sidecar`` package; without them this does nothing.
        """
        if self._side is not None:
            return True
        if "IPython" not in sys.modules:
            return False
        from IPython import get_ipython

        if get_ipython() is None:
            return False
        try:
            from sidecar import Sidecar
        except ImportError:
            return False
        import ipywidgets

        self._view()  # the inline view: the cell's output, painted alongside
        self._side = Sidecar(title=f"fedlab: {', '.join(self.workers)}")
        self._side_view = ipywidgets.HTML(value=render.html(self.model, compact=True))
        # Set as the sidecar's content, not displayed inside it: no output of its own
        # reaches the cell (a kernel without a frontend would show it there).
        self._side.append_display_data(self._side_view)
        return True

    # -- display -------------------------------------------------------------------
    def __repr__(self) -> str:
        return render.text(self.model, self.closed)

    def _repr_html_(self) -> str:
        return render.html(self.model, self.closed)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        if not self.closed:
            try:
                bundle = self._view()._repr_mimebundle_()
            except ImportError:  # no ipywidgets: the static snapshot still reads well
                bundle = {}
        bundle["text/plain"] = repr(self)
        bundle["text/html"] = self._repr_html_()
        return bundle

    def _view(self) -> Any:
        if self._widget is None:
            import ipywidgets

            self._widget = ipywidgets.HTML(value=render.html(self.model))
            self._painted = None
            self._due[0] = self._painted_at + INTERVAL  # the first event paints
            _hook_ipython()
        return self._widget


def _after_cell(*_: Any) -> None:
    for panel in list(_open.values()):
        panel.end_cell()


def _hook_ipython() -> None:
    """Paint every open panel when a cell ends (registered once per shell)."""
    if "IPython" not in sys.modules:  # never import IPython for a plain script
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or shell in _hooked_shells:
        return
    shell.events.register("post_run_cell", _after_cell)
    _hooked_shells.add(shell)


def _ids(workers: tuple[Any, ...]) -> list[str]:
    if not workers:
        return [w.id for w in registry.all_workers()]
    ids = []
    for w in workers:
        wid = w if isinstance(w, str) else getattr(w, "id", None)
        if not isinstance(wid, str):
            raise TypeError(f"watch() takes workers or worker ids, like sy.watch(bob), not {w!r}")
        registry.get_worker(wid)  # a clear error for a worker that does not exist
        if wid not in ids:
            ids.append(wid)
    return ids


def watch(*workers: Any, side: bool = False) -> Panel:
    """A live panel of the given workers' stores (all workers if none given).

    Show it by making it the last expression of a cell: ``sy.watch(bob, alice)``.
    ``side=True`` also pins it in JupyterLab's side area, in sight while the notebook
    scrolls. Watching the same workers again replaces the previous panel; if that one
    was pinned, the new one takes its place in the side area (a student who watches again
    to see a snapshot in the cell must not lose the panel that stays in sight).
    """
    ids = _ids(workers)
    if not ids:
        raise ValueError("there are no workers to watch yet; create one with sy.VirtualWorker")
    key = tuple(ids)
    old = _open.pop(key, None)
    if old is not None:
        side = side or old._side is not None
        old.close(keep_view=True)
    panel = Panel(ids)
    _open[key] = panel
    _hook_ipython()
    if side:
        panel.open_side()
    return panel


def close_all() -> None:
    """Close every open panel (tests and ``sy.reset``-style cleanups)."""
    for panel in list(_open.values()):
        panel.close()


__all__ = ["Panel", "close_all", "local_id", "watch"]
