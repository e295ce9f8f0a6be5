"""fold(): GetExecutionHistory events -> the run as Conductor shows it; state_names() of an ASL."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sfn_history import T0_MS, HistoryBuilder, always_fails, hello_world, map_run, parallel_run

from workflow_api.history import epoch_millis, fold, state_names
from workflow_api.status import TaskStatus, WorkflowStatus

ROOT = Path(__file__).resolve().parents[2]


def _tasks(run):
    return [(t.reference_name, t.task_type, t.status) for t in run.tasks]


# The happy path and the basic fields -----------------------------------------------------------


def test_succeeded_run_has_output_times_and_completed_task():
    history = hello_world("Ada", version=2)

    run = fold(history.events)

    assert run.status is WorkflowStatus.COMPLETED
    assert run.input == {"name": "Ada"}
    assert run.output == {"greeting": "Hello, Ada!", "version": 2}
    assert run.create_time == T0_MS
    assert run.update_time == T0_MS + history.now_ms
    assert run.reason_for_incompletion is None
    assert run.last_event_id == len(history.events)
    assert _tasks(run) == [("greet", "Task", TaskStatus.COMPLETED)]
    greet = run.tasks[0]
    assert greet.input_data == {"name": "Ada"}
    assert greet.output_data == {"greeting": "Hello, Ada!", "version": 2}
    assert greet.start_time == T0_MS + 10
    assert greet.end_time == T0_MS + history.now_ms - 10
    assert greet.reason_for_incompletion is None
    assert run.completed_task_refs == {"greet"}


def test_running_run_has_empty_output_and_open_task():
    history = HistoryBuilder().started({"name": "Ada"}).entered("Task", "greet", {"name": "Ada"})
    history.add("LambdaFunctionScheduled", {"resource": "arn:aws:lambda:::function:greet", "input": "{}"})

    run = fold(history.events)

    assert run.status is WorkflowStatus.RUNNING
    assert run.output == {}
    assert run.reason_for_incompletion is None
    assert _tasks(run) == [("greet", "Task", TaskStatus.IN_PROGRESS)]
    assert run.tasks[0].end_time == 0
    assert run.completed_task_refs == frozenset()


def test_no_events_is_a_running_run_with_nothing_known():
    run = fold([])

    assert run.status is WorkflowStatus.RUNNING
    assert run.tasks == []
    assert run.output == {}
    assert run.last_event_id == 0


def test_wait_state_exit_counts_as_completed_task():
    history = (
        HistoryBuilder()
        .started({"delaySeconds": 3})
        .task("start_step", {"delaySeconds": 3}, {"delaySeconds": 3})
        .wait("pause", {"delaySeconds": 3}, seconds_ms=3000)
    )

    run = fold(history.events)

    assert run.status is WorkflowStatus.RUNNING
    assert _tasks(run) == [
        ("start_step", "Task", TaskStatus.COMPLETED),
        ("pause", "Wait", TaskStatus.COMPLETED),
    ]
    assert run.completed_task_refs == {"start_step", "pause"}
    pause = run.tasks[1]
    assert pause.end_time - pause.start_time == 3000 + 10


def test_non_json_state_input_is_kept_as_text():
    history = HistoryBuilder().started({})
    history.add("PassStateEntered", {"name": "p", "input": "not json {"}, key="stateEnteredEventDetails")

    run = fold(history.events)

    assert run.tasks[0].input_data == "not json {"


# Failures and the other endings -----------------------------------------------------------------


def test_failed_lambda_task_fails_the_run_and_the_task():
    run = fold(always_fails().events)

    assert run.status is WorkflowStatus.FAILED
    assert run.reason_for_incompletion == "RuntimeError: boom: the explode task always fails"
    assert run.output == {}
    assert _tasks(run) == [("explode", "Task", TaskStatus.FAILED)]
    assert run.tasks[0].reason_for_incompletion == "RuntimeError: boom: the explode task always fails"
    assert run.tasks[0].end_time == run.update_time
    assert run.completed_task_refs == frozenset()


def test_fail_state_has_no_exit_and_is_failed():
    history = (
        HistoryBuilder()
        .started({"x": 1})
        .task("check", {"x": 1}, {"ok": False})
        .entered("Fail", "reject", {"ok": False})
        .failed("Rejected", "the check said no")
    )

    run = fold(history.events)

    assert run.status is WorkflowStatus.FAILED
    assert run.reason_for_incompletion == "Rejected: the check said no"
    assert _tasks(run) == [
        ("check", "Task", TaskStatus.COMPLETED),
        ("reject", "Fail", TaskStatus.FAILED),
    ]
    assert run.completed_task_refs == {"check"}


def test_failure_without_error_or_cause_still_gives_a_reason():
    history = HistoryBuilder().started({}).add("ExecutionFailed", {})

    run = fold(history.events)

    assert run.status is WorkflowStatus.FAILED
    assert run.reason_for_incompletion  # never empty for a failed run


def test_aborted_run_is_terminated_and_open_task_canceled():
    history = (
        HistoryBuilder()
        .started({"delaySeconds": 60})
        .task("start_step", {}, {})
        .entered("Wait", "pause", {})
        .aborted(error="Stopped", cause="stopped by the operator")
    )

    run = fold(history.events)

    assert run.status is WorkflowStatus.TERMINATED
    assert run.reason_for_incompletion == "Stopped: stopped by the operator"
    assert _tasks(run) == [
        ("start_step", "Task", TaskStatus.COMPLETED),
        ("pause", "Wait", TaskStatus.CANCELED),
    ]
    assert run.tasks[1].end_time == run.update_time


def test_aborted_without_details_is_terminated():
    history = HistoryBuilder().started({}).entered("Task", "greet", {}).aborted()

    run = fold(history.events)

    assert run.status is WorkflowStatus.TERMINATED
    assert run.tasks[0].status is TaskStatus.CANCELED


def test_timed_out_run_times_out_its_open_task():
    history = HistoryBuilder().started({}).entered("Task", "greet", {}).timed_out()

    run = fold(history.events)

    assert run.status is WorkflowStatus.TIMED_OUT
    assert run.reason_for_incompletion == "States.Timeout: The execution timed out after 300 seconds."
    assert run.tasks[0].status is TaskStatus.TIMED_OUT


def test_retried_task_that_succeeds_completes_with_its_output():
    history = HistoryBuilder().started({}).entered("Task", "greet", {"name": "Ada"})
    history.lambda_attempt({"name": "Ada"}, error=("Lambda.TooManyRequestsException", "Rate exceeded"))
    history.lambda_attempt({"name": "Ada"}, output={"greeting": "Hello, Ada!"})
    history.exited("Task", "greet", {"greeting": "Hello, Ada!"}).succeeded({"greeting": "Hello, Ada!"})

    run = fold(history.events)

    assert run.status is WorkflowStatus.COMPLETED
    assert _tasks(run) == [("greet", "Task", TaskStatus.COMPLETED)]
    assert run.tasks[0].output_data == {"greeting": "Hello, Ada!"}


# Redrive -----------------------------------------------------------------------------------------


def _redriven_always_fails() -> HistoryBuilder:
    return always_fails().redriven()


def test_redrive_after_failure_brings_the_run_back_to_running():
    run = fold(_redriven_always_fails().events)

    assert run.status is WorkflowStatus.RUNNING
    assert run.reason_for_incompletion is None
    assert run.output == {}


def test_redriven_run_that_then_succeeds_is_completed_with_its_output():
    history = _redriven_always_fails()
    history.task("explode", {}, {"fixed": True}).succeeded({"fixed": True})

    run = fold(history.events)

    assert run.status is WorkflowStatus.COMPLETED
    assert run.output == {"fixed": True}
    assert run.reason_for_incompletion is None
    assert "explode" in run.completed_task_refs


def test_redrive_keeps_the_failed_attempt_failed_and_the_new_attempt_gets_the_output():
    """The attempt that failed before the redrive stays FAILED; the rerun carries the output."""
    history = _redriven_always_fails()
    history.task("explode", {}, {"fixed": True}).succeeded({"fixed": True})

    run = fold(history.events)

    assert _tasks(run) == [
        ("explode", "Task", TaskStatus.FAILED),
        ("explode", "Task", TaskStatus.COMPLETED),
    ]
    assert run.tasks[0].reason_for_incompletion == "RuntimeError: boom: the explode task always fails"
    assert run.tasks[1].output_data == {"fixed": True}


def test_redriven_run_still_running_does_not_show_the_failed_attempt_in_progress():
    history = _redriven_always_fails().entered("Task", "explode", {})

    run = fold(history.events)

    assert run.status is WorkflowStatus.RUNNING
    assert [t.status for t in run.tasks] == [TaskStatus.FAILED, TaskStatus.IN_PROGRESS]


# Map and Parallel ---------------------------------------------------------------------------------


def test_map_iterations_repeat_the_inner_task_name():
    run = fold(map_run(["a", "b", "c"]).events)

    assert run.status is WorkflowStatus.COMPLETED
    assert _tasks(run) == [("each", "Map", TaskStatus.COMPLETED)] + [("shout", "Task", TaskStatus.COMPLETED)] * 3
    assert [t.input_data for t in run.tasks[1:]] == ["a", "b", "c"]
    assert [t.output_data for t in run.tasks[1:]] == ["A", "B", "C"]
    assert run.tasks[0].output_data == ["A", "B", "C"]
    assert run.completed_task_refs == {"each", "shout"}


def test_map_part_way_through_shows_finished_and_open_iterations():
    history = HistoryBuilder().started({"items": ["a", "b"]}).entered("Map", "each", {"items": ["a", "b"]})
    history.add("MapStateStarted", {"length": 2})
    history.add("MapIterationStarted", {"name": "each", "index": 0}).task("shout", "a", "A")
    history.add("MapIterationSucceeded", {"name": "each", "index": 0})
    history.add("MapIterationStarted", {"name": "each", "index": 1}).entered("Task", "shout", "b")

    run = fold(history.events)

    assert run.status is WorkflowStatus.RUNNING
    assert _tasks(run) == [
        ("each", "Map", TaskStatus.IN_PROGRESS),
        ("shout", "Task", TaskStatus.COMPLETED),
        ("shout", "Task", TaskStatus.IN_PROGRESS),
    ]
    # One iteration of "shout" finished: a caller waiting on it may be answered.
    assert run.completed_task_refs == {"shout"}


def test_parallel_branches_finish_out_of_order():
    run = fold(parallel_run().events)

    assert run.status is WorkflowStatus.COMPLETED
    by_name = {t.reference_name: t for t in run.tasks}
    assert [t.reference_name for t in run.tasks] == ["both", "left", "right"]
    assert by_name["both"].task_type == "Parallel"
    assert by_name["left"].output_data == {"side": "left"}
    assert by_name["right"].output_data == {"side": "right"}
    assert by_name["right"].end_time < by_name["left"].end_time
    assert run.completed_task_refs == {"both", "left", "right"}


def test_parallel_branch_still_running_is_in_progress():
    history = HistoryBuilder().started({}).entered("Parallel", "both", {}).add("ParallelStateStarted")
    history.entered("Task", "left", {}).entered("Task", "right", {}).exited("Task", "right", {"side": "right"})

    run = fold(history.events)

    statuses = {t.reference_name: t.status for t in run.tasks}
    assert statuses == {
        "both": TaskStatus.IN_PROGRESS,
        "left": TaskStatus.IN_PROGRESS,
        "right": TaskStatus.COMPLETED,
    }
    assert run.completed_task_refs == {"right"}


# Order independence ------------------------------------------------------------------------------

SCENARIOS = {
    "hello_world": hello_world().events,
    "always_fails": always_fails().events,
    "map": map_run(["a", "b", "c", "d"]).events,
    "parallel": parallel_run().events,
    "redriven": _redriven_always_fails().task("explode", {}, {"ok": 1}).succeeded({"ok": 1}).events,
    "aborted": HistoryBuilder().started({}).task("a", {}, {}).entered("Wait", "w", {}).aborted().events,
}


@st.composite
def histories(draw):
    """A run of a few Task states (names may repeat), then maybe an ending."""
    history = HistoryBuilder(step_ms=draw(st.integers(1, 1000))).started({"seed": draw(st.integers())})
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(["a", "b", "c"]))
        outcome = draw(st.sampled_from(["ok", "open", "lambda_failed"]))
        if outcome == "ok":
            history.task(name, {"in": name}, {"out": name})
        elif outcome == "open":
            history.entered("Task", name, {"in": name})
        else:
            history.task_failing(name, {"in": name}, "E", "cause")
    ending = draw(st.sampled_from(["running", "succeeded", "failed", "aborted", "timed_out"]))
    if ending == "succeeded":
        history.succeeded({"done": True})
    elif ending == "failed":
        history.failed("E", "cause")
    elif ending == "aborted":
        history.aborted()
    elif ending == "timed_out":
        history.timed_out()
    return history.events


@settings(max_examples=200, deadline=None)
@given(data=st.data(), events=histories() | st.sampled_from(list(SCENARIOS.values())))
def test_fold_does_not_depend_on_event_order(data, events):
    expected = fold(events)

    shuffled = data.draw(st.permutations(events))

    assert fold(shuffled) == expected
    assert fold(list(reversed(events))) == expected  # AWS's reverseOrder=True


@settings(max_examples=100, deadline=None)
@given(events=histories(), cut=st.integers(min_value=0))
def test_every_prefix_without_an_ending_is_running(events, cut):
    prefix = events[: 1 + cut % len(events)]
    ends = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}

    run = fold(prefix)

    if not ends & {e["type"] for e in prefix}:
        assert run.status is WorkflowStatus.RUNNING
        assert all(t.end_time == 0 for t in run.tasks if t.status is TaskStatus.IN_PROGRESS)
    assert run.completed_task_refs <= fold(events).completed_task_refs
    assert run.last_event_id == len(prefix)


# epoch_millis ------------------------------------------------------------------------------------


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_epoch_millis_of_a_datetime_is_whole_milliseconds_since_1970(moment):
    expected = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)

    assert epoch_millis(moment) == expected


def test_epoch_millis_keeps_numbers():
    assert epoch_millis(1764360000420) == 1764360000420
    assert epoch_millis(1764360000420.0) == 1764360000420


# state_names -------------------------------------------------------------------------------------


def test_state_names_of_the_shipped_slow_steps():
    definition = json.loads((ROOT / "statemachine" / "slow_steps.v1.asl.json").read_text())

    assert state_names(definition) == {"start_step", "pause", "final_step"}


@pytest.mark.parametrize("path", sorted((ROOT / "statemachine").glob("*.asl.json")), ids=lambda p: p.name)
def test_state_names_of_every_shipped_workflow_are_its_top_level_states(path):
    definition = json.loads(path.read_text())

    assert set(definition["States"]) <= state_names(definition)


def test_state_names_include_parallel_branches_and_map_processors():
    definition = {
        "StartAt": "fan_out",
        "States": {
            "fan_out": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "left", "States": {"left": {"Type": "Pass", "End": True}}},
                    {
                        "StartAt": "each_new",
                        "States": {
                            "each_new": {
                                "Type": "Map",
                                "ItemProcessor": {
                                    "ProcessorConfig": {"Mode": "INLINE"},
                                    "StartAt": "inner_new",
                                    "States": {"inner_new": {"Type": "Pass", "End": True}},
                                },
                                "End": True,
                            }
                        },
                    },
                ],
                "Next": "each_old",
            },
            "each_old": {
                "Type": "Map",
                "Iterator": {
                    "StartAt": "inner_old",
                    "States": {
                        "inner_old": {"Type": "Pass", "Next": "done"},
                        "done": {"Type": "Succeed"},
                    },
                },
                "End": True,
            },
        },
    }

    assert state_names(definition) == {
        "fan_out",
        "left",
        "each_new",
        "inner_new",
        "each_old",
        "inner_old",
        "done",
    }


def test_state_names_of_an_empty_definition():
    assert state_names({}) == frozenset()
