"""The API's OpenAPI document, made true where powertools cannot know it.

Failures answer Conductor's ErrorBody with 400 (not powertools' 422), and the call's parameters
may come as a header or as a query parameter (``parameters`` reads both), so they are documented
here rather than declared in the routes' signatures, where powertools would read only one place,
case-sensitively. Local mode serves the document at /api/openapi.json.
"""

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, content_types
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader

from .models import ErrorBody, WorkflowRun
from .parameters import DEFAULT_WAIT_SECONDS, MAX_TASK_REFS


def _json_answer(model: type, description: str, *headers: str) -> OpenAPIResponse:
    return {
        "description": description,
        "headers": {name: _ANSWER_HEADERS[name] for name in ("X-Request-Id", *headers)},
        "content": {content_types.APPLICATION_JSON: {"model": model}},
    }


_ANSWER_HEADERS: dict[str, OpenAPIResponseHeader] = {
    "X-Request-Id": {"description": "The call's requestId", "schema": {"type": "string"}},
    "X-Idempotent-Replayed": {
        "description": "`true` when the answer is the run an earlier call with this X-Idempotency-key started",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {"description": "Seconds to wait before calling again", "schema": {"type": "string"}},
}
_ERRORS: dict[int, OpenAPIResponse] = {
    400: _json_answer(
        ErrorBody,
        "Bad request: the body is not a JSON object, a parameter has a bad value or type, a key comes without"
        " a strategy, a task reference is unknown, or a header and the query disagree",
    ),
    404: _json_answer(ErrorBody, "No such workflow name or version, or no such run"),
    503: _json_answer(ErrorBody, "AWS throttled or failed for longer than the retries", "Retry-After"),
}
EXECUTE_RESPONSES: dict[int, OpenAPIResponse] = {
    200: _json_answer(
        WorkflowRun, "The run has ended: COMPLETED, FAILED, TIMED_OUT or TERMINATED", "X-Idempotent-Replayed"
    ),
    206: _json_answer(
        WorkflowRun,
        "The run is still RUNNING: a waitUntilTaskRef task completed or waitForSeconds ran out",
        "X-Idempotent-Replayed",
    ),
    **_ERRORS,
    409: _json_answer(ErrorBody, "Idempotency conflict (X-on-conflict FAIL or FAIL_ON_RUNNING): names the run"),
    413: _json_answer(ErrorBody, "The workflow input is over 256 KiB (the Step Functions limit)"),
}
GET_RESPONSES: dict[int, OpenAPIResponse] = {
    200: _json_answer(WorkflowRun, "The run as it stands, RUNNING or ended"),
    **_ERRORS,
}

# The lifecycle routes (workflow_api/lifecycle.py).
_CONFLICT = _json_answer(
    ErrorBody, "The run's state does not allow it (Conductor's ConflictException): the message says why"
)
_NO_BODY: OpenAPIResponse = {
    "description": "Done; no body, as Conductor",
    "headers": {"X-Request-Id": _ANSWER_HEADERS["X-Request-Id"]},
    "content": {content_types.TEXT_PLAIN: {"schema": {"type": "string", "maxLength": 0}}},
}
START_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {
        "description": "The run's workflowId, as text (Conductor's answer to a start)",
        "headers": {name: _ANSWER_HEADERS[name] for name in ("X-Request-Id", "X-Idempotent-Replayed")},
        "content": {content_types.TEXT_PLAIN: {"schema": {"type": "string", "example": "hello_world.2.4f1c"}}},
    },
    **_ERRORS,
    409: EXECUTE_RESPONSES[409],
    413: EXECUTE_RESPONSES[413],
}
STATUS_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {
        "description": "Conductor's WorkflowStatus",
        "headers": {"X-Request-Id": _ANSWER_HEADERS["X-Request-Id"]},
        "content": {
            content_types.APPLICATION_JSON: {
                "schema": {
                    "type": "object",
                    "required": ["workflowId", "status"],
                    "properties": {
                        "workflowId": {"type": "string"},
                        "correlationId": {"type": "string", "nullable": True},
                        "status": {
                            "type": "string",
                            "enum": ["RUNNING", "COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"],
                        },
                        "output": {"type": "object"},
                        "variables": {"type": "object"},
                    },
                }
            }
        },
    },
    **_ERRORS,
}
LIST_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {
        "description": "The RUNNING runs' workflowIds, newest first",
        "headers": {"X-Request-Id": _ANSWER_HEADERS["X-Request-Id"]},
        "content": {content_types.APPLICATION_JSON: {"schema": {"type": "array", "items": {"type": "string"}}}},
    },
    **_ERRORS,
}
CORRELATED_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {
        "description": "The runs (Conductor's Workflow: the same fields as a GET of one run)",
        "headers": {"X-Request-Id": _ANSWER_HEADERS["X-Request-Id"]},
        "content": {content_types.APPLICATION_JSON: {"model": list[WorkflowRun]}},
    },
    **_ERRORS,
}
CORRELATED_MANY_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {
        "description": "Each correlationId's runs",
        "headers": {"X-Request-Id": _ANSWER_HEADERS["X-Request-Id"]},
        "content": {content_types.APPLICATION_JSON: {"model": dict[str, list[WorkflowRun]]}},
    },
    **_ERRORS,
}
CHANGE_RESPONSES: dict[int, OpenAPIResponse] = {200: _NO_BODY, **_ERRORS, 409: _CONFLICT}
NOT_SUPPORTED_RESPONSES: dict[int, OpenAPIResponse] = {
    **_ERRORS,
    409: _json_answer(ErrorBody, "Step Functions cannot do this to a run: the message says why and what to do instead"),
}


_PRINTABLE = "^[\\x20-\\x7e]+$"
_CALL_PARAMETERS: dict[str, tuple[dict[str, Any], str]] = {
    "version": (
        {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        "Workflow version; absent or 0 means the latest. With .../{version} it must equal the path's.",
    ),
    "requestId": (
        {"type": "string", "minLength": 1, "maxLength": 128, "pattern": _PRINTABLE},
        "Caller's id, echoed in the body and in X-Request-Id; a UUID when absent.",
    ),
    "waitUntilTaskRef": (
        {"type": "string", "minLength": 1},
        f"Task reference names, comma-separated (at most {MAX_TASK_REFS}): answer once any has completed."
        " `None` or `null` is absent unless the workflow has a state of that name.",
    ),
    "waitForSeconds": (
        {"type": "integer", "minimum": 0, "default": DEFAULT_WAIT_SECONDS},
        "Seconds to wait at most; 0 starts the run and answers at once. Clamped to MaxWaitSeconds.",
    ),
    "X-Idempotency-key": (
        {"type": "string", "minLength": 1, "maxLength": 256, "pattern": _PRINTABLE},
        "Idempotency key, scoped per workflow name; needs X-on-conflict.",
    ),
    "X-on-conflict": (
        {"type": "string", "enum": ["RETURN_EXISTING", "FAIL", "FAIL_ON_RUNNING"]},
        "What a second call with the same X-Idempotency-key does.",
    ),
    "consistency": (
        {"type": "string", "enum": ["SYNCHRONOUS", "DURABLE", "REGION_DURABLE"]},
        "Accepted for Conductor clients; runs are always durable.",
    ),
    "returnStrategy": ({"type": "string", "enum": ["TARGET_WORKFLOW"]}, "Only TARGET_WORKFLOW is supported."),
}
_PATH_EXAMPLES = {"name": "hello_world", "version": 1}
# The routes that take an idempotency key, and their 422 (docs/IDEMPOTENCY.md). Added to the
# document rather than to the routes' ``responses``: powertools writes its own 422 over any declared.
_KEYED_OPERATIONS = ("executeWorkflow", "executeWorkflowVersion", "startWorkflow", "startWorkflowByName")
_KEY_REUSED = (
    "The idempotency key was made for another request (a different input, or another version named):"
    " names the key and the run; nothing was started"
)
_PARAMETERS_OF = {
    "executeWorkflow": list(_CALL_PARAMETERS),
    "executeWorkflowVersion": list(_CALL_PARAMETERS),
    "getWorkflow": ["requestId"],
    "generateToken": [],
    # The lifecycle routes (workflow_api/lifecycle.py); their own query parameters are in their signatures.
    "startWorkflow": ["requestId"],
    "startWorkflowByName": ["version", "requestId"],
    "getRunningWorkflow": ["requestId"],
    "getWorkflowStatusSummary": ["requestId"],
    "terminate": ["requestId"],
    "retry": ["requestId"],
    "getWorkflowsByCorrelationId": ["requestId"],
    "getWorkflowsByCorrelationIds": ["requestId"],
}


def openapi_document(app: APIGatewayRestResolver) -> dict[str, Any]:
    """The routes' OpenAPI document, made true where powertools cannot know: failures answer
    Conductor's ErrorBody with 400 (not powertools' 422; a 422 is only an idempotency key reused
    for another request), and the call's parameters may come as a header or as a query parameter."""
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title="Execute workflow synchronously",
            version="1.0.0",
            description="Conductor's execute-workflow-synchronously API on API Gateway, Lambda and Step Functions."
            " Deployed, API Gateway also answers 401/403 (AuthType AWS_IAM: SigV4; COGNITO: a JWT in"
            " Authorization) and 413 above 10 MiB. Every parameter is accepted as a header (any case)"
            " or as a query parameter; if both are given and differ: 400. An optional parameter whose"
            " value is empty, `None` or `null` is absent (Conductor's SDKs send those).",
        )
    )
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            responses.pop("422", None)  # powertools' own: this API never answers it
            if operation["operationId"] in _KEYED_OPERATIONS:
                responses["422"] = {**responses["409"], "description": _KEY_REUSED}  # an ErrorBody too
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in _PATH_EXAMPLES:
                    parameter["example"] = _PATH_EXAMPLES[parameter["name"]]
            for name in _PARAMETERS_OF.get(operation["operationId"], []):  # none on the refused routes
                schema, description = _CALL_PARAMETERS[name]
                operation.setdefault("parameters", []).extend(
                    {"name": name, "in": where, "required": False, "schema": schema, "description": description}
                    for where in ("header", "query")
                )
    # Powertools' own 422 bodies: this API never answers them.
    schemas = document["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    return document
