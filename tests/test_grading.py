"""The grader's checks: privacy criteria on the message log, reports, and check() itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fedlab as sy
from fedlab.grading import EXERCISES, Report, Result, check, recorder, start
from fedlab.grading.criteria import same_values

pytestmark = pytest.mark.filterwarnings("ignore:torch is already hooked")
ROOT = Path(__file__).resolve().parent.parent
from tests.support.grading import no_leftovers, variants  # noqa: F401, E402


@pytest.mark.parametrize("name", sorted(variants.EXPECTED))
def test_known_wrong_solution_loses_exactly_its_criterion(name):
    exercise, replace = variants.VARIANTS[name]
    ns = variants.run_in_process(variants.submission(exercise, replace))
    report = check(exercise, namespace=ns)
    failed = {r.name for r in report.results if not r.passed}
    assert failed == variants.EXPECTED[name], repr(report)


def test_privacy_failure_names_the_message():
    ns = variants.run_in_process(variants.submission(*variants.VARIANTS["linear-model-peek"]))
    result = next(r for r in check("linear-model", namespace=ns).results if not r.passed)
    assert "bob -> me: reply to a fetch (float32[4, 2])" in result.message


def test_privacy_fails_closed_without_a_recording():
    """Deleting start(...) from the first cell must not make the privacy checks pass."""
    nb = variants.submission("linear-model")
    nb.cells[1].source = nb.cells[1].source.replace(
        'bob = start("linear-model")', 'sy.reset()\nbob = sy.VirtualWorker(hook, id="bob")'
    )
    ns = variants.run_in_process(nb)
    report = check("linear-model", namespace=ns)
    by_name = {r.name: r for r in report.results}
    assert not by_name["the weights were updated on bob"].passed
    assert "not recording" in by_name["the weights were updated on bob"].message
    assert not by_name["the training data and targets never left bob"].passed
    assert by_name["weights and bias live on bob"].passed  # what it earns, it keeps


def test_check_runs_any_number_of_times_and_in_any_order():
    nb = variants.submission("pointer-chains")
    ns = variants.run_in_process(nb)
    first = repr(check("pointer-chains", namespace=ns))
    assert first == repr(check("pointer-chains", namespace=ns))  # checking changes nothing
    # Re-running the given cell and then the solution again (out of order) still grades fully.
    for index in (2, 4, 2, 4):
        exec(nb.cells[index].source, ns)
    report = check("pointer-chains", namespace=ns)
    assert report.score == report.max_score, repr(report)
    # Running the solution cell a second time moves nothing and still passes.
    ns["bob"].clear_objects()  # a different student mistake: bob is wiped afterwards
    assert check("pointer-chains", namespace=ns).score == report.max_score


def test_check_reads_the_callers_globals():
    """Outside IPython, check() grades the variables of the module that calls it."""
    from fedlab.grading.exercises.basics import X, Y

    hook = sy.TorchHook(torch)
    start("remote-tensors")
    bob, alice = sy.VirtualWorker(hook, id="bob"), sy.VirtualWorker(hook, id="alice")
    x_ptr, y_ptr = X.clone().send(bob), Y.clone().send(alice)
    globals()["total"] = x_ptr.get() + y_ptr.get()
    try:
        report = check("remote-tensors")
    finally:
        del globals()["total"]
    assert report.score == report.max_score == 4, repr(report)


def test_unknown_exercise_is_a_clear_error():
    with pytest.raises(KeyError, match="linear-model"):
        check("no-such-exercise", namespace={})


def test_recorded_tensor_is_a_copy():
    sy.TorchHook(torch)
    bob = start("linear-model")
    rec = recorder.current()
    fetched = torch.tensor([1.0, 2]).send(bob).get()
    fetched.add_(100)  # the student changes the fetched tensor in place afterwards
    assert any(same_values(e.tensor, torch.tensor([1.0, 2])) for e in rec.log if e.sender == "bob")


def test_report_text_html_and_gradescope():
    report = Report("demo", [Result("a", 2, 2, "fine"), Result("b <i>", 1, 0, "no", "try x")])
    assert repr(report) == (
        "demo: 2/3 points\n"
        "  [pass] a (2/2)\n         fine\n"
        "  [FAIL] b <i> (0/1)\n         no\n         hint: try x"
    )
    html = report._repr_html_()
    assert "b &lt;i&gt;" in html and "hint: try x" in html and "2/3 points" in html
    gs = report.gradescope()
    assert gs["score"] == 2
    assert gs["tests"][1] == {"name": "b <i>", "score": 0, "max_score": 1, "status": "failed",
                              "output": "no\nhint: try x"}  # fmt: skip
    assert Report.from_dict(report.to_dict()) == report


def test_every_exercise_has_two_to_five_criteria_with_hints():
    for exercise in EXERCISES.values():
        assert 2 <= len(exercise.criteria) <= 5
        names = [c.name for c in exercise.criteria]
        assert len(set(names)) == len(names)
        for c in exercise.criteria:
            assert c.points > 0 and c.hint
            assert all(r in names[: names.index(c.name)] for r in c.requires)


def test_table_labels_tell_same_named_submissions_apart(tmp_path):
    from fedlab.grading.cli import labels

    a = tmp_path / "alice" / "01-remote-tensors.ipynb"
    b = tmp_path / "bob" / "01-remote-tensors.ipynb"
    assert labels([str(a), str(b)]) == {
        str(a): "alice/01-remote-tensors.ipynb",
        str(b): "bob/01-remote-tensors.ipynb",
    }
    assert labels([str(a)]) == {str(a): "01-remote-tensors.ipynb"}


# Plans (exercise 7): each known-wrong step loses exactly its criterion; other ways of
# writing a correct step (a manual update, a five-step plan) earn full marks.
ON_BOB = "w and b are bob's, trained by 20 steps of train_step"
ONE_MESSAGE = "each training call was one plan message to the data's worker"
ROUND = "model holds the average of one round on bob, alice and carol"
LATER = ("the data never left bob, alice or carol", "nothing is left behind on the workers")
PLAIN_STEP = """def train_step(w, b, x, y):
    opt = torch.optim.SGD([w, b], lr=0.1)
    opt.zero_grad()
    loss = F.mse_loss(F.linear(x, w, b), y)
    loss.backward()
    opt.step()
    return loss.detach()"""
MANUAL_STEP = """@sy.func2plan()
def train_step(w, b, x, y):
    w.grad = None
    b.grad = None
    loss = ((x @ w.T + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        b -= 0.1 * b.grad
    return loss.detach()"""
FIVE_STEP_ROUND = """@sy.func2plan()
def five_steps(w, b, x, y):
    for _ in range(5):
        loss = train_step(w, b, x, y)
    return loss


trained = []
for worker, (x, y) in shards.items():
    w_ptr, b_ptr = (p.send(worker) for p in model.parameters())
    print(worker.id, five_steps(w_ptr, b_ptr, x, y).get())
    trained.append((w_ptr.get(), b_ptr.get()))
with torch.no_grad():
    model.weight.copy_(torch.stack([t[0] for t in trained]).mean(0))
    model.bias.copy_(torch.stack([t[1] for t in trained]).mean(0))"""
PLANS_VARIANTS = {
    "op-by-op": ({0: PLAIN_STEP}, {ONE_MESSAGE}),
    "calls-fn": ({1: lambda ref: ref.replace("train_step(", "train_step.fn(")}, {ONE_MESSAGE}),
    "peek": ({1: lambda ref: "print(x_bob.clone().get())\n" + ref}, {LATER[0]}),
    "loss-left": ({2: lambda ref: ref.replace("{loss.get():.4f}", "trained")}, {LATER[1]}),
    "one-step-round": ({2: lambda ref: ref.replace("range(5)", "range(1)")},
                       {ROUND, *LATER}),  # (privacy and leftovers are checked once it passes)
    "manual-update": ({0: MANUAL_STEP}, set()),
    "five-step-plan": ({2: FIVE_STEP_ROUND}, set()),
}  # fmt: skip


def _plans(replace: dict) -> tuple[dict, Report]:
    ns = variants.run_in_process(variants.submission("plans", replace))
    return ns, check("plans", namespace=ns)


@pytest.mark.parametrize("name", sorted(PLANS_VARIANTS))
def test_plans_variant_loses_exactly_its_criterion(name):
    replace, expected = PLANS_VARIANTS[name]
    ns, report = _plans(replace)
    assert ns["__errors__"] == []
    assert {r.name for r in report.results if not r.passed} == expected, repr(report)


def test_plans_check_says_what_is_wrong_with_the_step():
    _, report = _plans({1: lambda ref: ref.replace("range(20)", "range(19)")})
    assert (
        "took 19 training steps on bob, not 20"
        in next(r for r in report.results if r.name == ON_BOB).message
    )
    _, report = _plans({0: lambda ref: ref.replace("lr=0.1", "lr=0.01")})
    message = next(r for r in report.results if r.name == ON_BOB).message
    assert "not the step asked for" in message and "lr=0.1" in message
    item = {0: lambda ref: ref.replace("loss.backward()", "loss.backward() if loss.item() else 0")}
    ns, report = _plans(item)  # a plan may not read values: refused when it is built
    assert any("PlanError" in e and "calls item" in e for e in ns["__errors__"])
    assert report.score == 0


def test_plans_check_reads_only_and_survives_cells_run_again():
    nb = variants.submission("plans")
    ns = variants.run_in_process(nb)
    log, rng = recorder.current().log, torch.random.get_rng_state()
    seen = len(log)
    first = repr(check("plans", namespace=ns))
    assert first == repr(check("plans", namespace=ns))
    assert len(log) == seen  # checking sent no message (it trains its references here)
    assert torch.equal(rng, torch.random.get_rng_state())  # nor moved the student's seed
    for index in (8, 6, 4, 6, 8):  # the round, bob's training, a new plan... in any order
        exec(nb.cells[index].source, ns)
    report = check("plans", namespace=ns)
    assert report.score == report.max_score == 6, repr(report)


def test_exam_mode_workers_live_in_another_process_and_grade_there():
    """start(name, exam=True): the server grades; a store read and a disguised leak count."""
    from fedlab.grading import remote

    nb = variants.submission("linear-model", {0: lambda ref: ref + "\nprint((data * 2).get() / 2)"})
    nb.cells[1].source = nb.cells[1].source.replace(
        'start("linear-model")', 'start("linear-model", exam=True)'
    )
    try:
        ns = variants.run_in_process(nb)
        assert ns["__errors__"] == []
        assert isinstance(ns["bob"], remote.RemoteWorker)
        assert "_objects" not in vars(ns["bob"])  # the store is not in this process
        report = check("linear-model", namespace=ns)
        failed = [r for r in report.results if not r.passed]
        assert [r.name for r in failed] == ["the training data and targets never left bob"]
        assert "derived from bob's data reached me" in failed[0].message
    finally:
        session = remote.current()
        if session is not None:
            session.close()
        remote._session = None
        remote._stop_server()
        from fedlab import registry

        for name in ("bob", "alice"):  # (later tests meet in-process workers of these names)
            if isinstance(registry._workers.get(name), remote.RemoteWorker):
                del registry._workers[name]


def test_secure_aggregation_is_graded_the_same_in_exam_mode():
    """The protocols run on workers in the grader's process, and its log sees every share."""
    from fedlab import registry
    from fedlab.grading import remote

    name = "secure-aggregation-all-shares-to-bob"
    nb = variants.submission(*variants.VARIANTS[name])
    nb.cells[1].source = nb.cells[1].source.replace(
        'start("secure-aggregation")', 'start("secure-aggregation", exam=True)'
    )
    try:
        ns = variants.run_in_process(nb)
        assert ns["__errors__"] == []
        assert isinstance(ns["bob"], remote.RemoteWorker)
        report = check("secure-aggregation", namespace=ns)
        assert {r.name for r in report.results if not r.passed} == variants.EXPECTED[name]
        assert "bob received all the shares of" in repr(report)
    finally:
        session = remote.current()
        if session is not None:
            session.close()
        remote._session = None
        remote._stop_server()
        for w in ("bob", "alice", "carol", "james"):
            if isinstance(registry._workers.get(w), remote.RemoteWorker):
                del registry._workers[w]
