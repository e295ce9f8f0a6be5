"""waitUntilTaskRef=None (conductor-python's "no task"): absent, unless the workflow really has a
state named ``None``, then that state. The service decides: only it knows the workflow's states."""

from typing import Any

from sfn_history import HistoryBuilder
from test_service_wait import TASK_REFS, Harness

from workflow_api.parameters import read_run_options
from workflow_api.service import StartCommand


def _none_then_forever() -> list[dict[str, Any]]:
    """A run whose first state, named ``None``, completes; then it waits for an hour."""
    history = HistoryBuilder(step_ms=60).started({}).task("None", {}, {"done": True})
    return history.entered("Wait", "pause", {"delaySeconds": 3600}).events


class _Harness(Harness):
    def __init__(self, states: frozenset[str]) -> None:
        self.states = states
        super().__init__(_none_then_forever())

    def _load(self, arn: str) -> frozenset[str]:
        self.loaded.append(arn)
        return self.states if "slow_steps" in arn else TASK_REFS[arn]


def _execute_as_the_sdk_does(harness: Harness) -> Any:
    options = read_run_options(None, {"requestId": "None", "waitUntilTaskRef": "None", "waitForSeconds": "5"})
    command = StartCommand(workflow="slow_steps", version=None, input={}, options=options)
    return harness.execute_command(command)


def test_none_is_the_state_named_none_when_the_workflow_has_one():
    harness = _Harness(frozenset({"None", "pause"}))

    answer = _execute_as_the_sdk_does(harness)

    assert answer.http_status == 206
    assert answer.run.signal_timeout is False  # answered because the state named None completed
    assert answer.waited_seconds < 5


def test_none_is_absent_when_the_workflow_has_no_such_state():
    harness = _Harness(frozenset({"start_step", "pause", "final_step"}))

    answer = _execute_as_the_sdk_does(harness)

    assert answer.http_status == 206  # no 400 "unknown task reference": None means no task
    assert answer.run.signal_timeout is True  # waited the whole waitForSeconds
    assert answer.waited_seconds >= 5 - 0.1
    assert answer.run.request_id != "None"
