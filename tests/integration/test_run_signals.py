"""Runs' ends reach waiters through EventBridge, DynamoDB and SQS: local mode delivers the
template's "Execution Status Change" rule to run_status, which records the end on the run's item
and sends it to the wake-up queue of each call registered there."""

import json
import time
import uuid
from typing import Any

import boto3
import pytest

from local_mode.aws import matches
from tests.conftest import load_event
from workflow_api.adapters.run_signals import RunEnded, RunSignals
from workflow_api.config import Settings
from workflow_api.parameters import RunOptions
from workflow_api.service import StartCommand
from workflow_api.wiring import build_service


def signals() -> RunSignals:
    config = Settings.from_environment()
    return RunSignals(config.idempotency_table_name, config.idempotency_retention_days, boto3.client("dynamodb"))


def start(workflow: str, workflow_input: dict[str, Any]) -> str:
    machine = Settings.from_environment().workflow_state_machines[workflow][1]
    sfn = boto3.client("stepfunctions")
    arn: str = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps(workflow_input))[
        "executionArn"
    ]
    return arn


def recorded_end(execution_arn: str, timeout: float = 20.0) -> RunEnded:
    """The end run_status recorded, once it has (EventBridge delivers asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = signals().ended(execution_arn)
        if ended is not None:
            return ended
        time.sleep(0.02)
    raise AssertionError(f"no end recorded for {execution_arn} within {timeout} s")


@pytest.mark.parametrize(
    ("workflow", "workflow_input", "status"),
    [("hello_world", {"name": "Ada"}, "SUCCEEDED"), ("always_fails", {}, "FAILED")],
)
def test_a_runs_end_is_recorded_with_its_status_and_stop_date(
    local_aws: Any, workflow: str, workflow_input: dict[str, Any], status: str
) -> None:
    arn = start(workflow, workflow_input)

    ended = recorded_end(arn)

    described = boto3.client("stepfunctions").describe_execution(executionArn=arn)
    assert ended.status == described["status"] == status
    assert ended.stop_date == int(described["stopDate"].timestamp() * 1000)


def test_a_late_event_never_overwrites_a_later_end(local_aws: Any) -> None:
    arn = f"arn:aws:states:us-east-1:123456789012:execution:redriven:{uuid.uuid4().hex}"
    store = signals()

    assert store.record(arn, RunEnded("FAILED", 1_000)) == []  # kept; nobody waits
    assert store.record(arn, RunEnded("SUCCEEDED", 2_000)) == []  # redriven, then ended again
    assert store.record(arn, RunEnded("FAILED", 1_000)) is None  # the first end's event, delivered again

    assert store.ended(arn) == RunEnded("SUCCEEDED", 2_000)


def test_a_long_wait_is_woken_at_the_runs_end_and_reads_little_history(local_aws: Any) -> None:
    """A run without a key is named for its caller's queue: run_status sends the end there, and
    neither the call nor run_status touches the run's item."""
    service = build_service(Settings.from_environment(), answer_margin_seconds=0)
    options = RunOptions(wait_for_seconds=20, request_id=f"signals-{uuid.uuid4()}")

    answer = service.execute(StartCommand("slow_steps", None, {"delaySeconds": 8}, options), lambda: 30.0)
    answered = time.time()

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.aws_calls["ReceiveMessage"] > 0, answer.aws_calls
    assert answer.aws_calls["GetItem"] == answer.aws_calls["UpdateItem"] == 0, answer.aws_calls
    workflow, execution_name = service._catalog.parse_workflow_id(answer.run.workflow_id)
    assert "-q" in execution_name and _item(workflow.execution_arn(execution_name)) is None
    # History right after the start, each second of the first two, every 5 s, and for the end.
    assert answer.aws_calls["GetExecutionHistory"] <= 6, answer.aws_calls
    # Woken, not left to the history: the answer follows the end by the event's delivery and one
    # history read (~20 ms in the bench), where the next fallback read would come ~4 s after this
    # run's end. The bound leaves room for a busy CI machine.
    assert answered - answer.run.update_time / 1000 < 1.0


def _item(execution_arn: str) -> dict[str, Any] | None:
    config = Settings.from_environment()
    item: dict[str, Any] | None = (
        boto3.client("dynamodb")
        .get_item(TableName=config.idempotency_table_name, Key={"pk": {"S": f"status#{execution_arn}"}})
        .get("Item")
    )
    return item


def test_leaving_takes_one_queue_off_and_never_makes_an_item(local_aws: Any) -> None:
    arn = f"arn:aws:states:us-east-1:123456789012:execution:joined:{uuid.uuid4().hex}"
    store = signals()
    store.register(arn, "https://queue/a")
    store.register(arn, "https://queue/b")

    store.leave(arn, "https://queue/a")
    item = _item(arn)
    assert item is not None and item["waiters"] == {"SS": ["https://queue/b"]}

    store.leave(arn, "https://queue/b")  # the last one: DynamoDB drops an empty set
    store.leave(arn, "https://queue/b")  # nothing left to take off: refused, not an error
    assert "waiters" not in (_item(arn) or {})
    never_waited = f"{arn}-other"
    store.leave(never_waited, "https://queue/a")
    assert _item(never_waited) is None


def test_a_206_leaves_the_runs_item_and_a_later_call_is_still_woken(local_aws: Any) -> None:
    """As deployed (the default margin): the first call answers 206 and takes its queue off; a
    second call on the same run, by idempotency key, registers again and is woken at the end."""
    service = build_service(Settings.from_environment())
    key = f"join-{uuid.uuid4().hex}"

    def call(wait: int) -> Any:
        options = RunOptions(wait_for_seconds=wait, idempotency_key=key, on_conflict="RETURN_EXISTING")
        return service.execute(StartCommand("slow_steps", None, {"delaySeconds": 4}, options), lambda: 30.0)

    first = call(2)

    assert (first.http_status, first.aws_calls["UpdateItem"]) == (206, 2), first.aws_calls  # registered, left
    workflow, execution_name = service._catalog.parse_workflow_id(first.run.workflow_id)
    arn = workflow.execution_arn(execution_name)
    item = _item(arn)
    assert item is not None and "waiters" not in item  # registered once, nobody waits now

    second = call(20)
    answered = time.time()

    assert (second.http_status, second.run.status) == (200, "COMPLETED")
    assert second.aws_calls["ReceiveMessage"] > 0 and second.aws_calls["GetItem"] <= 1, second.aws_calls
    assert answered - second.run.update_time / 1000 < 1.0  # woken, not left to a fallback read


def test_a_long_wait_without_wakeups_reads_the_item_and_little_history(local_aws: Any) -> None:
    service = build_service(Settings.from_environment(), answer_margin_seconds=0, wakeups=None)
    options = RunOptions(wait_for_seconds=20, request_id=f"signals-{uuid.uuid4()}")

    answer = service.execute(StartCommand("slow_steps", None, {"delaySeconds": 8}, options), lambda: 30.0)
    answered = time.time()

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.aws_calls["GetItem"] > 0
    # History in the first 2 s (at most ~8 looks), then once for the end and at most one fallback.
    assert answer.aws_calls["GetExecutionHistory"] <= 10, answer.aws_calls
    # The item, not a fallback read (next due 5 s after the last), told the waiter: the answer came
    # within about one look (1 s) of the end.
    assert answered - answer.run.update_time / 1000 < 2.5


def test_the_rule_pattern_matches_only_ends_of_the_stacks_machines(local_aws: Any) -> None:
    (pattern,) = [pattern for pattern, function in _rules() if function.name.endswith("RunStatusFunction")]
    machine = Settings.from_environment().workflow_state_machines["hello_world"][1]
    # The shape AWS documents for this event, trimmed to what the pattern looks at.
    event = {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"stateMachineArn": machine, "status": "SUCCEEDED", "executionArn": f"{machine}:x"},
    }

    assert matches(pattern, event)
    assert not matches(pattern, {**event, "detail": {**event["detail"], "status": "RUNNING"}})
    other = {**event["detail"], "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:other"}
    assert not matches(pattern, {**event, "detail": other})
    assert not matches(pattern, {k: v for k, v in event.items() if k != "source"})
    with pytest.raises(NotImplementedError):
        matches({"detail": {"status": [{"prefix": "SUCC"}]}}, event)


def test_a_state_machine_added_to_local_mode_has_its_ends_recorded(local_aws: Any) -> None:
    definition = {"StartAt": "done", "States": {"done": {"Type": "Pass", "End": True}}}
    machine = local_aws.add_state_machine(f"added-{uuid.uuid4().hex[:8]}", definition)
    sfn = boto3.client("stepfunctions")

    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]

    assert recorded_end(arn).status == "SUCCEEDED"


def test_the_event_file_for_sam_local_invoke_is_recorded_by_run_status(local_aws: Any) -> None:
    event = load_event("run_status_change.json")
    function = local_aws.functions["RunStatusFunction"]

    answer = function.invoke(event)

    arn = event["detail"]["executionArn"]
    assert answer == {"executionArn": arn, "status": "SUCCEEDED", "kept": True, "woken": 0}
    assert signals().ended(arn) == RunEnded("SUCCEEDED", event["detail"]["stopDate"])
    # EventBridge delivers at least once: a repeat changes nothing, an older end is not kept.
    assert function.invoke(event)["kept"] is True
    older = {**event, "detail": {**event["detail"], "status": "FAILED", "stopDate": event["detail"]["stopDate"] - 1}}
    assert function.invoke(older)["kept"] is False
    assert signals().ended(arn) == RunEnded("SUCCEEDED", event["detail"]["stopDate"])
    assert matches(next(p for p, f in _rules() if f is function), event)


def _rules() -> list[tuple[dict[str, Any], Any]]:
    from local_mode import aws

    return list(aws._RULES)
