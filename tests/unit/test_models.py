"""Conductor's wire shapes: WorkflowRun.to_body per SPEC "Response body", StartWorkflowRequest, ErrorBody."""

import json

import pytest
from pydantic import ValidationError
from sfn_history import T0_MS, always_fails, hello_world

from workflow_api.errors import FieldError
from workflow_api.history import RunSnapshot, fold
from workflow_api.models import ErrorBody, StartWorkflowRequest, WorkflowRun

# The keys of SPEC's example body, reasonForIncompletion aside (absent unless there is one).
RUN_KEYS = {
    "workflowId",
    "requestId",
    "correlationId",
    "status",
    "input",
    "output",
    "createTime",
    "updateTime",
    "variables",
    "priority",
    "responseType",
    "targetWorkflowId",
    "targetWorkflowStatus",
    "signalTimeout",
    "tasks",
}
TASK_KEYS = {"referenceTaskName", "taskType", "status", "inputData", "outputData", "startTime", "endTime"}


def _body(run: RunSnapshot, **kwargs) -> dict:
    fields = {
        "workflow_id": "hello_world.2.abc",
        "request_id": "req-1",
        "correlation_id": None,
        "priority": 0,
        "include_tasks": True,
    }
    return WorkflowRun.from_snapshot(run, **{**fields, **kwargs}).to_body()


def test_completed_run_body_has_exactly_the_spec_keys():
    body = _body(fold(hello_world("Ada", 2).events))

    assert set(body) == RUN_KEYS
    assert [set(task) for task in body["tasks"]] == [TASK_KEYS]


def test_completed_run_body_values():
    history = hello_world("Ada", 2)

    body = _body(fold(history.events))

    assert body["workflowId"] == body["targetWorkflowId"] == "hello_world.2.abc"
    assert body["requestId"] == "req-1"
    assert body["correlationId"] is None
    assert body["status"] == body["targetWorkflowStatus"] == "COMPLETED"
    assert body["input"] == {"name": "Ada"}
    assert body["output"] == {"greeting": "Hello, Ada!", "version": 2}
    assert body["createTime"] == T0_MS
    assert body["updateTime"] == T0_MS + history.now_ms
    assert body["variables"] == {}
    assert body["priority"] == 0
    assert body["responseType"] == "TARGET_WORKFLOW"
    assert body["signalTimeout"] is False
    task = body["tasks"][0]
    assert task["referenceTaskName"] == "greet"
    assert task["taskType"] == "Task"
    assert task["status"] == "COMPLETED"
    assert task["inputData"] == {"name": "Ada"}
    assert task["outputData"] == {"greeting": "Hello, Ada!", "version": 2}
    assert task["startTime"] <= task["endTime"]


def test_body_is_plain_json():
    body = _body(fold(hello_world().events))

    assert json.loads(json.dumps(body)) == body
    assert isinstance(body["createTime"], int)
    assert isinstance(body["updateTime"], int)


def test_reason_for_incompletion_is_present_when_failed():
    body = _body(fold(always_fails().events))

    assert body["status"] == "FAILED"
    assert body["reasonForIncompletion"] == "RuntimeError: boom: the explode task always fails"
    assert body["tasks"][0]["status"] == "FAILED"
    assert body["tasks"][0]["reasonForIncompletion"] == "RuntimeError: boom: the explode task always fails"


def test_reason_for_incompletion_is_absent_not_null_when_there_is_none():
    body = _body(fold(hello_world().events))

    assert "reasonForIncompletion" not in body
    assert all("reasonForIncompletion" not in task for task in body["tasks"])


def test_running_run_before_any_event_has_empty_input_and_output_objects():
    body = _body(fold([]), include_tasks=True)

    assert body["status"] == "RUNNING"
    assert body["input"] == {}
    assert body["output"] == {}
    assert body["tasks"] == []


def test_signal_timeout_correlation_id_and_priority_are_carried():
    body = _body(RunSnapshot(output={}), correlation_id="order-7", priority=5, signal_timeout=True)

    assert body["signalTimeout"] is True
    assert body["correlationId"] == "order-7"
    assert body["priority"] == 5


def test_without_tasks_no_task_is_listed():
    body = _body(fold(hello_world().events), include_tasks=False)

    assert not body.get("tasks")
    assert body["output"] == {"greeting": "Hello, Ada!", "version": 2}


# StartWorkflowRequest ------------------------------------------------------------------------


def test_start_workflow_request_reads_conductor_sdk_camel_case():
    request = StartWorkflowRequest.model_validate(
        {
            "name": "hello_world",
            "version": 2,
            "input": {"name": "Ada"},
            "correlationId": "c-1",
            "idempotencyKey": "k-1",
            "idempotencyStrategy": "RETURN_EXISTING",
            "priority": 3,
            "taskToDomain": {},  # other Conductor fields are ignored
            "workflowDef": None,
        }
    )

    assert request.input == {"name": "Ada"}
    assert request.correlation_id == "c-1"
    assert request.idempotency_key == "k-1"
    assert request.idempotency_strategy == "RETURN_EXISTING"
    assert request.priority == 3


def test_start_workflow_request_defaults():
    request = StartWorkflowRequest.model_validate({})

    assert (request.input, request.priority, request.correlation_id) == ({}, 0, None)


@pytest.mark.parametrize(
    "body",
    [
        {"priority": 100},
        {"priority": -1},
        {"idempotencyStrategy": "SOMETIMES"},
        {"input": ["not", "an", "object"]},
        {"correlationId": "c" * 257},
    ],
)
def test_start_workflow_request_refuses_bad_fields(body):
    with pytest.raises(ValidationError):
        StartWorkflowRequest.model_validate(body)


# ErrorBody ----------------------------------------------------------------------------------


def test_error_body_is_conductors_error_response():
    body = ErrorBody(
        status=400,
        message="invalid request parameters",
        instance="req-1",
        retryable=False,
        validation_errors=ErrorBody.validation([FieldError("waitForSeconds", "must be >= 0", "-1")]),
    ).to_body()

    assert body == {
        "status": 400,
        "message": "invalid request parameters",
        "instance": "req-1",
        "retryable": False,
        "validationErrors": [{"path": "waitForSeconds", "message": "must be >= 0", "invalidValue": "-1"}],
    }


def test_error_body_without_validation_errors_has_no_null_members():
    body = ErrorBody(status=404, message="No such workflow", instance="req-2", retryable=False).to_body()

    assert body == {"status": 404, "message": "No such workflow", "instance": "req-2", "retryable": False}
