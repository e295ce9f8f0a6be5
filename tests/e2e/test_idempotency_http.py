"""Idempotency over real HTTP: sixteen callers at once with one new key, for each strategy."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.http_client import Answer, call

pytestmark = pytest.mark.e2e


def start(server: Any, key: str, strategy: str, wait: str = "0", delay: int = 5) -> Answer:
    return call(
        server.url,
        "POST",
        "/api/workflow/execute/slow_steps",
        json_body={"delaySeconds": delay},
        headers={"X-Idempotency-key": key, "X-on-conflict": strategy, "waitForSeconds": wait},
    )


@pytest.mark.parametrize("strategy", ["RETURN_EXISTING", "FAIL", "FAIL_ON_RUNNING"])
def test_sixteen_callers_one_key_one_run(local_server: Any, strategy: str) -> None:
    key = f"http-race-{uuid.uuid4()}"
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: start(local_server, key, strategy), range(16)))
    statuses = [a.status for a in answers]
    unexpected = [(a.status, a.body) for a in answers if a.status not in (200, 206, 409)]
    assert not unexpected, unexpected
    started = [a for a in answers if a.status in (200, 206) and "x-idempotent-replayed" not in a.headers]
    named = {a.body["workflowId"] for a in answers}
    assert len(started) == 1, statuses
    assert len(named) == 1, named  # every answer, 409s included, names the one run
    if strategy == "RETURN_EXISTING":
        assert all(a.headers.get("x-idempotent-replayed") == "true" for a in answers if a is not started[0])
    else:
        assert statuses.count(409) == 15


def test_replay_and_conflict_answers(local_server: Any) -> None:
    key = f"http-replay-{uuid.uuid4()}"
    first = start(local_server, key, "FAIL", wait="10", delay=0)
    assert first.status == 200 and "x-idempotent-replayed" not in first.headers
    replay = start(local_server, key, "RETURN_EXISTING", wait="10", delay=0)
    assert replay.status == 200
    assert replay.headers["x-idempotent-replayed"] == "true"
    assert replay.body["workflowId"] == first.body["workflowId"]
    assert replay.body["output"] == {"finished": True, "delaySeconds": 0}
    conflict = start(local_server, key, "FAIL")
    assert conflict.status == 409
    assert conflict.body["workflowId"] == first.body["workflowId"]
    again = start(local_server, key, "FAIL_ON_RUNNING", wait="10", delay=0)
    assert again.status == 200 and again.body["workflowId"] != first.body["workflowId"]


def test_key_in_the_start_workflow_request_body(local_server: Any) -> None:
    key = f"http-body-{uuid.uuid4()}"
    body = {"input": {"name": "Ada"}, "idempotencyKey": key, "idempotencyStrategy": "RETURN_EXISTING"}
    first = call(local_server.url, "POST", "/api/workflow/execute/hello_world/1", json_body=body)
    second = call(local_server.url, "POST", "/api/workflow/execute/hello_world/1", json_body=body)
    assert first.status == second.status == 200
    assert first.body["workflowId"] == second.body["workflowId"]
    assert second.headers["x-idempotent-replayed"] == "true"
    clash = call(
        local_server.url,
        "POST",
        "/api/workflow/execute/hello_world/1",
        json_body=body,
        headers={"X-Idempotency-key": "another-key", "X-on-conflict": "RETURN_EXISTING"},
    )
    assert clash.status == 400


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Idempotency-key": "k" * 257, "X-on-conflict": "FAIL"},
        {"X-Idempotency-key": "k", "X-on-conflict": "fail"},
        {"X-Idempotency-key": "k"},
    ],
)
def test_bad_keys_are_400(local_server: Any, headers: dict[str, str]) -> None:
    answer = call(local_server.url, "POST", "/api/workflow/execute/hello_world", json_body={}, headers=headers)
    assert answer.status == 400
    assert answer.body["validationErrors"]


def test_key_with_control_characters_is_400(local_server: Any) -> None:
    answer = call(
        local_server.url,
        "POST",
        "/api/workflow/execute/hello_world",
        json_body={},
        query={"X-Idempotency-key": "bad\x01key", "X-on-conflict": "FAIL"},
    )
    assert answer.status == 400
    assert answer.body["validationErrors"][0]["path"] == "X-Idempotency-key"
