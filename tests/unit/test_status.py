"""Step Functions statuses in Conductor's words (SPEC "Status mapping")."""

import pytest

from workflow_api.status import (
    OPEN_TASK_WHEN_RUN_ENDED,
    TERMINAL_EVENTS,
    TaskStatus,
    WorkflowStatus,
    from_step_functions,
)


@pytest.mark.parametrize(
    ("step_functions", "conductor"),
    [
        ("SUCCEEDED", "COMPLETED"),
        ("FAILED", "FAILED"),
        ("TIMED_OUT", "TIMED_OUT"),
        ("ABORTED", "TERMINATED"),
        ("RUNNING", "RUNNING"),
        ("PENDING_REDRIVE", "FAILED"),
    ],
)
def test_spec_status_mapping(step_functions, conductor):
    status = from_step_functions(step_functions)

    assert status == conductor
    assert status.value == conductor  # what goes on the wire


def test_an_unknown_future_status_reads_as_running():
    assert from_step_functions("SOMETHING_NEW") is WorkflowStatus.RUNNING


@pytest.mark.parametrize(
    ("step_functions", "terminal"),
    [
        ("SUCCEEDED", True),
        ("FAILED", True),
        ("TIMED_OUT", True),
        ("ABORTED", True),
        ("PENDING_REDRIVE", True),
        ("RUNNING", False),
    ],
)
def test_which_statuses_answer_200(step_functions, terminal):
    assert from_step_functions(step_functions).is_terminal is terminal


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("ExecutionSucceeded", WorkflowStatus.COMPLETED),
        ("ExecutionFailed", WorkflowStatus.FAILED),
        ("ExecutionTimedOut", WorkflowStatus.TIMED_OUT),
        ("ExecutionAborted", WorkflowStatus.TERMINATED),
    ],
)
def test_terminal_history_events(event, status):
    assert TERMINAL_EVENTS[event] is status
    assert status.is_terminal


def test_every_terminal_status_says_what_an_open_task_becomes():
    terminal = {s for s in WorkflowStatus if s.is_terminal}

    assert set(OPEN_TASK_WHEN_RUN_ENDED) == terminal
    assert OPEN_TASK_WHEN_RUN_ENDED[WorkflowStatus.TERMINATED] is TaskStatus.CANCELED
    assert OPEN_TASK_WHEN_RUN_ENDED[WorkflowStatus.FAILED] is TaskStatus.FAILED
    assert OPEN_TASK_WHEN_RUN_ENDED[WorkflowStatus.TIMED_OUT] is TaskStatus.TIMED_OUT
    assert TaskStatus.IN_PROGRESS not in OPEN_TASK_WHEN_RUN_ENDED.values()
