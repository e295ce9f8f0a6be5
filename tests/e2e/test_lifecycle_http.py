"""The lifecycle routes over real HTTP against the local server: start without waiting, status,
terminate, retry (redrive), the running and correlated lists, and the routes Step Functions cannot
honour, each with its errors in the API's error body."""

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.http_client import Answer, call

pytestmark = pytest.mark.e2e

ERROR_FIELDS = {"status", "message", "instance", "retryable"}
UNKNOWN_RUN = "hello_world.1.0123456789abcdef0123456789abcdef"


def until(read: Callable[[], Answer], holds: Callable[[Answer], bool], seconds: float = 20) -> Answer:
    """Read until ``holds``; the last answer fails the test if it never does."""
    deadline = time.monotonic() + seconds
    answer = read()
    while not holds(answer) and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = read()
    assert holds(answer), (answer.status, answer.raw[:500])
    return answer


def assert_error(answer: Answer, status: int, *words: str) -> dict[str, Any]:
    assert answer.status == status, answer.raw
    body: dict[str, Any] = answer.body
    assert set(body) >= ERROR_FIELDS and body["status"] == status, body
    assert "arn:" not in answer.raw.decode()
    for word in words:
        assert word in body["message"], body["message"]
    return body


def start(url: str, name: str, body: Any, **query: str) -> str:
    answer = call(url, "POST", f"/api/workflow/{name}", json_body=body, query=query or None)
    assert answer.status == 200, answer.raw
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.raw.decode()


def run_of(url: str, workflow_id: str) -> Answer:
    return call(url, "GET", f"/api/workflow/{workflow_id}")


def test_start_by_name_answers_the_workflow_id_as_text_and_the_run_completes(local_server: Any) -> None:
    correlation = f"order-{uuid.uuid4().hex}"
    workflow_id = start(local_server.url, "hello_world", {"name": "Ada"}, version="1", correlationId=correlation)
    assert workflow_id.startswith("hello_world.1.")
    done = until(lambda: run_of(local_server.url, workflow_id), lambda a: a.body["status"] == "COMPLETED")
    assert done.body["output"] == {"greeting": "Hello, Ada!", "version": 1}
    assert done.body["correlationId"] == correlation


def test_start_with_a_start_workflow_request_and_its_idempotency(local_server: Any) -> None:
    key = uuid.uuid4().hex
    request = {
        "name": "hello_world",
        "version": 0,
        "input": {"name": "Bo"},
        "idempotencyKey": key,
        "idempotencyStrategy": "RETURN_EXISTING",
    }
    first = call(local_server.url, "POST", "/api/workflow", json_body=request)
    assert first.status == 200, first.raw
    assert first.raw.decode().startswith("hello_world.2.")  # 0: the latest
    again = call(local_server.url, "POST", "/api/workflow", json_body=request)
    assert again.status == 200 and again.raw == first.raw
    assert again.headers.get("x-idempotent-replayed") == "true"
    refused = call(local_server.url, "POST", "/api/workflow", json_body={**request, "idempotencyStrategy": "FAIL"})
    body = assert_error(refused, 409)
    assert body["workflowId"] == first.raw.decode()


def test_start_refuses_what_execute_refuses(local_server: Any) -> None:
    assert_error(call(local_server.url, "POST", "/api/workflow", json_body={"input": {}}), 400)
    assert_error(call(local_server.url, "POST", "/api/workflow", json_body={"name": "no_such_flow"}), 404)
    assert_error(call(local_server.url, "POST", "/api/workflow/no_such_flow", json_body={}), 404)
    bad = call(local_server.url, "POST", "/api/workflow/hello_world", json_body={}, query={"priority": "100"})
    assert_error(bad, 400)["validationErrors"]
    assert_error(call(local_server.url, "POST", "/api/workflow/hello_world", raw_body=b"[1]"), 400)


def test_an_sdks_none_or_empty_query_values_are_not_given(local_server: Any) -> None:
    query = {"version": "None", "correlationId": "null", "priority": ""}
    workflow_id = start(local_server.url, "hello_world", {"name": "Cy"}, **query)
    assert workflow_id.startswith("hello_world.2.")
    status = call(local_server.url, "GET", f"/api/workflow/{workflow_id}/status", query={"includeOutput": "None"})
    assert status.status == 200 and "output" not in status.body and status.body["correlationId"] is None


def test_status_is_conductors_workflow_status(local_server: Any) -> None:
    workflow_id = start(local_server.url, "hello_world", {"name": "Di"}, correlationId="c-1")
    read = lambda: call(  # noqa: E731
        local_server.url, "GET", f"/api/workflow/{workflow_id}/status", query={"includeOutput": "true"}
    )
    done = until(read, lambda a: a.body["status"] == "COMPLETED")
    assert done.body == {
        "workflowId": workflow_id,
        "correlationId": "c-1",
        "status": "COMPLETED",
        "output": {"greeting": "Hello, Di!", "version": 2},
    }
    bare = call(local_server.url, "GET", f"/api/workflow/{workflow_id}/status", query={"includeVariables": "true"})
    assert bare.body == {"workflowId": workflow_id, "correlationId": "c-1", "status": "COMPLETED", "variables": {}}
    assert_error(call(local_server.url, "GET", f"/api/workflow/{UNKNOWN_RUN}/status"), 404)
    assert_error(call(local_server.url, "GET", "/api/workflow/not-a-run-id/status"), 404)


def test_terminate_stops_the_run_with_the_reason_and_running_lists_it_until_then(local_server: Any) -> None:
    workflow_id = start(local_server.url, "slow_steps", {"delaySeconds": 60})
    running = call(local_server.url, "GET", "/api/workflow/running/slow_steps")
    assert running.status == 200 and workflow_id in running.body
    stopped = call(local_server.url, "DELETE", f"/api/workflow/{workflow_id}", query={"reason": "changed my mind"})
    assert stopped.status == 200 and stopped.raw == b""
    run = until(lambda: run_of(local_server.url, workflow_id), lambda a: a.body["status"] == "TERMINATED").body
    assert run["reasonForIncompletion"] == "changed my mind"
    assert workflow_id not in call(local_server.url, "GET", "/api/workflow/running/slow_steps").body
    # Terminating a TERMINATED run again is done already, as in Conductor.
    assert call(local_server.url, "DELETE", f"/api/workflow/{workflow_id}").status == 200


def test_terminate_refuses_ended_runs_and_unknown_ones(local_server: Any) -> None:
    answer = call(local_server.url, "POST", "/api/workflow/execute/hello_world", json_body={"name": "Ed"})
    assert answer.body["status"] == "COMPLETED"
    assert_error(call(local_server.url, "DELETE", f"/api/workflow/{answer.body['workflowId']}"), 409, "COMPLETED")
    failed = call(local_server.url, "POST", "/api/workflow/execute/always_fails", json_body={})
    assert failed.body["status"] == "FAILED"
    assert_error(call(local_server.url, "DELETE", f"/api/workflow/{failed.body['workflowId']}"), 409, "FAILED")
    assert_error(call(local_server.url, "DELETE", f"/api/workflow/{UNKNOWN_RUN}"), 404)


def test_retry_redrives_a_failed_run_under_the_same_id(local_server: Any) -> None:
    failed = call(local_server.url, "POST", "/api/workflow/execute/always_fails", json_body={"n": 1}).body
    assert failed["status"] == "FAILED"
    workflow_id = failed["workflowId"]
    retried = call(local_server.url, "POST", f"/api/workflow/{workflow_id}/retry")
    assert retried.status == 200, retried.raw
    # always_fails fails every time: the retried run runs explode again, and fails again.
    again = until(
        lambda: run_of(local_server.url, workflow_id),
        lambda a: a.body["status"] == "FAILED" and len(a.body["tasks"]) == 2,
    ).body
    assert [t["referenceTaskName"] for t in again["tasks"]] == ["explode", "explode"]
    assert again["tasks"][1]["inputData"] == {"n": 1}  # entered afresh with the input it had
    assert again["updateTime"] > failed["updateTime"]


def test_retry_goes_on_from_the_state_a_terminated_run_was_in(local_server: Any) -> None:
    workflow_id = start(local_server.url, "slow_steps", {"delaySeconds": 60})
    until(
        lambda: run_of(local_server.url, workflow_id),
        lambda a: any(t["referenceTaskName"] == "pause" for t in a.body["tasks"]),
    )
    assert call(local_server.url, "DELETE", f"/api/workflow/{workflow_id}").status == 200
    until(lambda: run_of(local_server.url, workflow_id), lambda a: a.body["status"] == "TERMINATED")
    assert call(local_server.url, "POST", f"/api/workflow/{workflow_id}/retry").status == 200
    # RUNNING again at once; the redriven run enters pause afresh a moment later.
    run = until(
        lambda: run_of(local_server.url, workflow_id),
        lambda a: a.body["status"] == "RUNNING" and len(a.body["tasks"]) == 3,
    ).body
    assert "reasonForIncompletion" not in run
    assert [t["referenceTaskName"] for t in run["tasks"]] == ["start_step", "pause", "pause"]
    assert workflow_id in call(local_server.url, "GET", "/api/workflow/running/slow_steps").body
    # A RUNNING run cannot be retried: a 409 naming why.
    assert_error(call(local_server.url, "POST", f"/api/workflow/{workflow_id}/retry"), 409, "RUNNING")
    assert call(local_server.url, "DELETE", f"/api/workflow/{workflow_id}").status == 200


def test_retry_refuses_a_completed_run_and_an_unknown_one(local_server: Any) -> None:
    done = call(local_server.url, "POST", "/api/workflow/execute/hello_world", json_body={}).body
    assert_error(call(local_server.url, "POST", f"/api/workflow/{done['workflowId']}/retry"), 409, "COMPLETED")
    assert_error(call(local_server.url, "POST", f"/api/workflow/{UNKNOWN_RUN}/retry"), 404)


def test_running_takes_conductors_version_and_time_bounds(local_server: Any) -> None:
    workflow_id = start(local_server.url, "slow_steps", {"delaySeconds": 60})
    try:
        listed = lambda **q: call(local_server.url, "GET", "/api/workflow/running/slow_steps", query=q).body  # noqa: E731
        assert workflow_id in listed(version="1")
        assert workflow_id in listed(version="0")  # the latest
        assert workflow_id in listed(startTime="0", endTime=str(int(time.time() * 1000) + 60_000))
        assert workflow_id not in listed(startTime=str(int(time.time() * 1000) + 60_000))
        assert call(local_server.url, "GET", "/api/workflow/running/hello_world", query={"version": "2"}).status == 200
    finally:
        call(local_server.url, "DELETE", f"/api/workflow/{workflow_id}")
    assert_error(call(local_server.url, "GET", "/api/workflow/running/slow_steps", query={"version": "7"}), 404)
    assert_error(call(local_server.url, "GET", "/api/workflow/running/no_such_flow"), 404)
    assert_error(call(local_server.url, "GET", "/api/workflow/running/slow_steps", query={"version": "x"}), 400)


def test_correlated_lists_the_runs_started_with_a_correlation_id(local_server: Any) -> None:
    correlation = f"order-{uuid.uuid4().hex}"
    first = call(
        local_server.url,
        "POST",
        "/api/workflow/execute/hello_world/1",
        json_body={"input": {"name": "Fa"}, "correlationId": correlation},
    ).body
    slow = start(local_server.url, "slow_steps", {"delaySeconds": 60}, correlationId=correlation)
    other = start(local_server.url, "hello_world", {}, correlationId=f"other-{correlation}")
    try:
        path = f"/api/workflow/hello_world/correlated/{correlation}"
        closed = call(local_server.url, "GET", path, query={"includeClosed": "true"})
        assert closed.status == 200
        assert [run["workflowId"] for run in closed.body] == [first["workflowId"]]
        assert closed.body[0]["correlationId"] == correlation and "tasks" not in closed.body[0]
        assert call(local_server.url, "GET", path).body == []  # only RUNNING ones by default
        with_tasks = call(local_server.url, "GET", path, query={"includeClosed": "true", "includeTasks": "true"})
        assert [t["referenceTaskName"] for t in with_tasks.body[0]["tasks"]] == ["greet"]
        slow_path = f"/api/workflow/slow_steps/correlated/{correlation}"
        assert [run["workflowId"] for run in call(local_server.url, "GET", slow_path).body] == [slow]
        many = call(
            local_server.url,
            "POST",
            "/api/workflow/hello_world/correlated",
            json_body=[correlation, f"other-{correlation}", "nobody"],
            query={"includeClosed": "true"},
        )
        assert many.status == 200
        assert {cid: [r["workflowId"] for r in runs] for cid, runs in many.body.items()} == {
            correlation: [first["workflowId"]],
            f"other-{correlation}": [other],
            "nobody": [],
        }
    finally:
        call(local_server.url, "DELETE", f"/api/workflow/{slow}")
    assert_error(call(local_server.url, "GET", f"/api/workflow/no_such_flow/correlated/{correlation}"), 404)
    assert_error(call(local_server.url, "POST", "/api/workflow/hello_world/correlated", json_body={"a": 1}), 400)


@pytest.mark.parametrize(
    ("method", "suffix", "why"),
    [
        ("PUT", "pause", "cannot pause"),
        ("PUT", "resume", "none to resume"),
        ("POST", "restart", "cannot start an ended execution again"),
        ("POST", "rerun", "cannot rerun"),
        ("PUT", "skiptask/greet", "cannot skip"),
        ("POST", "resetcallbacks", "no callback"),
        ("DELETE", "remove", "cannot delete"),
        ("DELETE", "terminate-remove", "cannot delete"),
    ],
)
def test_what_step_functions_cannot_do_is_a_409_naming_why(
    local_server: Any, method: str, suffix: str, why: str
) -> None:
    done = call(local_server.url, "POST", "/api/workflow/execute/hello_world", json_body={}).body
    body = assert_error(call(local_server.url, method, f"/api/workflow/{done['workflowId']}/{suffix}"), 409, why)
    assert "Step Functions" in body["message"] and body["retryable"] is False
    # An unknown run stays a 404: the refusal never reads as "no such run", nor the reverse.
    assert_error(call(local_server.url, method, f"/api/workflow/{UNKNOWN_RUN}/{suffix}"), 404)


def test_decide_is_refused_too(local_server: Any) -> None:
    done = call(local_server.url, "POST", "/api/workflow/execute/hello_world", json_body={}).body
    assert_error(call(local_server.url, "PUT", f"/api/workflow/decide/{done['workflowId']}"), 409, "decides")
