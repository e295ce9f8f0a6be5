"""End to end over real HTTP: the local server ``make run`` starts, in its own process, driven
the way the README's curl examples drive it."""

import http.client
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.http_client import Answer, call

pytestmark = pytest.mark.e2e


def execute(server: Any, name: str, body: Any = None, **kwargs: Any) -> Answer:
    return call(server.url, "POST", f"/api/workflow/execute/{name}", json_body=body, **kwargs)


def assert_error(answer: Answer, status: int) -> dict[str, Any]:
    assert answer.status == status, answer.raw
    body: dict[str, Any] = answer.body
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["retryable"], bool)
    assert "instance" in body
    assert "Traceback" not in answer.raw.decode()
    assert "arn:aws" not in answer.raw.decode()
    return body


def test_latest_version_is_the_highest(local_server: Any) -> None:
    answer = execute(local_server, "hello_world", {"name": "Ada"})
    assert answer.status == 200
    assert answer.body["status"] == "COMPLETED"
    assert answer.body["output"] == {"greeting": "Hello, Ada!", "version": 2}


@pytest.mark.parametrize("how", ["query", "header"])
def test_version_as_query_or_header(local_server: Any, how: str) -> None:
    kwargs: dict[str, Any] = {how if how == "query" else "headers": {"version": "1"}}
    answer = execute(local_server, "hello_world", {"name": "Ada"}, **kwargs)
    assert answer.status == 200
    assert answer.body["output"] == {"greeting": "Hello, Ada!", "version": 1}


def test_conductor_route_with_start_workflow_request(local_server: Any) -> None:
    answer = call(
        local_server.url,
        "POST",
        "/api/workflow/execute/hello_world/1",
        json_body={"name": "ignored", "version": 2, "input": {"name": "Grace"}, "correlationId": "order-7"},
    )
    assert answer.status == 200
    assert answer.body["output"] == {"greeting": "Hello, Grace!", "version": 1}
    assert answer.body["correlationId"] == "order-7"
    fetched = call(local_server.url, "GET", f"/api/workflow/{answer.body['workflowId']}")
    assert fetched.body["correlationId"] == "order-7"


@pytest.mark.parametrize("route", ["/api/workflow/execute/hello_world/0", "/api/workflow"])
def test_an_empty_correlation_id_is_no_correlation_id(local_server: Any, route: str) -> None:
    """DynamoDB refuses an empty index key: the run record must leave it out, not fail (a 503
    that no retry would mend)."""
    body = {"name": "hello_world", "version": 0, "input": {"name": "Ada"}, "correlationId": ""}
    answer = call(local_server.url, "POST", route, json_body=body)
    assert answer.status == 200, answer.body


def test_version_zero_on_the_conductor_route_means_latest(local_server: Any) -> None:
    answer = call(local_server.url, "POST", "/api/workflow/execute/hello_world/0", json_body={"input": {}})
    assert answer.status == 200
    assert answer.body["output"] == {"greeting": "Hello, World!", "version": 2}


def test_time_up_gives_206_then_get_shows_the_result(local_server: Any) -> None:
    answer = execute(local_server, "slow_steps", {"delaySeconds": 2}, headers={"waitForSeconds": "1"})
    assert answer.status == 206
    assert answer.body["status"] == "RUNNING"
    assert answer.body["signalTimeout"] is True
    workflow_id = answer.body["workflowId"]
    deadline = time.monotonic() + 20
    while True:
        fetched = call(local_server.url, "GET", f"/api/workflow/{workflow_id}")
        assert fetched.status == 200
        if fetched.body["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # polling interval of a caller that was answered 206
    assert fetched.body["status"] == "COMPLETED"
    assert fetched.body["output"] == {"finished": True, "delaySeconds": 2}
    assert [t["referenceTaskName"] for t in fetched.body["tasks"]] == ["start_step", "pause", "final_step"]
    without_tasks = call(local_server.url, "GET", f"/api/workflow/{workflow_id}", query={"includeTasks": "false"})
    assert "tasks" not in without_tasks.body


def test_wait_until_task_ref_returns_before_the_run_ends(local_server: Any) -> None:
    began = time.monotonic()
    answer = execute(
        local_server, "slow_steps", {"delaySeconds": 5}, query={"waitUntilTaskRef": "final_step,start_step"}
    )
    elapsed = time.monotonic() - began
    assert answer.status == 206
    assert answer.body["signalTimeout"] is False
    assert answer.body["tasks"][0] == answer.body["tasks"][0] | {
        "referenceTaskName": "start_step",
        "status": "COMPLETED",
    }
    assert elapsed < 5, "answered only when the run ended, not when start_step completed"


def test_wait_for_zero_answers_at_once(local_server: Any) -> None:
    answer = execute(local_server, "slow_steps", {"delaySeconds": 3}, headers={"waitForSeconds": "0"})
    assert answer.status == 206
    assert answer.body["status"] == "RUNNING"
    assert answer.body["workflowId"].startswith("slow_steps.1.")


@pytest.mark.parametrize("seconds", ["3600", "2147483648", "99999999999999999999"])
def test_wait_above_the_maximum_is_clamped_not_refused(local_server: Any, seconds: str) -> None:
    answer = execute(local_server, "hello_world", {}, headers={"waitForSeconds": seconds})
    assert answer.status == 200


def test_failed_run(local_server: Any) -> None:
    answer = execute(local_server, "always_fails", {})
    assert answer.status == 200
    assert answer.body["status"] == "FAILED"
    assert answer.body["reasonForIncompletion"] == (
        "WorkflowExploded: explode always fails: this workflow demonstrates a FAILED run"
    )
    assert answer.body["tasks"][0]["status"] == "FAILED"


def test_request_id_is_echoed(local_server: Any) -> None:
    answer = execute(local_server, "hello_world", {}, headers={"requestId": "my-request-1"})
    assert answer.body["requestId"] == "my-request-1"
    assert answer.headers["x-request-id"] == "my-request-1"


@pytest.mark.parametrize(
    ("path", "raw_body", "headers", "query", "status", "error_path"),
    [
        ("/api/workflow/execute/hello_world", b"{not json", None, None, 400, None),
        ("/api/workflow/execute/hello_world", b"[1, 2]", None, None, 400, None),
        ("/api/workflow/execute/hello_world/2", b'{"input": 5}', None, None, 400, "body.input"),
        ("/api/workflow/execute/hello_world/two", b"{}", None, None, 400, None),
        ("/api/workflow/execute/hello_world", b"{}", {"waitForSeconds": "-1"}, None, 400, "waitForSeconds"),
        (
            "/api/workflow/execute/hello_world",
            b"{}",
            {"waitForSeconds": "2"},
            {"waitForSeconds": "3"},
            400,
            "waitForSeconds",
        ),
        ("/api/workflow/execute/hello_world", b"{}", {"waitUntilTaskRef": "nope"}, None, 400, "waitUntilTaskRef"),
        ("/api/workflow/execute/hello_world", b"{}", {"X-Idempotency-key": "abc"}, None, 400, "X-on-conflict"),
        (
            "/api/workflow/execute/hello_world",
            b"{}",
            {"X-Idempotency-key": "abc", "X-on-conflict": "SOMETIMES"},
            None,
            400,
            "X-on-conflict",
        ),
        (
            "/api/workflow/execute/hello_world/2",
            b"{}",
            None,
            {"returnStrategy": "BLOCKING_TASK"},
            400,
            "returnStrategy",
        ),
        ("/api/workflow/execute/no_such_workflow", b"{}", None, None, 404, None),
        ("/api/workflow/execute/hello_world", b"{}", None, {"version": "7"}, 404, None),
        ("/api/workflow/execute/hello_world/7", b"{}", None, None, 404, None),
    ],
)
def test_errors(
    local_server: Any, path: str, raw_body: bytes, headers: Any, query: Any, status: int, error_path: str | None
) -> None:
    answer = call(local_server.url, "POST", path, raw_body=raw_body, headers=headers, query=query)
    body = assert_error(answer, status)
    if error_path:
        assert error_path in [e["path"] for e in body["validationErrors"]]


def test_a_body_that_is_not_json_is_400(local_server: Any) -> None:
    answer = call(
        local_server.url,
        "POST",
        "/api/workflow/execute/hello_world",
        raw_body=b"name=Ada",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    body = assert_error(answer, 400)
    assert body["validationErrors"][0]["path"] == "Content-Type"


def test_unknown_task_ref_error_names_the_valid_ones(local_server: Any) -> None:
    answer = execute(local_server, "slow_steps", {}, headers={"waitUntilTaskRef": "nope"})
    body = assert_error(answer, 400)
    message = body["validationErrors"][0]["message"]
    assert all(name in message for name in ("start_step", "pause", "final_step"))


def test_input_over_256_kib_is_413(local_server: Any) -> None:
    answer = execute(local_server, "hello_world", {"blob": "x" * (256 * 1024)})
    assert_error(answer, 413)


def test_unknown_run_and_unknown_route_are_404(local_server: Any) -> None:
    assert_error(call(local_server.url, "GET", "/api/workflow/hello_world.2.0123456789abcdef"), 404)
    assert_error(call(local_server.url, "GET", "/api/workflow/not-an-id"), 404)
    assert_error(call(local_server.url, "GET", "/api/nothing/here"), 404)


def test_sixteen_callers_at_once_each_get_their_own_run(local_server: Any) -> None:
    def one(i: int) -> Answer:
        return execute(local_server, "hello_world", {"name": f"caller-{i}"})

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(one, range(16)))
    assert [a.status for a in answers] == [200] * 16
    assert [a.body["output"]["greeting"] for a in answers] == [f"Hello, caller-{i}!" for i in range(16)]
    assert len({a.body["workflowId"] for a in answers}) == 16


def test_calls_on_a_kept_connection_are_not_held_back(local_server: Any) -> None:
    """An SDK's client keeps its connection. The answers' headers and body went out in two small
    writes, and the second waited for the client's delayed ACK of the first: ~40 ms an answer,
    where one write takes well under 1 ms."""
    url = urlsplit(local_server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)

    def unknown_run() -> float:
        began = time.monotonic()
        connection.request("GET", "/api/workflow/not-an-id")
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())["status"]) == (404, 404)
        return time.monotonic() - began

    try:
        unknown_run()  # the first may load the API's container
        took = sorted(unknown_run() for _ in range(20))
    finally:
        connection.close()
    assert took[10] < 0.02, f"median {took[10] * 1000:.1f} ms, all {[round(t * 1000, 1) for t in took]}"


def test_a_client_that_expects_100_continue_gets_it_before_it_sends_the_body(local_server: Any) -> None:
    """curl asks for it before a body over 1 MB; the stdlib wrote it into the answer's buffer."""
    url = urlsplit(local_server.url)
    body = b'{"name": "Ada"}'
    with socket.create_connection((url.hostname, url.port), timeout=5) as connection:
        connection.sendall(
            b"POST /api/workflow/execute/hello_world HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n"
            b"waitForSeconds: 0\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        connection.settimeout(0.5)  # curl waits 1 s before sending the body anyway
        assert connection.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n")
        connection.settimeout(5)
        connection.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 206 "), answer[:80]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/workflow/execute/hello_world", {"name": "Ada"}),
        ("/api/workflow/execute/hello_world/2", {"input": {"name": "Ada"}}),
    ],
    ids=["execute", "execute with version"],
)
def test_include_tasks_false_answers_without_tasks_and_a_bad_value_is_400(
    local_server: Any, path: str, body: dict[str, Any]
) -> None:
    with_tasks = call(local_server.url, "POST", path, json_body=body)
    without_tasks = call(local_server.url, "POST", path, json_body=body, query={"includeTasks": "false"})
    refused = call(local_server.url, "POST", path, json_body=body, query={"includeTasks": "banana"})

    assert (with_tasks.status, without_tasks.status) == (200, 200)
    assert [t["referenceTaskName"] for t in with_tasks.body["tasks"]] == ["greet"]
    assert "tasks" not in without_tasks.body
    assert without_tasks.body["status"] == "COMPLETED"
    assert without_tasks.body["output"] == {"greeting": "Hello, Ada!", "version": 2}
    assert without_tasks.body["input"] == {"name": "Ada"}
    assert without_tasks.body["workflowId"] != with_tasks.body["workflowId"]
    error = assert_error(refused, 400)
    assert error["retryable"] is False
    assert error["instance"] == refused.headers["x-request-id"]
    assert [(e["path"], e["invalidValue"]) for e in error["validationErrors"]] == [("query.includeTasks", "banana")]
    assert set(error) == {"status", "message", "instance", "retryable", "validationErrors"}
