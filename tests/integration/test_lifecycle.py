"""The lifecycle (workflow_api/lifecycle.py) on the template's stack in moto, and local mode's
StopExecution reason and RedriveExecution (local_mode/redrive.py) against what AWS documents."""

import datetime
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from local_mode.aws import ACCOUNT, REGION, LocalAws
from local_mode.redrive import restart_point
from workflow_api.adapters.run_signals import RunSignals
from workflow_api.config import Settings
from workflow_api.errors import RunConflict, RunNotFound, WorkflowNotFound
from workflow_api.lifecycle import WorkflowLifecycle
from workflow_api.parameters import RunOptions
from workflow_api.service import StartCommand
from workflow_api.wiring import build_lifecycle, build_service


@pytest.fixture
def lifecycle(local_aws: Any) -> WorkflowLifecycle:
    config = Settings.from_environment()
    return build_lifecycle(config, build_service(config))


def eventually(read: Callable[[], Any], holds: Callable[[Any], bool], seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    value = read()
    while not holds(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    assert holds(value), (
        {k: v for k, v in value.items() if k != "ResponseMetadata"} if isinstance(value, dict) else value
    )
    return value


def started(lifecycle: WorkflowLifecycle, workflow: str, data: dict[str, Any], **fields: Any) -> str:
    command = StartCommand(workflow=workflow, version=None, input=data, options=RunOptions(), **fields)
    return lifecycle.start(command, lambda: 20.0).workflow_id


def arn_of(workflow_id: str) -> str:
    name, version, run = workflow_id.split(".")
    machine = LocalAws.tagged_state_machines()[name][int(version)]
    return machine.replace(":stateMachine:", ":execution:") + f":{run}"


def describe(workflow_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = boto3.client("stepfunctions").describe_execution(executionArn=arn_of(workflow_id))
    return answer


def history(workflow_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = boto3.client("stepfunctions").get_execution_history(
        executionArn=arn_of(workflow_id), maxResults=1000
    )["events"]
    return events


def ended(workflow_id: str) -> Any:
    config = Settings.from_environment()
    signals = RunSignals(config.idempotency_table_name, config.idempotency_retention_days, boto3.client("dynamodb"))
    return signals.ended(arn_of(workflow_id))


def test_terminate_keeps_the_reason_where_aws_does(lifecycle: WorkflowLifecycle) -> None:
    workflow_id = started(lifecycle, "slow_steps", {"delaySeconds": 60})
    lifecycle.terminate(workflow_id, "operator said so")
    done = eventually(lambda: describe(workflow_id), lambda d: d["status"] == "ABORTED")
    assert done["cause"] == "operator said so" and "error" not in done
    events = history(workflow_id)
    assert [e["type"] for e in events].count("ExecutionAborted") == 1, [e["type"] for e in events]
    (aborted,) = [e for e in events if e["type"] == "ExecutionAborted"]
    assert aborted["executionAbortedEventDetails"] == {"cause": "operator said so"}
    # The EventBridge event carries it too: run_status recorded the end with its cause.
    end = eventually(lambda: ended(workflow_id), lambda e: e is not None)
    assert (end.status, end.cause) == ("ABORTED", "operator said so")
    assert lifecycle.status(workflow_id, "r", include_output=False, include_variables=False).status == "TERMINATED"


def test_terminate_without_a_reason_names_the_error(lifecycle: WorkflowLifecycle) -> None:
    workflow_id = started(lifecycle, "slow_steps", {"delaySeconds": 60})
    lifecycle.terminate(workflow_id, None)
    done = eventually(lambda: describe(workflow_id), lambda d: d["status"] == "ABORTED")
    assert done["error"] == "Terminated"


def test_a_redriven_run_goes_on_under_its_arn_and_its_new_end_is_recorded(lifecycle: WorkflowLifecycle) -> None:
    workflow_id = started(lifecycle, "always_fails", {"n": 7})
    first = eventually(lambda: ended(workflow_id), lambda e: e is not None)
    assert first.status == "FAILED"
    lifecycle.retry(workflow_id)
    events = eventually(lambda: history(workflow_id), lambda h: h[-1]["type"] == "ExecutionFailed" and len(h) > 6)
    kinds = [e["type"] for e in events]
    assert (
        kinds.count("ExecutionFailed") == 2 and kinds.index("ExecutionRedriven") == kinds.index("ExecutionFailed") + 1
    )
    (redriven,) = [e for e in events if e["type"] == "ExecutionRedriven"]
    assert redriven["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))  # one history, ids going on
    entered = [e for e in events if e["type"] == "TaskStateEntered"]
    assert [json.loads(e["stateEnteredEventDetails"]["input"]) for e in entered] == [{"n": 7}, {"n": 7}]
    # The run's item keeps the latest end: the redriven run's, stopped later.
    second = eventually(lambda: ended(workflow_id), lambda e: e is not None and e.stop_date > first.stop_date)
    assert second.status == "FAILED"


def test_what_cannot_be_redriven_is_refused_as_aws_refuses_it(lifecycle: WorkflowLifecycle) -> None:
    sfn = boto3.client("stepfunctions")
    running = started(lifecycle, "slow_steps", {"delaySeconds": 60})
    with pytest.raises(ClientError) as refused:
        sfn.redrive_execution(executionArn=arn_of(running))
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    with pytest.raises(RunConflict, match="RUNNING"):
        lifecycle.retry(running)
    lifecycle.terminate(running, None)
    # Ended more than 14 days ago: not redrivable any more.
    eventually(lambda: describe(running), lambda d: d["status"] == "ABORTED")
    backend = stepfunctions_parser_backends[ACCOUNT][REGION]  # the executing one
    execution = backend.describe_execution(arn_of(running))
    execution.stop_date -= datetime.timedelta(days=15)
    with pytest.raises(RunConflict, match="cannot redrive"):
        lifecycle.retry(running)
    with pytest.raises(RunNotFound):
        lifecycle.retry("slow_steps.1." + uuid.uuid4().hex)


def test_the_correlation_index_finds_a_names_runs_only(lifecycle: WorkflowLifecycle) -> None:
    correlation = uuid.uuid4().hex
    mine = started(lifecycle, "hello_world", {}, correlation_id=correlation)
    other_name = started(lifecycle, "always_fails", {}, correlation_id=correlation)
    started(lifecycle, "hello_world", {}, correlation_id=correlation + "-other")
    runs = eventually(
        lambda: lifecycle.correlated("hello_world", correlation, "r", include_closed=True, include_tasks=False),
        lambda found: [r.status for r in found] == ["COMPLETED"],
    )
    assert [r.workflow_id for r in runs] == [mine]
    assert [
        r.workflow_id
        for r in lifecycle.correlated("always_fails", correlation, "r", include_closed=True, include_tasks=False)
    ] == [other_name]
    assert lifecycle.correlated("hello_world", correlation, "r", include_closed=False, include_tasks=False) == []
    with pytest.raises(WorkflowNotFound):
        lifecycle.correlated("nope", correlation, "r", include_closed=True, include_tasks=False)


def test_running_lists_running_runs_of_one_version(lifecycle: WorkflowLifecycle) -> None:
    workflow_id = started(lifecycle, "slow_steps", {"delaySeconds": 60})
    try:
        assert workflow_id in lifecycle.running("slow_steps", 1, None, None)
        assert workflow_id not in lifecycle.running("slow_steps", 1, None, 0)
    finally:
        lifecycle.terminate(workflow_id, None)
    eventually(lambda: lifecycle.running("slow_steps", 1, None, None), lambda ids: workflow_id not in ids)


def test_restart_point_is_the_top_level_state_that_did_not_exit() -> None:
    definition = {"StartAt": "a", "States": {"a": {}, "b": {}}}

    def entered(name: str, data: Any) -> dict[str, Any]:
        return {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name, "input": json.dumps(data)}}

    exited_a = {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "a"}}
    assert restart_point(definition, [entered("a", 1), exited_a, entered("b", 2)], {"x": 0}) == ("b", 2)
    assert restart_point(definition, [entered("a", 1), exited_a], {"x": 0}) == ("a", {"x": 0})
    assert restart_point(definition, [entered("inner", 3)], {"x": 0}) == ("a", {"x": 0})
