"""The wake-up adapter's own rules, with SQS failures moto cannot produce on demand: a throttled
queue among several, a new queue SQS does not show yet, a receive that stalls, and the long
poll's client settings."""

import datetime
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

from workflow_api.adapters import aws
from workflow_api.adapters.aws import (
    CLIENT_CONFIG,
    LONG_POLL_GRACE_SECONDS,
    AwsThrottled,
    AwsUnavailable,
    long_poll_config,
    sqs_long_poll_client,
)
from workflow_api.adapters.run_signals import RunEnded
from workflow_api.adapters.wakeups import (
    LONGEST_POLL_SECONDS,
    NEW_QUEUE_SECONDS,
    WakeupQueueGone,
    WakeupQueues,
    is_named_for,
    queue_named_by,
    run_name,
    wake,
)
from workflow_api.config import Settings
from workflow_api.idempotency import execution_name

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
    pool = WakeupQueues("wakeup-t-", control, lambda: now[0], lambda _seconds: long_poll)  # type: ignore[arg-type, return-value]
    calls = Counter[str]()

    with pytest.raises(WakeupQueueGone), pool.lease(calls) as queue:
        now[0] += age
        queue.wait(ARN, 1, calls)
    with pool.lease(calls) as again:
        pass

    assert (again is queue) is kept
    assert control.created == (1 if kept else 2)
    assert long_poll.received == [queue.url]  # receives go through the long-poll client


@pytest.mark.parametrize("seconds", range(1, LONGEST_POLL_SECONDS + 1))
def test_a_long_poll_is_tried_once_and_its_read_timeout_is_its_wait_plus_the_grace(seconds: int) -> None:
    config = long_poll_config(seconds)

    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert config.read_timeout == seconds + LONG_POLL_GRACE_SECONDS
    # A stalled receive ends within the margin the deadline keeps for the answer.
    assert config.connect_timeout + LONG_POLL_GRACE_SECONDS < Settings.model_fields["answer_margin_seconds"].default
    assert CLIENT_CONFIG.read_timeout < LONGEST_POLL_SECONDS  # why receives need their own clients


@pytest.fixture
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The adapters' process-wide botocore session and clients, made anew for this test and
    forgotten after it: clients made here (maybe before moto is imported) must not serve later
    tests."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws._client.cache_clear()
    aws._session.cache_clear()
    yield
    aws._client.cache_clear()
    aws._session.cache_clear()


def test_a_container_keeps_one_long_poll_client_per_wait_length_and_at_most_twenty(fresh_clients: None) -> None:
    one = sqs_long_poll_client(5)

    assert sqs_long_poll_client(5) is one  # made once, kept with its connection
    assert one.meta.config.read_timeout == 5 + LONG_POLL_GRACE_SECONDS
    assert sqs_long_poll_client(5.7) is one  # type: ignore[arg-type]  # whole seconds, as SQS waits
    assert sqs_long_poll_client(300) is sqs_long_poll_client(LONGEST_POLL_SECONDS)
    assert sqs_long_poll_client(0) is sqs_long_poll_client(1)
    assert WakeupQueues("wakeup-t-")._long_poll_clients is sqs_long_poll_client  # as wiring.py builds it


@contextmanager
def silent_server() -> Iterator[str]:
    """A loopback server that takes every request and never answers; its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # closed: the test is over
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_a_receive_that_stalls_gives_up_soon_after_its_wait_not_at_a_fixed_timeout() -> None:
    """Real botocore, as deployed (long_poll_config), against a server that never answers: a 1 s
    receive ends with an error after about 1 + the grace seconds, and the call goes on polling."""
    session = botocore.session.get_session()
    with silent_server() as url:

        def receiver(seconds: int) -> Any:
            return session.create_client(
                "sqs",
                region_name="us-east-1",
                endpoint_url=url,
                config=long_poll_config(seconds),
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )

        pool = WakeupQueues("wakeup-t-", FakeSqs(), time.time, receiver)  # type: ignore[arg-type]
        calls = Counter[str]()
        began = time.monotonic()
        with pytest.raises(AwsUnavailable), pool.lease(calls) as queue:
            queue.wait(ARN, 1, calls)
        took = time.monotonic() - began

    # Not before the wait and its grace are up; far from the 25 s a single long-poll client waited
    # (the upper bound leaves room for a busy CI machine).
    assert 1 + LONG_POLL_GRACE_SECONDS - 0.1 < took < 1 + LONG_POLL_GRACE_SECONDS + 6
    assert calls["ReceiveMessage"] == 1  # tried once


# --- a run named for the queue its caller waits on ----------------------------------------------

URL_PREFIX = "https://sqs.us-east-1.amazonaws.com/123456789012/wakeup-t-"


class QueueMaker(FakeSqs):
    """Gives each queue the URL SQS would, or ``url_of``'s."""

    def __init__(self, url_of: Any = None) -> None:
        super().__init__()
        self.url_of = url_of or (lambda name: f"https://sqs.us-east-1.amazonaws.com/123456789012/{name}")

    def create_queue(self, QueueName: str, Attributes: dict[str, str]) -> dict[str, Any]:  # noqa: N803
        return {"QueueUrl": self.url_of(QueueName)}


def test_run_status_finds_the_queue_a_run_is_named_for() -> None:
    with WakeupQueues("wakeup-t-", QueueMaker(), url_prefix=URL_PREFIX).lease(Counter()) as queue:
        name = run_name("f" * 32, queue)

        assert name == f"{'f' * 32}-q{queue.id}" and len(name) <= 80
        assert is_named_for(name, queue)
        assert queue_named_by(name, URL_PREFIX) == queue.url


@pytest.mark.parametrize(
    "name",
    [
        "f" * 32,  # plainly named: its end is recorded on its item
        execution_name("slow_steps", "a key", 1),  # named for its idempotency key: its waiters register
        f"{'f' * 32}-q{'A' * 32}",
        f"{'f' * 32}-q{'a' * 31}",
        f"{'f' * 32}-q{'a' * 32}-x",
    ],
)
def test_no_other_name_names_a_queue(name: str) -> None:
    assert queue_named_by(name, URL_PREFIX) is None


def test_a_queue_whose_url_run_status_could_not_build_gets_no_id() -> None:
    """The URL SQS gives is checked against the one run_status will build from the run's name: a
    queue that differs (another endpoint's form) is waited on as before, after registering."""
    odd = QueueMaker(lambda name: f"https://queue.amazonaws.com/123456789012/{name}")
    for pool in (WakeupQueues("wakeup-t-", odd, url_prefix=URL_PREFIX), WakeupQueues("wakeup-t-", QueueMaker())):
        with pool.lease(Counter()) as queue:
            assert queue.id is None
            assert run_name("f" * 32, queue) == "f" * 32
            assert not is_named_for("f" * 32, queue)


def test_a_call_is_not_fooled_by_a_run_named_for_another_queue() -> None:
    with WakeupQueues("wakeup-t-", QueueMaker(), url_prefix=URL_PREFIX).lease(Counter()) as queue:
        assert not is_named_for(f"{'f' * 32}-q{'0' * 32}", queue)


# --- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1_796_145_859.23, 1_796_145_859, 0, "2026-12-01T10:00:00.5Z", "1796145859.23"])
def test_timestamps_are_the_instants_botocore_parses_in_utc(value: Any) -> None:
    from botocore.utils import parse_timestamp

    parsed = aws.utc_timestamp(value)

    assert parsed == parse_timestamp(value)  # the same instant
    assert parsed.utcoffset() == datetime.timedelta(0)


def test_the_adapters_clients_parse_timestamps_with_it(fresh_clients: None) -> None:
    """The parser is the session's: every client made from it (and the answers' start and stop
    dates, and each history event's time) uses it."""
    client = aws.stepfunctions_client()
    parser = client._endpoint._response_parser_factory.create_parser("json")

    assert parser._timestamp_parser is aws.utc_timestamp


# --- run_status: a named run's queue told at once, a keyed run's end recorded first -------------


class RecordingSignals:
    def __init__(self, steps: list[Any], waiters: list[str]) -> None:
        self.steps, self.waiters = steps, waiters

    def record(self, execution_arn: str, ended: RunEnded) -> list[str]:
        self.steps.append(("record", execution_arn))
        return self.waiters


@pytest.fixture
def run_status(monkeypatch: pytest.MonkeyPatch) -> Any:
    import run_status

    monkeypatch.setenv("WAKEUP_QUEUE_URL_PREFIX", URL_PREFIX)
    run_status.wakeup_url_prefix.cache_clear()
    yield run_status
    run_status.wakeup_url_prefix.cache_clear()


def status_change(execution_name: str) -> dict[str, Any]:
    arn = f"arn:aws:states:us-east-1:123456789012:execution:m:{execution_name}"
    return {"detail": {"executionArn": arn, "status": "SUCCEEDED", "stopDate": 1}}


def test_run_status_tells_a_named_runs_queue_and_writes_nothing(
    run_status: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[Any] = []
    monkeypatch.setattr(run_status, "run_signals", lambda: RecordingSignals(steps, []))
    monkeypatch.setattr(run_status, "wake", lambda urls, arn, ended: steps.append(("wake", list(urls))) or len(urls))
    event = status_change(f"{'f' * 32}-q{'a' * 32}")

    answer = run_status.handler(event, None)

    arn = event["detail"]["executionArn"]
    assert steps == [("wake", [URL_PREFIX + "a" * 32])]
    assert answer == {"executionArn": arn, "status": "SUCCEEDED", "kept": False, "woken": 1}


def test_run_status_raises_when_a_named_runs_queue_cannot_be_told(
    run_status: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So Lambda retries the event; meanwhile the caller's history reads find the end."""
    steps: list[Any] = []
    monkeypatch.setattr(run_status, "run_signals", lambda: RecordingSignals(steps, []))

    def failing(urls: Any, arn: str, ended: RunEnded) -> int:
        raise AwsUnavailable("SQS is unavailable")

    monkeypatch.setattr(run_status, "wake", failing)

    with pytest.raises(AwsUnavailable):
        run_status.handler(status_change(f"{'f' * 32}-q{'a' * 32}"), None)
    assert steps == []


def test_run_status_wakes_a_keyed_runs_registered_calls_after_recording_its_end(
    run_status: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[Any] = []
    monkeypatch.setattr(run_status, "run_signals", lambda: RecordingSignals(steps, ["https://q/1", "https://q/2"]))
    monkeypatch.setattr(run_status, "wake", lambda urls, arn, ended: steps.append(("wake", list(urls))) or len(urls))

    answer = run_status.handler(status_change(execution_name("slow_steps", "a key", 1)), None)

    assert [step for step, _ in steps] == ["record", "wake"] and steps[1][1] == ["https://q/1", "https://q/2"]
    assert answer["woken"] == 2
