"""sy.explain: who keeps a remote object alive (variables, Out history, other stores)."""

from __future__ import annotations

import pytest
import torch

import fedlab as sy


@pytest.fixture
def shell():
    """A real IPython shell with output history, as in a notebook."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_cell("import torch, fedlab as sy; bob = sy.get_worker('bob')", store_history=True)
    yield ip
    ip.reset(new_session=False)
    InteractiveShell.clear_instance()


def test_names_the_variables_of_the_caller(bob):
    x = torch.tensor([1, 2, 3]).send(bob)
    y = x
    xs = [x]
    assert repr(sy.explain(x)) == (
        "Who keeps bob:1 alive (tensor int64[3])\n"
        "  me:1 -> bob:1  held by: x, xs[0], y\n"
        "To free bob:1: del x, xs, y"
    )
    assert repr(sy.explain("bob:1")) == repr(sy.explain(x))
    del x, y, xs


def test_names_the_output_history_that_keeps_a_pointer_alive(shell):
    shell.run_cell("x = torch.tensor([1.0, 2.0]).send(bob)", store_history=True)
    shell.run_cell("x", store_history=True)  # displayed: Out[3] and _ now hold it
    shell.run_cell("del x", store_history=True)
    assert sy.get_worker("bob")._objects  # del x freed nothing
    result = shell.run_cell("sy.explain('bob:1')", store_history=True).result
    assert repr(result) == (
        "Who keeps bob:1 alive (tensor float32[2])\n"
        "  me:1 -> bob:1  held by: Out[3], _\n"
        "To free bob:1: %fedlab forget (clears Out[3], _)"
    )
    assert "Out[3]" in result._repr_html_()
    shell.run_cell("%reset -f out", store_history=True)
    # IPython keeps a hidden copy of the last output: explain names it too.
    assert repr(sy.explain("bob:1", namespace=shell.user_ns)).splitlines()[1:] == [
        "  me:1 -> bob:1  held by: __ (hidden)",
        "To free bob:1: %fedlab forget (clears __ (hidden))",
    ]
    shell.run_cell("%load_ext fedlab", store_history=True)
    shell.run_cell("%fedlab forget", store_history=True)
    assert not sy.get_worker("bob")._objects  # now the pointer died and bob freed it
    shell.run_cell("y = torch.tensor([3]).send(bob)\ny", store_history=True)
    assert shell.user_ns["_"] is shell.user_ns["y"]  # and _ follows the outputs again


def test_names_the_store_of_a_chain(bob, alice):
    c = torch.tensor([1.0]).send(bob).send(alice)
    assert repr(sy.explain("bob:1")) == (
        "Who keeps bob:1 alive (tensor float32[1])\n"
        "  alice:1 -> bob:1  in alice's store, id 1\n"
        "    me:2 -> alice:1  held by: c\n"
        "To free bob:1: del c"
    )
    del c


def test_model_parameters_and_missing_objects(bob):
    model = torch.nn.Linear(2, 1).send(bob)
    text = repr(sy.explain(model.weight))
    assert "held by: model.weight" in text and text.endswith("To free bob:1: del model")
    x = torch.tensor([1]).send(bob)
    x.get()
    assert repr(sy.explain("bob:3")) == (
        "bob holds no object 3: it was deleted, fetched with .get(), or moved."
    )
    with pytest.raises(ValueError, match="worker:id"):
        sy.explain("bob")
    with pytest.raises(TypeError, match="pointer"):
        sy.explain(torch.tensor([1]))


def test_an_object_nobody_points_to(bob):
    x = torch.tensor([7]).send(bob)
    x.garbage_collect_data = False
    del x
    assert repr(sy.explain("bob:1")) == (
        "Who keeps bob:1 alive (tensor int64[1])\n"
        "  no pointer: nothing will delete it (bob.clear_objects() would)"
    )


def test_a_gradient_is_kept_by_its_tensors_pointer(bob):
    w = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
    (w * w).sum().backward()
    g = w.grad.id_at_location
    text = repr(sy.explain(f"bob:{g}"))
    assert text.splitlines()[1:3] == [
        f"  me:{w.grad.id} -> bob:{g}  held by: the .grad of:",
        f"    me:{w.id} -> bob:{w.id_at_location}  held by: w",
    ]
    assert text.endswith(f"To free bob:{g}: del w")
