"""Conductor's Python SDK (conductor-python, unmodified) through a run's whole life against the local
server over HTTP: start then status, terminate, retry of a failed run, the running and correlated
lists, and what Step Functions cannot do (pause) answering its clear 409."""

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from conductor.client.http.api.workflow_resource_api import WorkflowResourceApi
from conductor.client.http.api_client import ApiClient

from tests.e2e.sdk import ApiException, StartWorkflowRequest, WorkflowClient, sdk_configuration

pytestmark = pytest.mark.e2e


def until[T](read: Callable[[], T], holds: Callable[[T], bool], seconds: float = 20) -> T:
    deadline = time.monotonic() + seconds
    value = read()
    while not holds(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    assert holds(value), value
    return value


@pytest.fixture(scope="module")
def resource_api(local_server: Any) -> WorkflowResourceApi:
    """The SDK's generated WorkflowResource client, for the calls WorkflowClient does not wrap."""
    return WorkflowResourceApi(ApiClient(configuration=sdk_configuration(local_server.api)))


def test_start_then_status(sdk_workflow_client: WorkflowClient) -> None:
    correlation = f"sdk-{uuid.uuid4().hex}"
    request = StartWorkflowRequest(name="hello_world", version=1, input={"name": "Ada"}, correlation_id=correlation)
    workflow_id = sdk_workflow_client.start_workflow(request)
    assert workflow_id.startswith("hello_world.1.")
    status = until(
        lambda: sdk_workflow_client.get_workflow_status(workflow_id, include_output=True),
        lambda s: s.status == "COMPLETED",
    )
    assert status.workflow_id == workflow_id and status.correlation_id == correlation
    assert status.output == {"greeting": "Hello, Ada!", "version": 1}


def test_start_by_name_and_get(sdk_workflow_client: WorkflowClient) -> None:
    workflow_id = sdk_workflow_client.start_workflow_by_name("hello_world", {"name": "Bo"}, version=2, priority=3)
    run = until(lambda: sdk_workflow_client.get_workflow(workflow_id), lambda w: w.status == "COMPLETED")
    assert run.output == {"greeting": "Hello, Bo!", "version": 2} and run.priority == 3


def test_start_with_an_idempotency_key_starts_once(sdk_workflow_client: WorkflowClient) -> None:
    key = uuid.uuid4().hex
    request = StartWorkflowRequest(
        name="hello_world", input={"name": "Cy"}, idempotency_key=key, idempotency_strategy="RETURN_EXISTING"
    )
    first = sdk_workflow_client.start_workflow(request)
    assert sdk_workflow_client.start_workflow(request) == first
    request.idempotency_strategy = "FAIL"
    with pytest.raises(ApiException) as refused:
        sdk_workflow_client.start_workflow(request)
    assert refused.value.status == 409


def test_terminate_then_the_run_reads_terminated_with_the_reason(sdk_workflow_client: WorkflowClient) -> None:
    workflow_id = sdk_workflow_client.start_workflow_by_name("slow_steps", {"delaySeconds": 60})
    sdk_workflow_client.terminate_workflow(workflow_id, reason="no longer needed")
    run = until(lambda: sdk_workflow_client.get_workflow(workflow_id), lambda w: w.status == "TERMINATED")
    assert run.reason_for_incompletion == "no longer needed"


def test_retry_of_a_failed_run_runs_it_again(sdk_workflow_client: WorkflowClient) -> None:
    failed = sdk_workflow_client.execute_workflow(StartWorkflowRequest(name="always_fails", version=1, input={}), None)
    assert failed.status == "FAILED"
    sdk_workflow_client.retry_workflow(failed.workflow_id)
    # always_fails fails every time: the redriven run enters explode again and fails again.
    again = until(
        lambda: sdk_workflow_client.get_workflow(failed.workflow_id),
        lambda w: w.status == "FAILED" and len(w.tasks) == 2,
    )
    assert [t.reference_task_name for t in again.tasks] == ["explode", "explode"]
    with pytest.raises(ApiException) as done:
        ok = sdk_workflow_client.execute_workflow(StartWorkflowRequest(name="hello_world", version=1, input={}), None)
        sdk_workflow_client.retry_workflow(ok.workflow_id)
    assert done.value.status == 409


def test_running_and_correlated_lists(sdk_workflow_client: WorkflowClient, resource_api: WorkflowResourceApi) -> None:
    correlation = f"sdk-{uuid.uuid4().hex}"
    workflow_id = sdk_workflow_client.start_workflow_by_name(
        "slow_steps", {"delaySeconds": 60}, version=1, correlationId=correlation
    )
    try:
        assert workflow_id in resource_api.get_running_workflow("slow_steps", version=1)
        (found,) = resource_api.get_workflows2("slow_steps", correlation)
        assert found.workflow_id == workflow_id and found.status == "RUNNING"
        by_id = sdk_workflow_client.get_by_correlation_ids("slow_steps", [correlation, "nobody"])
        assert [w.workflow_id for w in by_id[correlation]] == [workflow_id] and by_id["nobody"] == []
    finally:
        sdk_workflow_client.terminate_workflow(workflow_id)
    until(lambda: resource_api.get_running_workflow("slow_steps", version=1), lambda ids: workflow_id not in ids)


def test_pause_is_a_clear_409_and_an_unknown_run_a_404(sdk_workflow_client: WorkflowClient) -> None:
    run = sdk_workflow_client.execute_workflow(StartWorkflowRequest(name="hello_world", version=1, input={}), None)
    with pytest.raises(ApiException) as refused:
        sdk_workflow_client.pause_workflow(run.workflow_id)
    assert refused.value.status == 409 and "cannot pause" in refused.value.body
    with pytest.raises(ApiException) as unknown:
        sdk_workflow_client.get_workflow_status("hello_world.1.0123456789abcdef0123456789abcdef")
    assert unknown.value.status == 404
