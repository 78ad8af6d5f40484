"""``sy.create_sandbox(globals())``: six workers holding scikit-learn's datasets, and a grid."""

from __future__ import annotations

import contextlib
import gc
import io

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import datasets

import fedlab as sy

pytestmark = pytest.mark.usefixtures("workers_undone")

NAMES = ["bob", "theo", "jason", "alice", "andy", "jon"]
TAGS = {
    "load_diabetes": ["#diabetes", "#boston", "#housing", "#boston_housing"],
    "load_breast_cancer": ["#breast_cancer", "#breast_cancer_dataset"],
    "load_digits": ["#digits", "#digits_dataset"],
    "load_iris": ["#iris", "#iris_dataset"],
    "load_wine": ["#wine", "#wine_dataset"],
    "load_linnerud": ["#linnerud", "#linnerrud_dataset"],
}
ALL_TAGS = sorted({t for tags in TAGS.values() for t in tags} | {"#data", "#target"})


def sandbox(verbose: bool = False) -> tuple[dict, str]:
    """A namespace filled by ``create_sandbox``, and what it printed."""
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        sy.create_sandbox(ns, verbose=verbose)
    return ns, out.getvalue()


def own_data(worker) -> dict:
    """The worker's store, checking that it holds only its own data (no holder)."""
    store = dict(worker.objects())
    assert all(worker.holder(k) is None for k in store)
    return store


def same(a: dict, b: dict) -> bool:
    """The same ids, each holding the very same object."""
    return a.keys() == b.keys() and all(a[k] is b[k] for k in a)


def test_the_namespace_gets_the_hook_the_six_workers_and_the_grid():
    ns, printed = sandbox()
    assert printed == "Setting up Sandbox...\nDone!\n"  # (PySyft prints these two even so)
    assert ns["hook"] is sy.local_worker.hook
    assert [w.id for w in ns["workers"]] == NAMES
    assert all(ns[name] is sy.get_worker(name) for name in NAMES)
    assert ns["grid"].workers == ns["workers"] and isinstance(ns["grid"], sy.PrivateGridNetwork)
    assert repr(ns["grid"]) == "<PrivateGridNetwork bob theo jason alice andy jon>"
    assert repr(ns["bob"]) == "<VirtualWorker id:bob #objects:12>"


@pytest.mark.parametrize("loader", sorted(TAGS))
def test_each_dataset_is_split_in_order_over_the_workers_as_tagged_float32(loader):
    ns, _ = sandbox()
    bunch = getattr(datasets, loader)()
    for part, name in (("#data", "data"), ("#target", "target")):
        whole = torch.tensor(bunch[name], dtype=torch.float32)
        found = ns["grid"].search(*TAGS[loader], part)
        assert list(found) == NAMES and all(len(ptrs) == 1 for ptrs in found.values())
        size = len(whole) // 6  # as PySyft: n // 6 rows each, the rest to the last worker
        sizes = [size] * 5 + [len(whole) - 5 * size]
        assert [p[0].shape[0] for p in found.values()] == sizes
        held = [sy.get_worker(w)._objects[p[0].id_at_location] for w, p in found.items()]
        assert all(t.dtype == torch.float32 for t in held)
        assert torch.equal(torch.cat(held), whole)
        assert all(t.tags == [*TAGS[loader], part] for t in held)
        assert all(p[0].child.tags == [*TAGS[loader], part] for p in found.values())


def test_the_data_are_each_worker_s_own_under_ids_1_to_12():
    ns, _ = sandbox()
    for w in ns["workers"]:
        store = own_data(w)
        assert sorted(store) == list(range(1, 13))
    described = sy.get_worker("alice").search("#boston", "#data")[0].child.description
    assert described.startswith("Diabetes dataset") and "Boston" in described
    assert sy.get_worker("alice").search("#iris")[0].child.description == "Iris plants dataset"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.sampled_from([*ALL_TAGS, "#nothing", "data"]), max_size=3))
def test_grid_search_finds_exactly_what_each_worker_s_search_finds(query):
    ns, _ = sandbox()
    grid = ns["grid"]
    found = grid.search(*query)
    each = {w.id: w.search(*query) for w in ns["workers"]}
    assert list(found) == [w for w, ptrs in each.items() if ptrs]  # only those with a match
    for w, ptrs in found.items():
        assert [p.id_at_location for p in ptrs] == [p.id_at_location for p in each[w]]
        assert all(p.location.id == w and set(query) <= set(p.child.tags) for p in ptrs)
    assert list(grid.search(query)) == list(found)  # (a list of tags, as PySyft passed it)


def test_pointers_from_a_search_free_nothing_and_computing_on_them_leaves_nothing():
    ns, _ = sandbox()
    before = {w.id: own_data(w) for w in ns["workers"]}
    data, target = ns["grid"].search("#iris", "#data"), ns["grid"].search("#iris", "#target")
    for w in NAMES:
        x = data[w][0]
        local = before[w][x.id_at_location]
        assert torch.equal((x * 2).sum().get(), (local * 2).sum())  # runs on the worker
    del data, target, x
    gc.collect()
    assert all(same(own_data(w), before[w.id]) for w in ns["workers"])


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["send", "compute", "get", "clear"]),
            st.sampled_from(NAMES),
            st.booleans(),  # keep the pointer it makes, or drop it at once
        ),
        max_size=8,
    )
)
def test_nothing_is_left_behind_and_a_reset_gives_the_data_back(program):
    ns, _ = sandbox()
    sy.reset()
    data = {w.id: dict(w.objects()) for w in ns["workers"]}
    kept, cleared, fetched = [], [], set()
    for kind, name, keep in program:
        w = ns[name]
        if kind == "clear":
            w.clear_objects()  # its own data stay (and come back, if fetched)
            cleared += [p for p in kept if p.location.id == name]  # (they point at nothing)
            kept = [p for p in kept if p.location.id != name]
            fetched.discard(name)
            continue
        if kind == "send":
            made = torch.ones(2).send(w)
        elif kind == "compute":
            made = w.search("#wine", "#data")[0].mean(0)
        elif name in fetched:
            continue
        else:  # get: its first tensor (id 1) comes here and leaves the worker
            ptr = w.search("#diabetes", "#data")[0]
            assert ptr.id_at_location == 1 and torch.equal(ptr.get(), data[name][1])
            fetched.add(name)
            continue
        if keep:
            kept.append(made)
        del made
    gc.collect()
    # Exactly the data not fetched, and what the kept pointers refer to, are left.
    for w in ns["workers"]:
        alive = {p.id_at_location for p in kept if p.location.id == w.id}
        expected = set(data[w.id]) - ({1} if w.id in fetched else set())
        assert set(w.objects()) == expected | alive
    del kept, cleared
    sy.reset()
    assert all(same(own_data(w), data[w.id]) for w in ns["workers"])


def test_a_second_call_is_harmless():
    ns, _ = sandbox()
    before = {w.id: own_data(w) for w in ns["workers"]}
    x = torch.tensor([1.0, 2.0]).send(ns["bob"])  # something of the student's, on bob
    again, printed = sandbox()
    assert printed == "Setting up Sandbox...\nDone!\n"
    assert again["workers"] == ns["workers"] and again["hook"] is ns["hook"]
    assert x.get().tolist() == [1.0, 2.0]  # still there, under its id
    for w in ns["workers"]:
        assert same(own_data(w), before[w.id])  # no data given twice
        assert len(w._data) == 12
    sy.reset()
    assert all(same(own_data(w), before[w.id]) for w in ns["workers"])


def test_a_worker_keeps_the_data_it_had():
    x = torch.tensor([5.0]).tag("#mine")
    sy.VirtualWorker(sy.local_worker.hook, id="theo", data=(x,))
    ns, _ = sandbox()
    theo = ns["theo"]
    assert theo.search("#mine")[0].id_at_location == 1 and len(theo.objects()) == 13
    sy.reset()
    assert theo.objects()[1] is x and len(own_data(theo)) == 13


def test_verbose_says_what_it_does_as_pysyft_did():
    _, printed = sandbox(verbose=True)
    lines = printed.splitlines()
    start = ["Setting up Sandbox...", "\t- Hooking PyTorch", "\t- Creating Virtual Workers:"]
    assert lines[:3] == start
    assert lines[3:9] == [f"\t\t- {n}" for n in NAMES]
    assert "\t\t- Diabetes Dataset, standing in for the Boston Housing Dataset" in lines
    assert "\tDistributing Datasets Amongst Workers..." in lines
    assert lines[-2:] == ["\tCollecting workers into a VirtualGrid...", "Done!"]


def test_without_data_it_makes_the_workers_and_grid_only():
    ns: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        sy.create_sandbox(ns, verbose=False, download_data=False)
    assert [w.id for w in ns["workers"]] == NAMES and ns["grid"].search("#iris") == {}


def test_a_namespace_is_needed_and_a_grid_is_made_of_workers():
    with pytest.raises(TypeError, match=r"sy.create_sandbox\(globals\(\)\)"):
        sy.create_sandbox("globals")
    with pytest.raises(TypeError, match="a grid is made of workers"):
        sy.PrivateGridNetwork("bob")


def test_an_existing_worker_given_data_holds_it():
    hook = sy.local_worker.hook
    sy.VirtualWorker(hook, id="theo")
    x = torch.tensor([5.0]).tag("#mine")
    theo = sy.VirtualWorker(hook, id="theo", data=(x,))
    assert [p.id_at_location for p in theo.search("#mine")] == [1]
