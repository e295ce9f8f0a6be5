"""Local mode's GetExecutionHistory (local_mode/execution_history.py): the events moto's serializer
would have answered, paged and ordered as AWS pages them."""

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.responses import StepFunctionResponse

from local_mode.execution_history import moto_get_execution_history
from tests.integration.test_run_signals import start
from workflow_api.adapters.stepfunctions import HistoryCursor, StepFunctionsGateway

# A Map whose second item fails and is caught, then a Choice and a Fail: events of many shapes.
MAP_THEN_FAIL = {
    "StartAt": "each",
    "States": {
        "each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "check",
                "States": {
                    "check": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "bad"}],
                        "Default": "good",
                    },
                    "bad": {"Type": "Fail", "Error": "Two", "Cause": "the item was 2"},
                    "good": {"Type": "Pass", "End": True},
                },
            },
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "give_up"}],
            "End": True,
        },
        "give_up": {"Type": "Fail", "Error": "Gave.Up", "Cause": "an item failed"},
    },
}
LONG_MAP = {
    "StartAt": "each",
    "States": {
        "each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "touch",
                "States": {"touch": {"Type": "Pass", "End": True}},
            },
            "End": True,
        }
    },
}


def sfn() -> Any:
    return boto3.client("stepfunctions")


def ended(execution_arn: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: str = sfn().describe_execution(executionArn=execution_arn)["status"]
        if status != "RUNNING":
            return status
        time.sleep(0.02)
    raise AssertionError(f"{execution_arn} still runs after {timeout} s")


def run_of(local_aws: Any, definition: dict[str, Any], workflow_input: dict[str, Any]) -> str:
    machine = local_aws.add_state_machine(f"history-{uuid.uuid4().hex[:8]}", definition)
    arn: str = sfn().start_execution(stateMachineArn=machine, input=json.dumps(workflow_input))["executionArn"]
    ended(arn)
    return arn


def pages(execution_arn: str, **request: Any) -> Iterator[dict[str, Any]]:
    page = sfn().get_execution_history(executionArn=execution_arn, **request)
    yield page
    while "nextToken" in page:
        page = sfn().get_execution_history(executionArn=execution_arn, nextToken=page["nextToken"], **request)
        yield page


@pytest.mark.parametrize(
    "run",
    [
        pytest.param(lambda aws: start("hello_world", {"name": "Ada"}), id="hello_world"),
        pytest.param(lambda aws: start("always_fails", {}), id="always_fails, a Lambda error"),
        pytest.param(lambda aws: start("slow_steps", {"delaySeconds": 0}), id="slow_steps, Task and Wait"),
        pytest.param(lambda aws: run_of(aws, MAP_THEN_FAIL, {"items": [1, 2, 3]}), id="Map, Choice, Fail, Catch"),
    ],
)
def test_every_event_reads_as_motos_own_serializer_wrote_it(
    local_aws: Any, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = run(local_aws)
    ended(arn)
    ours = sfn().get_execution_history(executionArn=arn, maxResults=1000)

    monkeypatch.setattr(StepFunctionResponse, "get_execution_history", moto_get_execution_history)  # moto's own
    motos = sfn().get_execution_history(executionArn=arn)

    assert len(ours["events"]) >= 5
    assert ours["events"] == motos["events"]
    assert "nextToken" not in ours


def test_pages_are_a_hundred_events_oldest_first_unless_asked(local_aws: Any) -> None:
    arn = run_of(local_aws, LONG_MAP, {"items": list(range(60))})  # ~250 events

    oldest_first = list(pages(arn))
    newest_first = list(pages(arn, reverseOrder=True, maxResults=1000))

    assert [len(page["events"]) for page in oldest_first[:-1]] == [100] * (len(oldest_first) - 1)
    everything = [event["id"] for page in oldest_first for event in page["events"]]
    assert everything == list(range(1, len(everything) + 1))
    assert len(everything) > 200
    assert len(sfn().get_execution_history(executionArn=arn, maxResults=0)["events"]) == 100  # 0: the default
    assert len(newest_first) == 1
    assert [event["id"] for event in newest_first[0]["events"]] == everything[::-1]


def test_newest_first_pages_go_on_from_the_last_page_while_the_run_adds_events(local_aws: Any) -> None:
    arn = start("slow_steps", {"delaySeconds": 1})
    deadline = time.monotonic() + 10
    while len(sfn().get_execution_history(executionArn=arn)["events"]) < 4:  # start_step has run
        assert time.monotonic() < deadline, "slow_steps did not reach its Wait"
        time.sleep(0.02)
    request = {"executionArn": arn, "reverseOrder": True, "maxResults": 2}  # the same on every page, as AWS asks
    page = sfn().get_execution_history(**request)
    ended(arn)  # final_step and the run's end add events before the next pages are read
    read = [page]
    while "nextToken" in page:
        page = sfn().get_execution_history(**request, nextToken=page["nextToken"])
        read.append(page)

    ids = [event["id"] for page in read for event in page["events"]]
    assert len(read) >= 2
    assert ids == list(range(ids[0], 0, -1))  # newest first, each event once, down to the start
    everything = sfn().get_execution_history(executionArn=arn)["events"]
    assert everything[-1]["type"] == "ExecutionSucceeded"
    assert everything[-1]["id"] > ids[0]


@pytest.mark.parametrize(
    ("request_", "code"),
    [({"nextToken": "not-a-token"}, "InvalidToken"), ({"maxResults": 1001}, "ValidationException")],
    ids=["a token that is not one", "a page over 1,000"],
)
def test_what_aws_refuses_is_refused(local_aws: Any, request_: dict[str, Any], code: str) -> None:
    arn = start("hello_world", {"name": "Ada"})

    with pytest.raises(ClientError) as refused:
        sfn().get_execution_history(executionArn=arn, **request_)

    assert refused.value.response["Error"]["Code"] == code


def test_a_history_already_read_is_not_read_again(local_aws: Any) -> None:
    """The adapter reads newest first and stops at an event it has seen: a long history costs its
    pages once, then one page a look. Until local mode paged, only fake clients exercised this."""
    arn = run_of(local_aws, LONG_MAP, {"items": list(range(300))})  # ~1,200 events
    gateway, cursor = StepFunctionsGateway(), HistoryCursor(arn)
    first, again = Counter[str](), Counter[str]()

    read = gateway.read_new_events(cursor, first)
    new_again = gateway.read_new_events(cursor, again)

    assert 1000 < read <= 2000
    assert cursor.events[read]["type"] == "ExecutionSucceeded"
    assert first["GetExecutionHistory"] == 2  # 1,000 newest, then the rest
    assert (new_again, again["GetExecutionHistory"]) == (0, 1)
    assert sorted(cursor.events) == list(range(1, read + 1))
