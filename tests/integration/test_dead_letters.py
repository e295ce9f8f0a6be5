"""A run's end that RunStatusFunction could not record is kept, not lost: local mode plays Lambda's
asynchronous retries and on-failure destination (local_mode/limits.py, local_mode/dead_letters.py)
into the dead-letter queue template.yaml names, and scripts/redrive_run_ends.py records it later."""

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_mode import dead_letters, limits
from local_mode.aws import REGION
from workflow_api.adapters.run_signals import RunSignals
from workflow_api.catalog import RUN_NAME_PREFIX
from workflow_api.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import redrive_run_ends

from tests.conftest import wait_until


class FailingRunStatus:
    """RunStatusFunction failing on the ends of the runs ``start`` starts (its DynamoDB write,
    say) until ``fix()``; other runs' ends (an earlier test's) are recorded as usual."""

    def __init__(self, function: Any) -> None:
        self.function, self.real, self.broken = function, function.invoke, True
        self.mine: set[str] = set()
        self.failed: list[str] = []

    def start(self) -> str:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        (machine,) = [
            m["stateMachineArn"]
            for m in sfn.list_state_machines()["stateMachines"]
            if m["name"].endswith("HelloWorldV1StateMachine")
        ]
        name = f"{RUN_NAME_PREFIX}dlq-{uuid.uuid4().hex}"  # as the API names its runs: the rule matches those
        self.mine.add(name)  # before the start: the run may end, and its event come, before it answers
        arn: str = sfn.start_execution(stateMachineArn=machine, name=name, input='{"name": "Ada"}')["executionArn"]
        return arn

    def invoke(self, event: Any) -> Any:
        if not self.broken or event["detail"]["name"] not in self.mine:
            return self.real(event)
        self.failed.append(event["detail"]["executionArn"])
        raise RuntimeError("ProvisionedThroughputExceededException")

    def fix(self) -> None:
        self.broken = False


@pytest.fixture
def run_status(
    local_aws: Any, aws_limits: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FailingRunStatus]:
    """A failing RunStatusFunction; Lambda's retry waits shortened from minutes to nothing, and
    the dead-letter queue gone after the test (local mode makes it again with its next message)."""
    aws_limits(LOCAL_EVENTBRIDGE_DELAY_MS="0")
    monkeypatch.setattr(limits, "ASYNC_ERROR_WAITS_S", (0.0, 0.0))
    failing = FailingRunStatus(local_aws.functions["RunStatusFunction"])
    monkeypatch.setattr(failing.function, "invoke", failing.invoke)
    yield failing
    queue = _queue_url(local_aws)
    if queue:
        boto3.client("sqs", region_name=REGION).delete_queue(QueueUrl=queue)


def _queue_url(local_aws: Any) -> str | None:
    found = dead_letters.destination(local_aws.functions["RunStatusFunction"].name)
    assert found is not None, "template.yaml gives RunStatusFunction an on-failure destination"
    sqs = boto3.client("sqs", region_name=REGION)
    try:
        url: str = sqs.get_queue_url(QueueName=found[0])["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return None
    return url


def _signals() -> RunSignals:
    config = Settings.from_environment()
    return RunSignals(config.idempotency_table_name, config.idempotency_retention_days, boto3.client("dynamodb"))


def _messages(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    found = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in found.get("Messages", [])]


def test_an_end_the_function_fails_on_is_retried_then_kept_in_the_dead_letter_queue(
    local_aws: Any, run_status: FailingRunStatus
) -> None:
    arn = run_status.start()
    wait_until(lambda: limits.eventbridge.given_up() == 1)
    assert run_status.failed == [arn] * 3  # the first attempt and Lambda's 2 retries
    assert _signals().ended(arn) is None  # not recorded...
    queue_url = _queue_url(local_aws)
    assert queue_url is not None
    (record,) = _messages(queue_url)  # ...but not lost
    assert record["requestPayload"]["detail"]["executionArn"] == arn
    assert record["requestPayload"]["detail"]["status"] == "SUCCEEDED"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorMessage"] == "ProvisionedThroughputExceededException"
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["MessageRetentionPeriod", "SqsManagedSseEnabled"]
    )["Attributes"]
    assert attributes == {"MessageRetentionPeriod": str(14 * 86400), "SqsManagedSseEnabled": "true"}


def test_the_redrive_script_records_the_kept_ends_once_the_cause_is_fixed(
    local_aws: Any, run_status: FailingRunStatus
) -> None:
    first, second = run_status.start(), run_status.start()
    wait_until(lambda: limits.eventbridge.given_up() == 2)
    queue_url = _queue_url(local_aws)
    assert queue_url is not None
    sqs, lambda_client = boto3.client("sqs", region_name=REGION), boto3.client("lambda", region_name=REGION)

    def redrive(**options: Any) -> dict[str, int]:
        return dict(redrive_run_ends.redrive(sqs, lambda_client, queue_url, run_status.function.name, **options))

    assert redrive(dry_run=True) == {"listed": 2} and len(_messages(queue_url)) == 2  # a dry run changes nothing
    # Still failing: each is left in the queue (visible again at once here, to be redriven below).
    assert redrive(visibility_seconds=0, limit=2) == {"failed again": 2}

    run_status.fix()
    assert redrive() == {"recorded": 2}
    for arn in (first, second):
        ended = _signals().ended(arn)
        assert ended is not None and ended.status == "SUCCEEDED"
    assert _messages(queue_url) == []
    assert redrive() == {}


def test_the_redrive_script_reads_eventbridges_dead_letters_too() -> None:
    """EventBridge's own dead letter is the event itself; Lambda's is a record around it."""
    event = {"detail-type": "Step Functions Execution Status Change", "detail": {"executionArn": "arn"}}
    assert redrive_run_ends.event_of(json.dumps(event)) == event
    assert redrive_run_ends.event_of(json.dumps({"requestContext": {}, "requestPayload": event})) == event
    assert redrive_run_ends.event_of(json.dumps({"detail-type": "Something else"})) is None
    assert redrive_run_ends.event_of("not json") is None
    message = {
        "Body": json.dumps(event),
        "MessageAttributes": {
            "ERROR_CODE": {"StringValue": "SDK_CLIENT_ERROR"},
            "ERROR_MESSAGE": {"StringValue": "Lambda returned 429"},
        },
    }
    assert redrive_run_ends.why(message) == "EventBridge: SDK_CLIENT_ERROR Lambda returned 429"
