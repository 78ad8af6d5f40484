"""Who keeps a remote object alive: ``sy.explain(x)``, ``sy.explain("bob:1")``.

A remote object lives as long as some pointer to it does. That pointer is held by
a variable, by IPython's output history (``Out[4]``, ``_``), or by another worker's
store (a chain: ``me:3 -> alice:2 -> bob:1``), in which case we ask again who keeps
*that* pointer alive. This is why ``del x`` sometimes frees nothing.
"""

from __future__ import annotations

import gc
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from fedlab import events, pointer, registry
from fedlab.viz import style
from fedlab.viz.model import local_id

HISTORY = ("_", "__", "___")
_SKIP = re.compile(r"^(_i+|_i\d+|_\d+|_ih|_oh|_dh|In|Out|exit|quit|get_ipython|__\w+__)$")


@dataclass
class Holder:
    """A pointer that keeps an object alive, and what keeps that pointer alive."""

    pointer: str  # "me:3 -> bob:1"
    where: str  # "held by: x, Out[4]" or "in alice's store, id 2"
    names: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    holders: list[Holder] = field(default_factory=list)  # for a pointer in a store


@dataclass
class Explanation:
    """The answer of ``sy.explain``: a short, deterministic text (and HTML)."""

    target: str
    what: str
    exists: bool
    holders: list[Holder]

    def _lines(self, holders: list[Holder], depth: int) -> list[str]:
        out = []
        for h in holders:
            out.append(f"{'  ' * depth}{h.pointer}  {h.where}")
            out.extend(self._lines(h.holders, depth + 1))
        return out

    def _advice(self) -> str:
        names, history = [], []
        stack = list(self.holders)
        while stack:
            h = stack.pop(0)
            names += h.names
            history += h.history
            stack += h.holders
        steps = []
        if names:  # ``del model`` frees ``model.weight``; ``del xs`` frees ``xs[0]``
            roots = dict.fromkeys(re.split(r"[.\[]", n)[0] for n in names)
            steps.append("del " + ", ".join(roots))
        if history:  # not %reset out: it leaves IPython's hidden copy of _ behind
            steps.append("%fedlab forget (clears " + ", ".join(dict.fromkeys(history)) + ")")
        return f"To free {self.target}: " + "; then ".join(steps) if steps else ""

    def __repr__(self) -> str:
        head = f"Who keeps {self.target} alive" + (f" ({self.what})" if self.what else "")
        if not self.exists:
            loc, _, i = self.target.partition(":")
            return f"{loc} holds no object {i}: it was deleted, fetched with .get(), or moved."
        if not self.holders:
            loc = self.target.split(":")[0]
            body = [f"  no pointer: nothing will delete it ({loc}.clear_objects() would)"]
        else:
            body = self._lines(self.holders, 1)
        advice = self._advice()
        return "\n".join([head, *body, *([advice] if advice else [])])

    def _repr_html_(self) -> str:
        lines = repr(self).split("\n")
        loc = self.target.split(":")[0]
        body = "".join(
            f'<div style="white-space:pre;font-family:{style.MONO};font-size:12px">'
            f"{style.esc(s)}</div>"
            for s in lines[1:]
        )
        return (
            f'<div class="fedlab-explain" style="font-family:{style.SANS};border-left:4px solid '
            f'{style.colour(loc)};padding:4px 10px"><div style="font-weight:600">'
            f"{style.esc(lines[0])}</div>{body}</div>"
        )


def _target(x: Any) -> tuple[str, int]:
    if isinstance(x, str):
        loc, sep, i = x.partition(":")
        if not sep or not i.isdigit():
            raise ValueError(f'name a remote object as "worker:id", like "bob:1", not {x!r}')
        return loc, int(i)
    p = pointer.record_of(x)
    if p is not None and p.id_at_location is not None:
        return p.location_id, p.id_at_location
    raise TypeError(f'explain() takes a pointer or a "worker:id" such as "bob:1", not {x!r}')


def _wrappers_of(p: pointer.PointerTensor) -> list[Any]:
    """The tensor-like wrappers whose child is ``p`` (found through the garbage collector)."""
    found = []
    for d in gc.get_referrers(p):
        if isinstance(d, dict) and d.get("child") is p:
            found += [w for w in gc.get_referrers(d) if getattr(w, "__dict__", None) is d]
    return found


def _scan(value: Any, label: str, wanted: set[int], out: list[str], depth: int = 0) -> None:
    """Add ``label`` (or ``label[i]``, ``label.weight``) where ``value`` holds a wanted wrapper."""
    if id(value) in wanted:
        out.append(label)
        return
    if depth >= 2:
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _scan(v, f"{label}[{i}]", wanted, out, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            _scan(v, f"{label}[{k!r}]", wanted, out, depth + 1)
    elif hasattr(value, "named_parameters") and hasattr(value, "named_buffers"):
        for n, v in [*value.named_parameters(), *value.named_buffers()]:
            _scan(v, f"{label}.{n}", wanted, out, 2)
    else:
        child = getattr(value, "__dict__", {}).get("child")
        inner = getattr(child, "child", None)
        if isinstance(inner, dict):  # a multi-pointer: its per-worker pointers
            for k, v in inner.items():
                _scan(v, f"{label}.child[{k!r}]", wanted, out, 2)


def _grad_owners(p: pointer.PointerTensor) -> list[pointer.PointerTensor]:
    """The pointers that keep ``p`` as the answer to their ``.grad``."""
    return [
        q
        for q in pointer.live_pointers()
        if getattr(q.grad_cache, "__dict__", {}).get("child") is p
    ]


def _names(p: pointer.PointerTensor, spaces: list[dict]) -> tuple[list[str], list[str]]:
    """Variables, and output-history entries, that hold pointer ``p``."""
    wanted = {id(w) for w in _wrappers_of(p)}
    names: list[str] = []
    history: list[str] = []
    seen: set[int] = set()
    for ns in spaces:
        if id(ns) in seen:
            continue
        seen.add(id(ns))
        out = ns.get("Out")
        if isinstance(out, dict):
            for n in sorted(k for k in out if isinstance(k, int)):
                _scan(out[n], f"Out[{n}]", wanted, history)
        for name in HISTORY:
            if name in ns:
                _scan(ns[name], name, wanted, history, depth=2)
        for name in sorted(ns):
            if name.endswith(" (hidden)"):
                _scan(ns[name], name, wanted, history, depth=2)
            elif name not in HISTORY and not _SKIP.match(name):
                _scan(ns[name], name, wanted, names)
    return list(dict.fromkeys(names)), list(dict.fromkeys(history))


def _store_key(owner: Any, p: pointer.PointerTensor) -> int | None:
    for k, obj in list(owner.objects().items()):
        if pointer.record_of(obj) is p:
            return k
    return None


def _holders(loc: str, i: int, spaces: list[dict], depth: int = 0) -> list[Holder]:
    me = local_id()
    found = []
    for p in pointer.live_pointers():
        if (p.location_id, p.id_at_location) != (
            loc,
            i,
        ) or p.generation != registry.current_generation:
            continue
        text = f"{p.owner.id}:{p.id} -> {loc}:{i}"
        key = _store_key(p.owner, p) if p.owner.id != me else None
        if key is not None:
            inner = _holders(p.owner.id, key, spaces, depth + 1) if depth < 8 else []
            found.append(Holder(text, f"in {p.owner.id}'s store, id {key}", holders=inner))
            continue
        found.append(_held(text, p, spaces, depth))
    return sorted(found, key=lambda h: h.pointer)


def _held(text: str, p: pointer.PointerTensor, spaces: list[dict], depth: int) -> Holder:
    """What keeps the local pointer ``p`` alive: variables, history, or a tensor's ``.grad``."""
    names, history = _names(p, spaces)
    # The pointer ``.grad`` gave is kept by its tensor's pointer, as torch keeps ``.grad``.
    owners = [
        _held(f"{q.owner.id}:{q.id} -> {q.location_id}:{q.id_at_location}", q, spaces, depth + 1)
        for q in _grad_owners(p)
        if depth < 8
    ]
    where = ", ".join(names + history)
    if owners:
        where = (where + "; " if where else "") + "the .grad of:"
    where = where or "nothing I can name (a list entry, a function's local, a cycle)"
    return Holder(text, f"held by: {where}", names, history, holders=owners)


def _namespaces(namespace: dict | None, depth: int) -> list[dict]:
    if namespace is not None:
        spaces = [namespace]
    else:
        frame = sys._getframe(depth + 1)
        spaces = [frame.f_locals, frame.f_globals]
    if "IPython" in sys.modules:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            spaces.append(shell.user_ns)
            # ``%reset out`` empties ``_`` in user_ns but not IPython's hidden copy, which
            # keeps the last output alive until the next one: name it too.
            hidden = getattr(shell, "user_ns_hidden", {})
            spaces.append(
                {
                    f"{k} (hidden)": hidden[k]
                    for k in HISTORY
                    if k in hidden and hidden[k] is not shell.user_ns.get(k)
                }
            )
    return spaces


def explain(target: Any, namespace: dict | None = None) -> Explanation:
    """Name the variables, history entries and stores that keep a remote object alive.

    ``target`` is a pointer (``x``) or a ``"worker:id"`` string (``"bob:1"``).
    Without ``namespace``, the caller's variables (and IPython's history) are searched.
    """
    loc, i = _target(target)
    spaces = _namespaces(namespace, 1)
    what, exists = "", True
    try:
        obj = registry.get_worker(loc).get_obj(i)
        kind, summary = events.describe(obj)
        what = f"{kind} {summary}".strip()
    except Exception:  # deleted already, or a worker we cannot look into
        exists = loc not in {w.id for w in registry.all_workers()}
    holders = _holders(loc, i, spaces)
    del spaces
    return Explanation(f"{loc}:{i}", what, exists, holders)


def forget_outputs(shell: Any) -> int:
    """Clear IPython's output history (``Out``, ``_1``..., ``_``, ``__``, ``___``) everywhere.

    ``%reset -f out`` empties ``_`` in the user namespace but leaves the old value in
    IPython's hidden copy, and from then on ``_`` stops updating; so the last output
    (maybe a pointer) stays alive. This clears both copies. Returns the entries dropped.
    """
    n = len(shell.user_ns.get("_oh", {}))
    shell.displayhook.flush()  # what %reset -f out does
    # flush() drops _1.._{prompt_count}; a kernel run without history (nbval) numbers
    # its outputs from _0, so drop every _<n> it left behind.
    for k in [k for k in shell.user_ns if k[:1] == "_" and k[1:].isdigit()]:
        del shell.user_ns[k]
    for k in HISTORY:
        shell.user_ns[k] = ""
        shell.user_ns_hidden[k] = ""
    gc.collect()
    return n
