"""Idempotency over real HTTP: sixteen callers at once with one new key, for each strategy; a key
reused for another request is a 422 naming the key and the run, alone or in a race."""

import threading
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
    conflict = start(local_server, key, "FAIL", delay=0)
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


# A key is bound to the request it was made for (docs/IDEMPOTENCY.md) ---------------------------------


def assert_key_reused(answer: Answer, key: str, workflow_id: str, request_id: str) -> None:
    """SPEC's error body for a 422: the key and the run it names, never retryable."""
    assert answer.status == 422, (answer.status, answer.raw)
    assert answer.headers["content-type"] == "application/json"
    body = answer.body
    assert set(body) == {"status", "message", "instance", "retryable", "workflowId"}, body
    assert (body["status"], body["instance"], body["retryable"]) == (422, request_id, False)
    assert body["workflowId"] == workflow_id
    assert key in body["message"]
    assert answer.headers["x-request-id"] == request_id
    assert "x-idempotent-replayed" not in answer.headers


@pytest.mark.parametrize("strategy", ["RETURN_EXISTING", "FAIL", "FAIL_ON_RUNNING"])
def test_the_key_with_another_input_is_422_and_the_run_keeps_its_own(local_server: Any, strategy: str) -> None:
    key = f"http-bound-{uuid.uuid4()}"
    first = start(local_server, key, strategy, wait="10", delay=0)
    assert first.status == 200

    other = call(
        local_server.url,
        "POST",
        "/api/workflow/execute/slow_steps",
        json_body={"delaySeconds": 1},
        headers={"X-Idempotency-key": key, "X-on-conflict": strategy, "requestId": f"req-{strategy}"},
    )

    assert_key_reused(other, key, first.body["workflowId"], f"req-{strategy}")
    run = call(local_server.url, "GET", f"/api/workflow/{first.body['workflowId']}")
    assert run.body["input"] == {"delaySeconds": 0}
    # The identical request keeps its matrix answer: a replay, or 409 (FAIL_ON_RUNNING: a new run).
    again = start(local_server, key, strategy, wait="10", delay=0)
    expected = {"RETURN_EXISTING": 200, "FAIL": 409, "FAIL_ON_RUNNING": 200}[strategy]
    assert again.status == expected
    assert (again.body["workflowId"] == first.body["workflowId"]) is (strategy != "FAIL_ON_RUNNING")


def test_the_key_with_another_version_is_422_in_conductors_request_body(local_server: Any) -> None:
    """A StartWorkflowRequest for version 1, then the same for version 2: another request. The
    same for version 0 ("the latest") is the same request, replayed."""
    key = f"http-version-{uuid.uuid4()}"
    body = {"input": {"name": "Ada"}, "idempotencyKey": key, "idempotencyStrategy": "RETURN_EXISTING"}
    first = call(local_server.url, "POST", "/api/workflow/execute/hello_world/1", json_body=body)
    assert first.status == 200 and first.body["output"] == {"greeting": "Hello, Ada!", "version": 1}

    latest = call(local_server.url, "POST", "/api/workflow/execute/hello_world/0", json_body=body)
    other = call(
        local_server.url,
        "POST",
        "/api/workflow/execute/hello_world/2",
        json_body=body,
        headers={"requestId": "req-v2"},
    )

    assert latest.status == 200 and latest.headers["x-idempotent-replayed"] == "true"
    assert latest.body["workflowId"] == first.body["workflowId"]
    assert_key_reused(other, key, first.body["workflowId"], "req-v2")
    assert "version 2" in other.body["message"]


def test_the_start_route_answers_the_same_422(local_server: Any) -> None:
    key = f"http-start-{uuid.uuid4()}"
    request = {"name": "hello_world", "input": {"name": "Bo"}, "idempotencyKey": key, "idempotencyStrategy": "FAIL"}
    first = call(local_server.url, "POST", "/api/workflow", json_body=request)
    assert first.status == 200
    other = call(
        local_server.url,
        "POST",
        "/api/workflow",
        json_body={**request, "input": {"name": "Cy"}},
        headers={"requestId": "req-start"},
    )
    assert_key_reused(other, key, first.raw.decode(), "req-start")


def test_the_422_is_in_the_openapi_document(local_server: Any) -> None:
    document = call(local_server.url, "GET", "/api/openapi.json").body
    for path, method in [
        ("/api/workflow/execute/{name}", "post"),
        ("/api/workflow/execute/{name}/{version}", "post"),
        ("/api/workflow", "post"),
    ]:
        answer = document["paths"][path][method]["responses"]["422"]
        assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
        assert "idempotency key" in answer["description"]
    assert "workflowId" in document["components"]["schemas"]["ErrorBody"]["properties"]


RACERS = 8


def test_racing_callers_with_different_inputs_get_one_run_and_422s(local_server: Any) -> None:
    """Eight callers, two inputs (four each), one new key, released together. One run exists, of
    one caller's input; that input's callers are answered the run, the other input's a 422 naming it."""
    key = f"http-race-inputs-{uuid.uuid4()}"
    barrier = threading.Barrier(RACERS)

    def caller(i: int) -> tuple[int, Answer]:
        barrier.wait()
        return i % 2, call(
            local_server.url,
            "POST",
            "/api/workflow/execute/slow_steps",
            json_body={"delaySeconds": 2, "caller": i % 2},
            headers={"X-Idempotency-key": key, "X-on-conflict": "RETURN_EXISTING", "waitForSeconds": "0"},
        )

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        answers = list(pool.map(caller, range(RACERS)))

    named = {answer.body["workflowId"] for _, answer in answers}
    assert len(named) == 1, named  # every answer, 422s included, names the one run
    run = call(local_server.url, "GET", f"/api/workflow/{named.pop()}")
    winner = run.body["input"]["caller"]
    assert run.body["input"] == {"delaySeconds": 2, "caller": winner}
    for caller_input, answer in answers:
        if caller_input == winner:
            assert answer.status in (200, 206), (answer.status, answer.raw)
        else:
            assert answer.status == 422, (answer.status, answer.raw)
    assert [answer.status for _, answer in answers].count(422) == RACERS // 2
