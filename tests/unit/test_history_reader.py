"""StepFunctionsGateway.read_new_events against fake clients that page like AWS and like moto."""

from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sfn_history import HistoryBuilder

from workflow_api.adapters.stepfunctions import (
    FIRST_PAGE_SIZE,
    NEXT_PAGE_SIZE,
    AwsThrottled,
    AwsUnavailable,
    HistoryCursor,
    StepFunctionsGateway,
)
from workflow_api.errors import RunNotFound
from workflow_api.history import fold
from workflow_api.status import WorkflowStatus

EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:slow_steps-v1:abc"


def _client_error(code: str, http_status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": http_status}},
        "GetExecutionHistory",
    )


def _history(n_tasks: int) -> list[dict[str, Any]]:
    """ExecutionStarted + 5 events per task: 1 + 5 * n_tasks events, ids 1..N."""
    history = HistoryBuilder(step_ms=1).started({"n": n_tasks})
    for i in range(n_tasks):
        history.task(f"step_{i % 7}", {"i": i}, {"i": i})
    return history.events


class AwsLikeClient:
    """Honours reverseOrder, maxResults and nextToken as GetExecutionHistory does on AWS."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.requests: list[dict[str, Any]] = []
        self.fail_on_call: dict[int, Exception] = {}

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(kwargs)
        if len(self.requests) in self.fail_on_call:
            raise self.fail_on_call[len(self.requests)]
        assert kwargs["executionArn"] == EXECUTION_ARN
        ordered = list(reversed(self.events)) if kwargs.get("reverseOrder") else list(self.events)
        size = kwargs.get("maxResults") or 100
        start = int(kwargs.get("nextToken", "0"))
        page: dict[str, Any] = {"events": ordered[start : start + size]}
        if start + size < len(ordered):
            page["nextToken"] = str(start + size)
        return page


class MotoLikeClient:
    """moto 5.2.5: ignores reverseOrder and maxResults, answers every event oldest-first, no token."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.requests: list[dict[str, Any]] = []

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(kwargs)
        return {"events": list(self.events)}


def _read(client, cursor: HistoryCursor) -> tuple[int, Counter]:
    calls: Counter[str] = Counter()
    added = StepFunctionsGateway(client).read_new_events(cursor, calls)
    return added, calls


def _ids(cursor: HistoryCursor) -> list[int]:
    return sorted(cursor.events)


# AWS: newest-first pages -----------------------------------------------------------------------


def test_aws_first_read_pages_through_the_whole_history_once():
    events = _history(500)  # 2501 events: three pages of 1000
    client = AwsLikeClient(events)
    cursor = HistoryCursor(EXECUTION_ARN)

    added, calls = _read(client, cursor)

    assert added == len(events) == 2501
    assert _ids(cursor) == list(range(1, 2502))
    assert calls["GetExecutionHistory"] == len(client.requests) == 3
    first = client.requests[0]
    assert first["reverseOrder"] is True
    assert first["maxResults"] == FIRST_PAGE_SIZE
    assert first["includeExecutionData"] is True
    assert "nextToken" not in first
    assert [r.get("nextToken") for r in client.requests[1:]] == ["1000", "2000"]


def test_aws_next_read_asks_one_small_page_and_adds_only_new_events():
    events = _history(500)
    client = AwsLikeClient(events)
    cursor = HistoryCursor(EXECUTION_ARN)
    _read(client, cursor)
    client.requests.clear()
    events.extend(HistoryBuilder(step_ms=1).task("late", {}, {"late": True}).events)
    for offset, event in enumerate(events[2501:], start=2502):
        event["id"] = offset

    added, calls = _read(client, cursor)

    assert added == 5
    assert _ids(cursor) == list(range(1, 2507))
    assert calls["GetExecutionHistory"] == 1
    assert client.requests[0]["maxResults"] == NEXT_PAGE_SIZE
    assert "nextToken" not in client.requests[0]


def test_aws_read_with_nothing_new_costs_one_call_and_adds_nothing():
    client = AwsLikeClient(_history(500))
    cursor = HistoryCursor(EXECUTION_ARN)
    _read(client, cursor)
    before = dict(cursor.events)

    added, calls = _read(client, cursor)

    assert added == 0
    assert calls["GetExecutionHistory"] == 1
    assert cursor.events == before


def test_aws_paging_stops_at_the_first_page_reaching_an_already_seen_event():
    events = _history(100)  # 501 events
    client = AwsLikeClient(events[:251])
    cursor = HistoryCursor(EXECUTION_ARN)
    _read(client, cursor)
    client.events = events  # 250 new events: pages [501..402], [401..302], [301..202]
    client.requests.clear()

    added, calls = _read(client, cursor)

    assert added == 250
    assert _ids(cursor) == list(range(1, 502))
    # One small page, which shows more is new; then one large page from the newest, which
    # reaches the events already held: never the rest of them.
    assert calls["GetExecutionHistory"] == 2
    assert [r["maxResults"] for r in client.requests] == [NEXT_PAGE_SIZE, FIRST_PAGE_SIZE]
    assert all("nextToken" not in r for r in client.requests)


def test_aws_many_new_events_are_caught_up_in_large_pages():
    events = _history(500)  # 2501 events
    client = AwsLikeClient(events[:401])
    cursor = HistoryCursor(EXECUTION_ARN)
    _read(client, cursor)
    client.events = events  # 2,100 new: a small page, then [2501..1502], [1501..502], [501..2]
    client.requests.clear()

    added, calls = _read(client, cursor)

    assert added == 2100
    assert _ids(cursor) == list(range(1, 2502))
    assert calls["GetExecutionHistory"] == 4  # 100 a page would have taken 22
    assert [r["maxResults"] for r in client.requests] == [NEXT_PAGE_SIZE] + [FIRST_PAGE_SIZE] * 3
    assert [r.get("nextToken") for r in client.requests] == [None, None, "1000", "2000"]


def test_aws_short_history_is_read_in_one_call():
    events = _history(1)
    client = AwsLikeClient(events)
    cursor = HistoryCursor(EXECUTION_ARN)

    added, calls = _read(client, cursor)

    assert added == len(events) == 6
    assert calls["GetExecutionHistory"] == 1
    assert fold(cursor.events.values()).completed_task_refs == {"step_0"}


def test_aws_throttled_part_way_through_paging_still_gets_the_whole_history_on_the_next_look():
    """A look that AWS throttles on its second page must not leave the older events unread for ever."""
    events = _history(500)  # 2501 events
    client = AwsLikeClient(events)
    client.fail_on_call[2] = _client_error("ThrottlingException")
    cursor = HistoryCursor(EXECUTION_ARN)

    with pytest.raises(AwsThrottled):
        _read(client, cursor)
    _read(client, cursor)

    assert _ids(cursor) == list(range(1, 2502))
    run = fold(cursor.events.values())
    assert run.input == {"n": 500}


# moto: everything, oldest-first, no token --------------------------------------------------


def test_moto_style_first_read_takes_every_event_in_one_call():
    events = _history(500)
    client = MotoLikeClient(events)
    cursor = HistoryCursor(EXECUTION_ARN)

    added, calls = _read(client, cursor)

    assert added == 2501
    assert _ids(cursor) == list(range(1, 2502))
    assert calls["GetExecutionHistory"] == 1


def test_moto_style_next_read_adds_only_what_is_new_without_duplicates():
    history = HistoryBuilder().started({"delaySeconds": 3}).task("start_step", {}, {})
    client = MotoLikeClient(history.events)
    cursor = HistoryCursor(EXECUTION_ARN)
    _read(client, cursor)
    history.wait("pause", {}, 3000).task("final_step", {}, {"finished": True}).succeeded({"finished": True})

    added, calls = _read(client, cursor)
    again, _ = _read(client, cursor)

    assert added == len(history.events) - 6
    assert again == 0
    assert calls["GetExecutionHistory"] == 1
    assert _ids(cursor) == list(range(1, len(history.events) + 1))
    run = fold(cursor.events.values())
    assert run.status is WorkflowStatus.COMPLETED
    assert [t.reference_name for t in run.tasks] == ["start_step", "pause", "final_step"]


@pytest.mark.parametrize("client_type", [AwsLikeClient, MotoLikeClient])
def test_both_services_give_the_same_cursor_after_growing_reads(client_type):
    events = _history(300)
    client = client_type(events[:1])
    cursor = HistoryCursor(EXECUTION_ARN)
    total = 0
    for end in (1, 7, 8, 400, 1200, 1501):
        client.events = events[:end]
        added, _ = _read(client, cursor)
        total += added

    assert total == len(events) == 1501
    assert _ids(cursor) == list(range(1, 1502))
    assert cursor.last_event_id == 1501


# errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["ThrottlingException", "TooManyRequestsException"])
def test_throttling_becomes_aws_throttled(code):
    client = AwsLikeClient(_history(1))
    client.fail_on_call[1] = _client_error(code)

    with pytest.raises(AwsThrottled) as caught:
        _read(client, HistoryCursor(EXECUTION_ARN))

    assert caught.value.status == 503
    assert caught.value.retryable


def test_unknown_execution_becomes_run_not_found():
    client = AwsLikeClient(_history(1))
    client.fail_on_call[1] = _client_error("ExecutionDoesNotExist")

    with pytest.raises(RunNotFound):
        _read(client, HistoryCursor(EXECUTION_ARN))


def test_server_error_becomes_aws_unavailable():
    client = AwsLikeClient(_history(1))
    client.fail_on_call[1] = _client_error("InternalFailure", 500)

    with pytest.raises(AwsUnavailable):
        _read(client, HistoryCursor(EXECUTION_ARN))


# What botocore really does with WAITING_CONFIG ------------------------------------------------


def test_a_waiting_read_is_tried_once_and_a_plain_read_is_retried(monkeypatch: pytest.MonkeyPatch):
    """The reads of a waiting call go to the client that botocore tries once; GET's reads retry.
    Every attempt is answered ThrottlingException before it leaves the process (``before-send``)."""
    import botocore.session
    from botocore.awsrequest import AWSResponse

    from workflow_api.adapters.aws import CLIENT_CONFIG, WAITING_CONFIG

    monkeypatch.setattr("time.sleep", lambda seconds: None)  # botocore's backoff between attempts
    attempts: list[str] = []

    def throttle(request: Any, **_: Any) -> AWSResponse:
        attempts.append(request.url)
        body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
        return AWSResponse(request.url, 400, {"x-amzn-requestid": "test"}, _Raw(body))

    session = botocore.session.get_session()
    session.set_credentials("test", "test")
    session.register("before-send.states.GetExecutionHistory", throttle)
    retrying = session.create_client("stepfunctions", region_name="us-east-1", config=CLIENT_CONFIG)
    once = session.create_client("stepfunctions", region_name="us-east-1", config=WAITING_CONFIG)
    gateway = StepFunctionsGateway(retrying, waiting_client=once)

    calls: Counter[str] = Counter()
    with pytest.raises(AwsThrottled):
        gateway.read_new_events(HistoryCursor(EXECUTION_ARN), calls, waiting=True)
    assert len(attempts) == calls["GetExecutionHistory"] == 1

    attempts.clear()
    with pytest.raises(AwsThrottled):
        gateway.read_new_events(HistoryCursor(EXECUTION_ARN), Counter())
    assert len(attempts) == 2  # "total_max_attempts": 2 is one retry after the first try


class _Raw:
    """The raw stream an AWSResponse reads its body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body
