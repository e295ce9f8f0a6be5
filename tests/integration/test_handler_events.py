"""The API handler on the template's stack in moto, fed the API Gateway events in events/.

Every event file is exercised here, so the events a user passes to ``sam local invoke`` or
``make invoke`` cannot rot.
"""

import json
import time
from typing import Any

import boto3
import pytest

from tests.conftest import EVENTS, load_event


def invoke(local_aws: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    response = local_aws.invoke_api(event)
    headers = {k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers.update({k.lower(): v for k, v in (response.get("headers") or {}).items()})
    return response["statusCode"], headers, json.loads(response["body"])


def test_every_event_file_is_covered_here() -> None:
    covered = {
        "execute_hello_world.json",
        "execute_hello_world_v1_query.json",
        "execute_versioned_start_request.json",
        "execute_slow_steps_wait_until_task.json",
        "execute_slow_steps_timeout.json",
        "execute_always_fails.json",
        "execute_unknown_workflow.json",
        "execute_bad_wait.json",
        "get_workflow.json",
        "run_status_change.json",  # RunStatusFunction's: tests/integration/test_run_signals.py
    }
    assert {p.name for p in EVENTS.glob("*.json")} == covered


def test_latest_version_answers_completed(local_aws: Any) -> None:
    status, headers, body = invoke(local_aws, load_event("execute_hello_world.json"))
    assert status == 200
    assert body["status"] == "COMPLETED"
    assert body["output"] == {"greeting": "Hello, Ada!", "version": 2}
    assert body["workflowId"].startswith("hello_world.2.")
    assert body["targetWorkflowId"] == body["workflowId"]
    assert headers["x-request-id"] == body["requestId"]
    assert [t["referenceTaskName"] for t in body["tasks"]] == ["greet"]
    assert body["tasks"][0]["status"] == "COMPLETED"


def test_version_from_query(local_aws: Any) -> None:
    status, _, body = invoke(local_aws, load_event("execute_hello_world_v1_query.json"))
    assert status == 200
    assert body["output"]["version"] == 1


def test_start_workflow_request_body(local_aws: Any) -> None:
    status, _, body = invoke(local_aws, load_event("execute_versioned_start_request.json"))
    assert status == 200
    assert body["output"] == {"greeting": "Hello, Grace!", "version": 2}
    assert body["correlationId"] == "order-42"
    assert body["input"] == {"name": "Grace"}


def test_wait_until_task_returns_early_with_206(local_aws: Any) -> None:
    status, _, body = invoke(local_aws, load_event("execute_slow_steps_wait_until_task.json"))
    assert status == 206
    assert body["status"] == "RUNNING"
    assert body["signalTimeout"] is False
    done = [t["referenceTaskName"] for t in body["tasks"] if t["status"] == "COMPLETED"]
    assert "start_step" in done
    assert "final_step" not in done


def test_time_up_answers_206_with_signal_timeout(local_aws: Any) -> None:
    status, _, body = invoke(local_aws, load_event("execute_slow_steps_timeout.json"))
    assert status == 206
    assert body["status"] == "RUNNING"
    assert body["signalTimeout"] is True
    assert body["output"] == {}


def arrived_seconds_ago(seconds: float, wait: str, delay_seconds: int) -> dict[str, Any]:
    """execute_slow_steps_timeout.json, as if API Gateway had received it ``seconds`` ago. (The
    event files' own arrival times, hours ago, are ignored: the other tests here wait as asked.)"""
    event = load_event("execute_slow_steps_timeout.json")
    event["headers"]["waitForSeconds"], event["multiValueHeaders"]["waitForSeconds"] = wait, [wait]
    event["body"] = json.dumps({"delaySeconds": delay_seconds})
    event["requestContext"]["requestTimeEpoch"] = int((time.time() - seconds) * 1000)
    return event


def slow_steps_runs(local_aws: Any) -> set[str]:
    machine = local_aws.state_machine_arn("slow_steps", 1)
    listed = boto3.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    return {execution["name"] for execution in listed}


def test_the_wait_leaves_time_to_answer_before_api_gateways_29_s(local_aws: Any) -> None:
    """API Gateway gives up 29 s after the request arrived, cold start and start included: a call
    that arrived 18 s ago (11 s left) waits what is left, less the margin for its last read
    (3.5 s), and is answered 206 in time rather than 504 by API Gateway."""
    event = arrived_seconds_ago(18, wait="10", delay_seconds=9)

    began = time.monotonic()
    status, _, body = invoke(local_aws, event)
    took = time.monotonic() - began

    assert (status, body["status"], body["signalTimeout"]) == (206, "RUNNING", True)
    assert 6.5 < took < 9.5, took  # 29 - 18 - 3.5 = 7.5 s of waiting, not the 10 s asked


def test_a_call_with_too_little_time_left_starts_nothing_and_is_503(local_aws: Any) -> None:
    """A call that arrived 24 s ago has 5 s left: less than a start that stalls to its timeouts
    may take (adapters/aws.py, CALL_WORST_SECONDS). It is answered at once with a 503 the caller
    can retry, nothing started, rather than a start whose answer API Gateway drops (504)."""
    before = slow_steps_runs(local_aws)
    event = arrived_seconds_ago(24, wait="10", delay_seconds=5)

    began = time.monotonic()
    status, headers, body = invoke(local_aws, event)

    assert time.monotonic() - began < 2.0
    assert (status, body["status"], body["retryable"]) == (503, 503, True), body
    assert int(headers["retry-after"]) >= 1
    assert slow_steps_runs(local_aws) == before


def test_failed_run_answers_200_with_reason(local_aws: Any) -> None:
    status, _, body = invoke(local_aws, load_event("execute_always_fails.json"))
    assert status == 200
    assert body["status"] == "FAILED"
    assert "WorkflowExploded" in body["reasonForIncompletion"]
    assert body["tasks"][0]["referenceTaskName"] == "explode"
    assert body["tasks"][0]["status"] == "FAILED"


def test_unknown_workflow_is_404(local_aws: Any) -> None:
    status, _, body = invoke(local_aws, load_event("execute_unknown_workflow.json"))
    assert status == 404
    assert body["status"] == 404
    assert "no_such_workflow" in body["message"]
    assert body["retryable"] is False
    assert body["instance"]


def test_bad_wait_is_400_naming_the_parameter(local_aws: Any) -> None:
    status, _, body = invoke(local_aws, load_event("execute_bad_wait.json"))
    assert status == 400
    assert body["validationErrors"][0]["path"] == "waitForSeconds"
    assert body["validationErrors"][0]["invalidValue"] == "soon"


def test_get_workflow_reads_a_finished_run(local_aws: Any) -> None:
    _, _, started = invoke(local_aws, load_event("execute_hello_world.json"))
    event = load_event("get_workflow.json")
    event["pathParameters"]["workflowId"] = started["workflowId"]
    event["path"] = f"/api/workflow/{started['workflowId']}"
    status, _, body = invoke(local_aws, event)
    assert status == 200
    assert body["workflowId"] == started["workflowId"]
    assert body["status"] == "COMPLETED"
    assert body["output"] == started["output"]


def test_get_placeholder_workflow_is_404(local_aws: Any) -> None:
    status, _, body = invoke(local_aws, load_event("get_workflow.json"))
    assert status == 404
    assert body["status"] == 404


@pytest.mark.parametrize(
    ("headers", "query", "expected_path"),
    [
        ({"waitForSeconds": "3"}, {"waitForSeconds": "4"}, "waitForSeconds"),
        ({"X-Idempotency-key": "k"}, None, None),
        ({"waitUntilTaskRef": "nope"}, None, "waitUntilTaskRef"),
    ],
)
def test_parameter_errors_are_400(local_aws: Any, headers: dict[str, str], query: Any, expected_path: Any) -> None:
    event = load_event("execute_hello_world.json")
    event["headers"] = {**event["headers"], **headers}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in (query or {}).items()} or None
    status, _, body = invoke(local_aws, event)
    assert status == 400
    assert body["status"] == 400
    if expected_path:
        assert body["validationErrors"][0]["path"] == expected_path
