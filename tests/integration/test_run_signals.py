"""Runs' ends reach waiters through EventBridge and DynamoDB: local mode delivers the template's
"Execution Status Change" rule to run_status, which records the event's end (status, dates,
output, error, cause, input when it fits) on the run's item, ``status#<executionArn>``."""

import json
import time
import uuid
from typing import Any

import boto3
import pytest

from local_mode.aws import LocalAws, matches
from tests.conftest import load_event
from workflow_api.adapters.run_signals import MAX_KEPT_TEXT_BYTES, RunSignals, end_of
from workflow_api.catalog import RUN_NAME_PREFIX
from workflow_api.config import Settings
from workflow_api.history import RunEnd


def signals() -> RunSignals:
    config = Settings.from_environment()
    return RunSignals(config.idempotency_table_name, config.idempotency_retention_days, boto3.client("dynamodb"))


def start(workflow: str, workflow_input: dict[str, Any]) -> str:
    machine = LocalAws.tagged_state_machines()[workflow][1]
    sfn = boto3.client("stepfunctions")
    name = RUN_NAME_PREFIX + uuid.uuid4().hex  # as the API names its runs: the rule matches those
    arn: str = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(workflow_input))["executionArn"]
    return arn


def recorded_end(execution_arn: str, timeout: float = 20.0) -> RunEnd:
    """The end run_status recorded, once it has (EventBridge delivers asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = signals().ended(execution_arn)
        if ended is not None:
            return ended
        time.sleep(0.02)
    raise AssertionError(f"no end recorded for {execution_arn} within {timeout} s")


def item(execution_arn: str) -> dict[str, Any] | None:
    config = Settings.from_environment()
    found: dict[str, Any] | None = (
        boto3.client("dynamodb")
        .get_item(TableName=config.idempotency_table_name, Key={"pk": {"S": f"status#{execution_arn}"}})
        .get("Item")
    )
    return found


def an_arn(label: str) -> str:
    return f"arn:aws:states:us-east-1:123456789012:execution:{label}:{uuid.uuid4().hex}"


def json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@pytest.mark.parametrize(
    ("workflow", "workflow_input", "status"),
    [("hello_world", {"name": "Ada"}, "SUCCEEDED"), ("always_fails", {}, "FAILED")],
)
def test_a_runs_end_is_recorded_as_describe_execution_reports_it(
    local_aws: Any, workflow: str, workflow_input: dict[str, Any], status: str
) -> None:
    arn = start(workflow, workflow_input)

    ended = recorded_end(arn)

    described = boto3.client("stepfunctions").describe_execution(executionArn=arn)
    assert ended.status == described["status"] == status
    assert ended.stop_date == int(described["stopDate"].timestamp() * 1000)
    assert ended.start_date == int(described["startDate"].timestamp() * 1000)
    assert json_or_none(ended.output) == json_or_none(described.get("output"))
    assert (ended.error, ended.cause) == (described.get("error"), described.get("cause"))
    assert json_or_none(ended.input) == workflow_input
    if status == "SUCCEEDED":
        assert json_or_none(ended.output) == {"greeting": "Hello, Ada!", "version": 1}
        assert (ended.error, ended.cause) == (None, None)
    else:
        assert ended.output is None
        assert ended.error and "WorkflowExploded" in f"{ended.error} {ended.cause}"


def test_a_late_or_repeated_event_never_overwrites_a_later_end(local_aws: Any) -> None:
    arn = an_arn("redriven")
    store = signals()
    failed = RunEnd("FAILED", 1_000, start_date=500, error="Boom", cause="the first end")
    succeeded = RunEnd("SUCCEEDED", 2_000, start_date=500, output='{"done": true}', input='{"n": 1}')

    assert store.record(arn, failed) is True
    assert store.ended(arn) == failed
    assert store.record(arn, succeeded) is True  # redriven, then ended again
    assert store.record(arn, failed) is False  # the first end's event, delivered late
    assert store.record(arn, RunEnd("ABORTED", 1_999, start_date=500)) is False  # any older end
    assert store.ended(arn) == succeeded
    assert store.record(arn, succeeded) is True  # EventBridge delivers at least once: written again
    assert store.ended(arn) == succeeded


def test_an_output_not_included_in_the_event_is_not_kept(local_aws: Any) -> None:
    """Step Functions leaves ``output`` (or ``input``) out of the event when it is too large
    (``outputDetails.included`` false): the item keeps no output, so a waiter knows to read it
    from Step Functions rather than answer ``{}``."""
    arn = an_arn("large-output")
    detail = {
        "executionArn": arn,
        "status": "SUCCEEDED",
        "startDate": 1_000,
        "stopDate": 2_000,
        "input": "",
        "inputDetails": {"included": False},
        "output": "",
        "outputDetails": {"included": False},
    }

    end = end_of(detail)
    assert signals().record(arn, end) is True

    ended = signals().ended(arn)
    assert ended is not None and (ended.status, ended.stop_date, ended.start_date) == ("SUCCEEDED", 2_000, 1_000)
    assert (ended.output, ended.input) == (None, None)
    assert not ended.output_known
    kept = item(arn)
    assert kept is not None and "output" not in kept and "input" not in kept


def test_an_output_that_fits_is_kept_and_the_input_only_with_room_for_both(local_aws: Any) -> None:
    """The output (up to Step Functions' 256 KiB) is always kept when the event has it; an input
    that would take the item past DynamoDB's 400 KB is left out (the caller that started the run
    knows it)."""
    output = json.dumps({"blob": "o" * (250 * 1024)})
    large_input = json.dumps({"blob": "i" * (MAX_KEPT_TEXT_BYTES - len(output) + 1)})
    detail: dict[str, Any] = {
        "status": "SUCCEEDED",
        "startDate": 1_000,
        "stopDate": 2_000,
        "output": output,
        "outputDetails": {"included": True},
        "inputDetails": {"included": True},
    }
    both_too_large, arn = an_arn("both-too-large"), an_arn("both-fit")

    assert signals().record(both_too_large, end_of({**detail, "input": large_input})) is True
    assert signals().record(arn, end_of({**detail, "input": '{"small": 1}'})) is True

    dropped = signals().ended(both_too_large)
    assert dropped is not None and (dropped.output, dropped.input) == (output, None)
    kept = signals().ended(arn)
    assert kept is not None and (kept.output, kept.input) == (output, '{"small": 1}')


def test_the_rule_pattern_matches_only_ends_of_the_runs_the_api_started(local_aws: Any) -> None:
    (pattern,) = [pattern for pattern, function in _rules() if function.name.endswith("RunStatusFunction")]
    # Any state machine, this stack's or another's: the run's name says the API started it.
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:other-teams-machine"
    name = RUN_NAME_PREFIX + uuid.uuid4().hex
    # The shape AWS documents for this event, trimmed to what the pattern looks at.
    event = {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"stateMachineArn": machine, "name": name, "status": "SUCCEEDED", "executionArn": f"{machine}:x"},
    }

    assert matches(pattern, event)
    assert not matches(pattern, {**event, "detail": {**event["detail"], "status": "RUNNING"}})
    # A run somebody else started on the same state machine costs the stack nothing.
    assert not matches(pattern, {**event, "detail": {**event["detail"], "name": uuid.uuid4().hex}})
    assert not matches(pattern, {**event, "detail": {**event["detail"], "name": "x" + name}})
    assert not matches(pattern, {k: v for k, v in event.items() if k != "source"})
    with pytest.raises(NotImplementedError):
        matches({"detail": {"status": [{"suffix": "SUCC"}]}}, event)


def test_a_state_machine_added_to_local_mode_has_its_ends_recorded(local_aws: Any) -> None:
    definition = {"StartAt": "done", "States": {"done": {"Type": "Pass", "End": True}}}
    machine = local_aws.add_state_machine(f"added-{uuid.uuid4().hex[:8]}", definition)
    sfn = boto3.client("stepfunctions")

    name = RUN_NAME_PREFIX + uuid.uuid4().hex
    arn = sfn.start_execution(stateMachineArn=machine, name=name, input='{"a": 1}')["executionArn"]

    ended = recorded_end(arn)
    assert (ended.status, json_or_none(ended.output)) == ("SUCCEEDED", {"a": 1})


def test_the_event_file_for_sam_local_invoke_is_recorded_by_run_status(local_aws: Any) -> None:
    event = load_event("run_status_change.json")
    function = local_aws.functions["RunStatusFunction"]
    detail = event["detail"]
    arn = detail["executionArn"]
    expected = RunEnd(
        "SUCCEEDED",
        detail["stopDate"],
        start_date=detail["startDate"],
        output=detail["output"],
        input=detail["input"],
    )

    answer = function.invoke(event)

    assert answer == {"executionArn": arn, "status": "SUCCEEDED", "kept": True}
    assert signals().ended(arn) == expected
    # EventBridge delivers at least once: a repeat changes nothing, an older end is not kept.
    assert function.invoke(event)["kept"] is True
    older = {**event, "detail": {**detail, "status": "FAILED", "stopDate": detail["stopDate"] - 1}}
    assert function.invoke(older)["kept"] is False
    assert signals().ended(arn) == expected
    assert matches(next(p for p, f in _rules() if f is function), event)


def _rules() -> list[tuple[dict[str, Any], Any]]:
    from local_mode import aws

    return list(aws._RULES)
