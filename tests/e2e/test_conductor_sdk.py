"""Conductor's official Python SDK (conductor-python 2.0.0), unmodified, against the local server
over HTTP: its default calls work as they do against a Conductor server.

The SDK sends what a user never sees: ``requestId``, ``waitUntilTaskRef=None`` (it urlencodes
``None``), ``waitForSeconds=30``, and a ``StartWorkflowRequest`` body with ``idempotencyStrategy``
"FAIL" even without a key. Each test goes through the SDK's public client (tests/e2e/sdk.py).
"""

import uuid
from typing import Any

import pytest
from conductor.client.http.models.start_workflow_request import IdempotencyStrategy

from tests.e2e.sdk import ApiException, StartWorkflowRequest, WorkflowClient

pytestmark = pytest.mark.e2e


def _request(name: str = "hello_world", version: int = 0, **fields: Any) -> StartWorkflowRequest:
    fields.setdefault("input", {"name": "Ada"})
    return StartWorkflowRequest(name=name, version=version, **fields)


def _task(run: Any, reference: str) -> Any:
    return next(task for task in run.tasks or [] if task.reference_task_name == reference)


# execute_workflow, the SDK's main call ------------------------------------------------------------


def test_execute_version_0_runs_the_latest(sdk_workflow_client: WorkflowClient) -> None:
    run = sdk_workflow_client.execute_workflow(_request(version=0))

    assert run.status == "COMPLETED"
    assert run.output == {"greeting": "Hello, Ada!", "version": 2}
    assert run.workflow_id.startswith("hello_world.2.")
    assert uuid.UUID(run.request_id)  # the SDK's own generated requestId, echoed
    assert _task(run, "greet").status == "COMPLETED"


def test_execute_a_pinned_version(sdk_workflow_client: WorkflowClient) -> None:
    run = sdk_workflow_client.execute_workflow(_request(version=1, input={"name": "Grace"}))

    assert run.status == "COMPLETED"
    assert run.output == {"greeting": "Hello, Grace!", "version": 1}
    assert run.workflow_id.startswith("hello_world.1.")


def test_the_sdk_needs_a_version_so_latest_is_version_0(sdk_workflow_client: WorkflowClient) -> None:
    """conductor-python refuses, before sending anything, an execute without a version."""
    with pytest.raises(ValueError, match="version"):
        sdk_workflow_client.execute_workflow(StartWorkflowRequest(name="hello_world", input={}))


def test_execute_with_return_strategy_sends_none_as_the_request_id(sdk_workflow_client: WorkflowClient) -> None:
    """The SDK sends requestId=None, consistency=DURABLE, returnStrategy=TARGET_WORKFLOW."""
    answer = sdk_workflow_client.execute_workflow_with_return_strategy(_request(version=2))

    assert answer.status.value == "COMPLETED"  # the SDK's SignalResponse holds an enum
    assert answer.output == {"greeting": "Hello, Ada!", "version": 2}
    assert answer.target_workflow_id == answer.workflow_id
    assert answer.request_id != "None"
    assert uuid.UUID(answer.request_id)  # absent, so one was generated


def test_execute_echoes_the_callers_request_id_and_correlation_id(sdk_workflow_client: WorkflowClient) -> None:
    run = sdk_workflow_client.execute_workflow(_request(correlation_id="order-7"), request_id="sdk-req-1")

    assert run.request_id == "sdk-req-1"
    assert run.correlation_id == "order-7"


def test_execute_until_a_task_reference_answers_while_the_run_goes_on(sdk_workflow_client: WorkflowClient) -> None:
    run = sdk_workflow_client.execute_workflow(
        _request("slow_steps", 1, input={"delaySeconds": 30}), wait_until_task_ref="start_step", wait_for_seconds=20
    )

    assert run.status == "RUNNING"  # a 206: the SDK reads it as a run in progress
    assert _task(run, "start_step").status == "COMPLETED"
    assert {task.reference_task_name for task in run.tasks} == {"start_step", "pause"}


def test_execute_a_failing_workflow(sdk_workflow_client: WorkflowClient) -> None:
    run = sdk_workflow_client.execute_workflow(_request("always_fails", 1, input={}))

    assert run.status == "FAILED"
    assert _task(run, "explode").status == "FAILED"
    # conductor-python's WorkflowRun does not read reasonForIncompletion; its Workflow does.
    assert "explode" in sdk_workflow_client.get_workflow(run.workflow_id).reason_for_incompletion


def test_an_unknown_workflow_is_the_sdks_api_exception_404(sdk_workflow_client: WorkflowClient) -> None:
    with pytest.raises(ApiException) as caught:
        sdk_workflow_client.execute_workflow(_request("no_such_workflow", 1))

    assert caught.value.status == 404
    assert caught.value.message == "No such workflow defined. name=no_such_workflow"


def test_an_unknown_version_is_a_404(sdk_workflow_client: WorkflowClient) -> None:
    with pytest.raises(ApiException) as caught:
        sdk_workflow_client.execute_workflow(_request(version=9))

    assert caught.value.status == 404
    assert "version=9" in caught.value.message


def test_an_unknown_task_reference_is_a_400_naming_the_valid_ones(sdk_workflow_client: WorkflowClient) -> None:
    with pytest.raises(ApiException) as caught:
        sdk_workflow_client.execute_workflow(_request(), wait_until_task_ref="no_such_task")

    assert caught.value.status == 400
    assert "greet" in caught.value.body


# Idempotency: the StartWorkflowRequest's idempotencyKey and idempotencyStrategy -----------------


def test_return_existing_replays_the_same_run(sdk_workflow_client: WorkflowClient) -> None:
    key = f"sdk-{uuid.uuid4()}"

    def request() -> StartWorkflowRequest:
        return _request(idempotency_key=key, idempotency_strategy=IdempotencyStrategy.RETURN_EXISTING)

    first = sdk_workflow_client.execute_workflow(request())
    second = sdk_workflow_client.execute_workflow(request())

    assert first.status == second.status == "COMPLETED"
    assert second.workflow_id == first.workflow_id
    assert second.output == first.output


def test_fail_refuses_a_second_run_with_the_same_key(sdk_workflow_client: WorkflowClient) -> None:
    key = f"sdk-{uuid.uuid4()}"
    first = sdk_workflow_client.execute_workflow(_request(idempotency_key=key))  # the SDK's default: FAIL

    with pytest.raises(ApiException) as caught:
        sdk_workflow_client.execute_workflow(_request(idempotency_key=key))

    assert caught.value.status == 409
    assert first.workflow_id in caught.value.body


# get_workflow --------------------------------------------------------------------------------


def test_get_workflow_with_its_tasks(sdk_workflow_client: WorkflowClient) -> None:
    run = sdk_workflow_client.execute_workflow(_request(input={"name": "Lin"}))

    workflow = sdk_workflow_client.get_workflow(run.workflow_id)

    assert workflow.workflow_id == run.workflow_id
    assert workflow.status == "COMPLETED"
    assert workflow.output == {"greeting": "Hello, Lin!", "version": 2}
    assert workflow.input == {"name": "Lin"}
    assert [task.reference_task_name for task in workflow.tasks] == ["greet"]


def test_get_workflow_without_its_tasks(sdk_workflow_client: WorkflowClient) -> None:
    """get_workflow(include_tasks=False) sends no includeTasks at all (the server's default, true,
    then holds, as on Conductor); the SDK's resource call sends includeTasks=false."""
    run = sdk_workflow_client.execute_workflow(_request())

    as_the_client_sends_it = sdk_workflow_client.get_workflow(run.workflow_id, include_tasks=False)
    resource = sdk_workflow_client.workflowResourceApi  # type: ignore[attr-defined]
    without_tasks = resource.get_execution_status(run.workflow_id, include_tasks=False)

    assert as_the_client_sends_it.status == without_tasks.status == "COMPLETED"
    assert [task.reference_task_name for task in as_the_client_sends_it.tasks] == ["greet"]
    assert not without_tasks.tasks
    assert without_tasks.output == run.output


def test_get_an_unknown_run_is_a_404(sdk_workflow_client: WorkflowClient) -> None:
    with pytest.raises(ApiException) as caught:
        sdk_workflow_client.get_workflow("hello_world.2.no_such_run")

    assert caught.value.status == 404
