"""The wake-up adapter's own rules, with SQS failures moto cannot produce on demand: a throttled
queue among several, a new queue SQS does not show yet, and the long poll's client settings."""

from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from workflow_api.adapters.aws import CLIENT_CONFIG, LONG_POLL_CONFIG, AwsThrottled
from workflow_api.adapters.run_signals import RunEnded
from workflow_api.adapters.wakeups import (
    LONGEST_POLL_SECONDS,
    NEW_QUEUE_SECONDS,
    WakeupQueueGone,
    WakeupQueues,
    wake,
)

ARN = "arn:aws:states:us-east-1:123456789012:execution:m:run"


def error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "SQS")


class FakeSqs:
    """Sends to URLs, failing those in ``failing`` with their error; receives raise ``receive_error``."""

    def __init__(self, failing: dict[str, str] | None = None, receive_error: str | None = None) -> None:
        self.failing = failing or {}
        self.receive_error = receive_error
        self.sent: list[str] = []
        self.received: list[str] = []
        self.created = 0

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:  # noqa: N803 - botocore's names
        if QueueUrl in self.failing:
            raise error(self.failing[QueueUrl])
        self.sent.append(QueueUrl)
        return {}

    def create_queue(self, QueueName: str, Attributes: dict[str, str]) -> dict[str, Any]:  # noqa: N803
        self.created += 1
        return {"QueueUrl": f"https://sqs/{QueueName}"}

    def receive_message(self, QueueUrl: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.received.append(QueueUrl)
        if self.receive_error:
            raise error(self.receive_error)
        return {}


def test_a_throttled_queue_does_not_keep_the_others_from_being_told() -> None:
    sqs = FakeSqs(failing={"b": "ThrottlingException", "c": "AWS.SimpleQueueService.NonExistentQueue"})

    with pytest.raises(AwsThrottled):
        wake(["a", "b", "c", "d"], ARN, RunEnded("SUCCEEDED", 1), sqs)  # type: ignore[arg-type]

    assert sqs.sent == ["a", "d"]  # "c" is gone: passed over, not an error


def test_gone_queues_alone_are_no_error() -> None:
    sqs = FakeSqs(failing={"b": "AWS.SimpleQueueService.NonExistentQueue"})

    assert wake(["a", "b"], ARN, RunEnded("SUCCEEDED", 1), sqs) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize(("age", "kept"), [(0.5, True), (NEW_QUEUE_SECONDS + 1, False)])
def test_a_queue_sqs_does_not_show_is_kept_while_new_and_dropped_once_old(age: float, kept: bool) -> None:
    now = [1000.0]
    control, long_poll = FakeSqs(), FakeSqs(receive_error="AWS.SimpleQueueService.NonExistentQueue")
    pool = WakeupQueues("wakeup-t-", control, lambda: now[0], long_poll)  # type: ignore[arg-type]
    calls = Counter[str]()

    with pytest.raises(WakeupQueueGone), pool.lease(calls) as queue:
        now[0] += age
        queue.wait(ARN, 1, calls)
    with pool.lease(calls) as again:
        pass

    assert (again is queue) is kept
    assert control.created == (1 if kept else 2)
    assert long_poll.received == [queue.url]  # receives go through the long-poll client


def test_the_long_poll_is_tried_once_and_outlasts_sqs_longest_wait() -> None:
    assert LONG_POLL_CONFIG.retries == {"mode": "standard", "total_max_attempts": 1}
    assert LONG_POLL_CONFIG.read_timeout > LONGEST_POLL_SECONDS
    assert CLIENT_CONFIG.read_timeout < LONGEST_POLL_SECONDS  # why receives need their own client
