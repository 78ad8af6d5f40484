"""Plans: a traced function runs on a worker in one message, bit for bit like plain torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fedlab as sy
from fedlab import messages as m
from fedlab.exceptions import (
    ObjectNotFoundError,
    OperationNotAllowedError,
    PlanError,
    SerdeError,
    TensorsNotCollocatedException,
)
from tests.test_core_properties import (
    BINARY,
    INPLACE,
    UNARY,
    expected_objects,
    matrix,
    run_program,
    stored_objects,
)


def train_step(w, b, x, y):
    """One SGD step of a linear model, as a student writes it."""
    opt = torch.optim.SGD([w, b], lr=0.1)
    opt.zero_grad()
    loss = F.mse_loss(F.linear(x, w, b), y)
    loss.backward()
    opt.step()
    return loss.detach()


def data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(1, 4, generator=g).requires_grad_()
    b = torch.zeros(1, requires_grad=True)
    return w, b, torch.randn(8, 4, generator=g), torch.randn(8, 1, generator=g)


def plain(w, b, x, y, steps: int):
    """The oracle: the same training in plain torch."""
    w, b = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    losses = [train_step(w, b, x, y) for _ in range(steps)]
    return w, b, losses


def messages_of(fn) -> list:
    log: list = []
    with sy.subscribe(log.append):
        fn()
    return [e for e in sy.log.messages(log) if e.kind != "reply"]


def test_a_training_plan_on_a_worker_equals_plain_torch_bit_for_bit(workers):
    bob = workers[0]
    w, b, x, y = data()
    plan = sy.func2plan()(train_step)
    ptrs = [t.send(bob) for t in (w, b, x, y)]
    losses = [plan(*ptrs).get() for _ in range(5)]
    wp, bp, losses_here = plain(w, b, x, y, 5)
    assert all(torch.equal(a, e) for a, e in zip(losses, losses_here))
    assert sorted(bob._objects) == sorted(p.id_at_location for p in ptrs)  # only the inputs
    w_back, b_back = ptrs[0].get(), ptrs[1].get()
    for back, here in ((w_back, wp), (b_back, bp)):
        assert torch.equal(back, here) and torch.equal(back.grad, here.grad)


def test_a_plan_call_is_one_message_where_the_same_step_op_by_op_is_many(bob):
    w, b, x, y = data()
    ptrs = [t.send(bob) for t in (w, b, x, y)]
    plan = sy.Plan(train_step).build(w, b, x, y)
    kept: list = []  # (the loss's pointer: dropping it would send a delete)
    sent = messages_of(lambda: kept.append(plan(*ptrs)))
    assert [(e.kind, e.receiver, e.summary) for e in sent] == [
        ("plan", "bob", "plan train_step (12 ops)")
    ]
    assert sent[0].ids == tuple(p.id_at_location for p in ptrs)
    op_by_op = messages_of(lambda: train_step(*ptrs))
    assert len(op_by_op) >= 10  # every operation, gradient read and delete is a message


def test_a_plan_returns_pointers_and_updates_its_inputs_in_place(bob):
    def scaled(x, w):
        w.mul_(2)
        return x + w, x * w

    x, w = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    xp, wp = x.send(bob), w.send(bob)
    s, p = sy.Plan(scaled)(xp, wp)
    assert isinstance(s, sy.Wrapper) and s.location is bob and s.shape == (2,)
    assert torch.equal(s.get(), torch.tensor([7.0, 10.0]))
    assert torch.equal(p.get(), torch.tensor([6.0, 16.0]))
    assert torch.equal(wp.get(), torch.tensor([6.0, 8.0]))


def test_an_input_returned_by_a_plan_is_the_same_pointer(bob):
    plan = sy.Plan(lambda x: x.add_(1))
    xp = torch.ones(2).send(bob)
    assert plan(xp) is xp
    assert list(bob._objects) == [xp.id_at_location]


def test_called_with_local_tensors_a_plan_replays_the_same_operations(bob):
    w, b, x, y = data()
    plan = sy.Plan(train_step).build(w, b, x, y)
    assert w.grad is None  # building traced copies: the examples are untouched
    wl, bl = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    losses = [plan(wl, bl, x, y) for _ in range(3)]
    wp, bp, losses_here = plain(w, b, x, y, 3)
    assert all(torch.equal(a, e) for a, e in zip(losses, losses_here))
    assert torch.equal(wl, wp) and torch.equal(bl, bp) and torch.equal(wl.grad, wp.grad)


def test_the_first_call_builds_the_plan_from_pointers(bob):
    plan = sy.Plan(lambda x, y: (x * y).sum(dim=0))
    assert not plan.is_built and repr(plan) == "<Plan <lambda> (not built)>"
    xp, yp = torch.ones(3, 2).send(bob), torch.full((3, 2), 2.0).send(bob)
    assert torch.equal(plan(xp, yp).get(), torch.full((2,), 6.0))
    assert repr(plan) == "<Plan <lambda>: 2 inputs, 2 operations>"


def test_func2plan_with_shapes_builds_at_once_and_code_reads_like_the_function():
    @sy.func2plan(args_shape=[(2, 3), (3,)])
    def affine(x, b):
        return torch.relu(x.matmul(torch.ones(3, 1)).squeeze(1) + b.sum())

    assert affine.is_built
    assert affine.code == "\n".join(
        [
            "def affine(x, b):",
            "    _2 = <constant float32[3, 1]>",
            "    _3 = matmul(x, _2)",
            "    _4 = squeeze(_3, 1)",
            "    _5 = sum(b)",
            "    _6 = add(_4, _5)",
            "    _7 = relu(_6)",
            "    return _7",
        ]
    )


def test_the_optimizer_step_is_recorded_without_grad_and_zero_grad_is_recorded():
    plan = sy.Plan(train_step).build(*data())
    lines = plan.code.splitlines()
    assert "    w.grad = None" in lines and "    b.grad = None" in lines
    assert lines[-7:-2] == [
        "    backward(_9)",  # (arguments left at their defaults are not shown)
        "    _11 = w.grad  # no grad",
        "    _12 = b.grad  # no grad",
        "    add_(w, _11, alpha=-0.1)  # no grad",  # in place: w keeps its name
        "    add_(b, _12, alpha=-0.1)  # no grad",
    ]


def test_a_gradient_the_worker_does_not_have_yet_gets_a_clear_error(bob):
    def step(x, w):
        if w.grad is not None:  # traced with a gradient: recorded as always true
            w.grad.zero_()
        (x * w).sum().backward()

    wp = torch.zeros(2, requires_grad=True).send(bob)
    with pytest.raises(PlanError, match="before any backward in the plan"):  # at build
        sy.Plan(step)(torch.ones(2).send(bob), wp)
    assert wp.grad is None
    # Should such a plan reach a worker anyway, the worker says what went wrong.
    steps = (
        m.RunOp("Tensor.grad.__get__", (m.Slot(0, -1),), {}, True),
        m.RunOp("Tensor.zero_", (m.Slot(1, -1),), {}, True),
    )
    with pytest.raises(PlanError, match=r"uses a \.grad that is None here"):
        _send_plan(bob, [wp.id_at_location], steps)


def test_a_plan_without_zero_grad_accumulates_as_torch_does(bob):
    def step(x, w):  # no zero_grad: the gradient adds up over calls, as in plain torch
        (x * w).sum().backward()
        with torch.no_grad():
            w.sub_(0.1 * w.grad)

    x, w = torch.tensor([1.0, 2.0]), torch.zeros(2, requires_grad=True)
    xp, wp = x.send(bob), w.send(bob)
    plan = sy.Plan(step)
    for _ in range(3):
        plan(xp, wp)
        step(x, w)
    back = wp.get()
    assert torch.equal(back, w) and torch.equal(back.grad, w.grad)


def test_func2plan_from_shapes_says_how_to_build_a_training_step():
    with pytest.raises(PlanError, match="build it from example tensors or pointers"):
        sy.func2plan(args_shape=[(1, 4), (1,), (8, 4), (8, 1)])(train_step)


def test_a_second_call_does_not_accumulate_gradients(bob):
    # Traced with gradients present, so zero_grad is in the plan whatever the worker holds.
    w, b, x, y = data()
    ptrs = [t.send(bob) for t in (w, b, x, y)]
    plan = sy.Plan(train_step)
    for _ in range(2):
        plan(*ptrs)
    wp, _, _ = plain(w, b, x, y, 2)
    assert torch.equal(ptrs[0].grad.get(), wp.grad)


@pytest.mark.parametrize(
    "body, words",
    [
        (lambda x: x * x.sum().item(), "reads the values"),
        (lambda x: x if bool(x.sum() > 0) else -x, "reads the values"),
        (lambda x: x.as_strided((1,), (1,)), "not on fedlab's allowlist"),
        (lambda x: x.sum().tolist(), "reads the values"),
        (lambda x: x.shape, "returns a Size"),
        (lambda x: (x, x), "same tensor twice"),
    ],
)
def test_what_a_plan_may_not_do_is_refused_when_it_is_built(body, words):
    with pytest.raises(PlanError, match=words):
        sy.Plan(body, name="p").build(torch.ones(3))


def test_a_plan_may_ask_shapes_and_loop_on_them():
    def rows(x):
        return torch.stack([x[i] * i for i in range(x.shape[0])])

    plan = sy.Plan(rows).build(torch.ones(3, 2))
    x = torch.arange(6.0).view(3, 2)
    assert torch.equal(plan(x), rows(x))


def test_a_pointer_the_plan_was_not_given_is_refused(bob):
    far = torch.ones(3).send(bob)
    with pytest.raises(PlanError, match="pass the pointer as an argument"):
        sy.Plan(lambda x: x + far).build(torch.ones(3))


def test_wrong_inputs_are_refused_before_anything_travels(bob, alice):
    plan = sy.Plan(lambda x, y: x.add_(y)).build(torch.ones(2), torch.ones(2))
    xp, yp, far = torch.ones(2).send(bob), torch.ones(2).send(bob), torch.ones(2).send(alice)
    cases = [
        ((xp, torch.ones(3).send(bob)), PlanError, r"built for float32\[2\] as input 2"),
        ((xp, far), TensorsNotCollocatedException, "two different workers"),
        ((xp, torch.ones(2)), TensorsNotCollocatedException, "local tensor"),
        ((xp,), PlanError, "takes 2 inputs, but got 1"),
        ((xp, 1.0), PlanError, "not float"),
    ]
    before = stored_objects([bob, alice])
    for args, error, words in cases:
        log: list = []
        with sy.subscribe(log.append), pytest.raises(error, match=words):
            plan(*args)
        assert log == []
    assert stored_objects([bob, alice]) == before
    assert torch.equal(xp.get(), torch.ones(2))
    spent = yp
    spent.get()
    with pytest.raises((ObjectNotFoundError, sy.exceptions.FedlabError)):
        plan(xp, spent)


def _send_plan(worker, inputs, steps, outputs=()):
    """A hand-made plan: the worker itself works out which inputs it may change."""
    me = sy.local_worker
    plan = m.PlanDef("hand-made", steps, outputs, (), len(inputs))
    msg = m.RunPlan(plan, tuple(m.ObjRef(i) for i in inputs))
    return me.send_msg(msg, worker)


def test_a_worker_refuses_a_plan_with_an_operation_off_the_allowlist_and_runs_nothing(bob):
    xp = torch.ones(2).send(bob)
    steps = (
        m.RunOp("Tensor.add_", (m.Slot(0, -1), 1.0), {}, True),
        m.RunOp("os.system", ("echo hi",), {}, True),
    )
    with pytest.raises(OperationNotAllowedError, match=r"os\.system"):
        _send_plan(bob, [xp.id_at_location], steps)
    assert torch.equal(xp.get(), torch.ones(2))


@pytest.mark.parametrize(
    "steps, outputs, words",
    [
        ((m.RunOp("Tensor.neg", (m.Slot(5, -1),), {}, True),), (), "does not exist yet"),
        ((m.RunOp("Tensor.neg", (m.ObjRef(1),), {}, True),), (), "slots"),
        (("not a step",), (), "operations and constant tensors"),
        ((), (m.Slot(3, -1),), "does not exist yet"),
        ((), (m.Slot(0, -1), m.Slot(0, -1)), "distinct slots"),
    ],
)
def test_a_worker_refuses_a_malformed_plan(bob, steps, outputs, words):
    xp = torch.ones(2).send(bob)
    with pytest.raises(SerdeError, match=words):
        _send_plan(bob, [xp.id_at_location], steps, outputs)
    with pytest.raises(SerdeError):
        _send_plan(bob, [xp.id_at_location], b"\x00garbage")
    assert list(bob._objects) == [xp.id_at_location]


def test_a_plan_that_fails_midway_leaves_the_store_as_it_was(workers):
    bob = workers[0]
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    wp = w.send(bob)
    (w * 3).sum().backward()
    grad_before = w.grad.clone()
    # Change w and its gradient in place, then fail on shapes that do not fit.
    steps = (
        m.RunOp("Tensor.add_", (m.Slot(0, -1), 5.0), {}, False),
        m.RunOp("Tensor.grad.__set__", (m.Slot(0, -1), None), {}, True),
        m.RunOp("Tensor.mm", (m.Slot(0, -1), m.Slot(0, -1)), {}, True),
    )
    with pytest.raises(RuntimeError, match="on bob"):
        _send_plan(bob, [wp.id_at_location], steps, (m.Slot(3, -1),))
    assert list(bob._objects) == [wp.id_at_location]
    back = wp.get()
    assert torch.equal(back, torch.tensor([1.0, 2.0])) and back.grad is None
    assert grad_before is not None


def test_a_plan_runs_on_tensors_a_worker_holds_not_on_pointers(bob, alice):
    chain = torch.ones(2).send(alice).send(bob)  # bob holds a pointer to alice
    with pytest.raises(PlanError, match="is a pointer"):
        sy.Plan(lambda x: x + 1)(chain)


SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _two(x, y):
    return x + y, x * y


@SETTINGS
@given(actions=st.lists(st.tuples(st.sampled_from("cdkg"), st.integers(0, 20)), max_size=20))
def test_nothing_is_left_behind_by_plans(bob, alice, actions):
    sy.reset()
    ws = [bob, alice]
    plan = sy.Plan(_two).build(torch.ones(2), torch.ones(2))
    held = [torch.ones(2).send(w) for w in ws for _ in range(2)]
    for kind, n in actions:
        if kind == "c":  # call the plan on two pointers of one worker
            w = ws[n % 2]
            mine = [p for p in held if p.location is w]
            if len(mine) >= 2:
                held.extend(plan(mine[n % len(mine)], mine[(n + 1) % len(mine)]))
        elif kind == "d" and held:  # drop a pointer
            held.pop(n % len(held))
        elif kind == "k" and held:  # keep one of two results only
            held.append(plan(held[0], held[0])[0])
        elif kind == "g" and held:
            held.pop(n % len(held)).get()
        assert stored_objects(ws) == expected_objects(ws)


def test_a_plan_a_worker_has_seen_is_checked_again_for_other_inputs(bob):
    xp, yp = torch.ones(2).send(bob), torch.ones(2).send(bob)
    steps = (m.RunOp("Tensor.add", (m.Slot(0, -1), m.Slot(1, -1)), {}, True),)
    assert _send_plan(bob, [xp.id_at_location, yp.id_at_location], steps) == ()
    with pytest.raises(SerdeError, match="does not exist yet"):  # slot 1 is no input now
        _send_plan(bob, [xp.id_at_location], steps)


program_step = st.one_of(
    st.tuples(st.just("u"), st.sampled_from(sorted(UNARY)), st.integers(0, 50)),
    st.tuples(
        st.just("b"), st.sampled_from(sorted(BINARY)), st.integers(0, 50), st.integers(0, 50)
    ),
    st.tuples(st.just("i"), st.sampled_from(sorted(INPLACE)), st.integers(0, 50)),
)


def _program(steps):
    """A function of tensors running ``steps``; returns every value it made, as a tuple."""

    def run(*xs):
        made = run_program(steps, *xs)[len(xs) :]
        return tuple(made) if made else None

    return run


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit, NaN included (long programs can overflow)."""
    return (
        a.shape == b.shape
        and torch.equal(a.isnan(), b.isnan())
        and torch.equal(a.nan_to_num(), b.nan_to_num())
    )


@SETTINGS
@given(inputs=st.lists(matrix, min_size=1, max_size=3), steps=st.lists(program_step, max_size=10))
def test_random_programs_as_plans_equal_local_torch(workers, inputs, steps):
    sy.reset()
    bob = workers[0]
    fn = _program(steps)
    local = [t.clone() for t in inputs]
    remote = [t.send(bob) for t in inputs]
    try:
        expected = fn(*local)  # plain torch, on local copies
    except RuntimeError:  # (in place on an expanded view): refused the same, nothing sent
        with pytest.raises(RuntimeError):
            sy.Plan(fn)(*remote)
        assert sorted(bob._objects) == sorted(r.id_at_location for r in remote)
        return
    got = sy.Plan(fn)(*remote)
    if expected is None:
        assert got is None
    else:
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert _same(g.copy().get(), e)
    for r, e in zip(remote, local):  # the inputs changed in place, as here
        assert _same(r.copy().get(), e)


def test_a_failed_plan_puts_back_a_view_s_base_and_its_shape(bob):
    xp = torch.arange(6.0).send(bob)
    view = xp[2:4]  # a view of x, stored on bob: changing it changes x
    steps = (
        m.RunOp("Tensor.mul_", (m.Slot(0, -1), 10.0), {}, True),
        m.RunOp("Tensor.unsqueeze_", (m.Slot(0, -1), 0), {}, True),
        m.RunOp("Tensor.mm", (m.Slot(0, -1), m.Slot(0, -1)), {}, True),  # fails
    )
    with pytest.raises(RuntimeError, match="on bob"):
        _send_plan(bob, [view.id_at_location], steps)
    assert torch.equal(view.get(), torch.tensor([2.0, 3.0]))
    assert torch.equal(xp.get(), torch.arange(6.0))
