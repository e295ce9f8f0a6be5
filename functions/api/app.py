"""The API Lambda: a thin HTTP adapter over ``workflow_api.service``.

Each route reads and validates its request, calls the service once, and turns the answer into
HTTP; every failure becomes an answer in ``workflow_api.http_errors``. ``openapi_document`` is
the routes' OpenAPI document (local mode serves it at /api/openapi.json).
"""

import json
import time
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow_api import http_errors, openapi
from workflow_api.config import settings
from workflow_api.errors import body_not_json
from workflow_api.models import StartWorkflowRequest
from workflow_api.observability import logger, metrics, record_answer, tracer
from workflow_api.parameters import RunOptions, read_run_options
from workflow_api.service import RunAnswer, StartCommand, WorkflowService
from workflow_api.waiting import gateway_seconds_left
from workflow_api.wiring import build_service

app = APIGatewayRestResolver(enable_validation=True)
INCLUDE_TASKS = (
    "false: the answer has no `tasks`. An execute call then reads nothing of Step Functions once its"
    " run's end has been signalled, so it does not spend the account's history-read quota."
)
http_errors.register(app)


@cache
def workflow_service() -> WorkflowService:
    """Built on the first request of a cold start and kept for the container's life."""
    return build_service(settings())


def _options(**from_path_or_body: Any) -> RunOptions:
    event = app.current_event
    options = read_run_options(
        # The raw maps: powertools' case-insensitive views keep one of "X-Key: a" and "x-key: b".
        event.get("multiValueHeaders") or event.get("headers"),
        event.multi_value_query_string_parameters or event.query_string_parameters,
        extra=from_path_or_body,
    )
    app.append_context(request_id=options.request_id)
    logger.set_correlation_id(options.request_id)
    return options


def _require_json() -> None:
    """Powertools also reads form bodies; this API takes JSON only (a bare ``curl -d`` sends a form).
    Other types never get here: powertools refuses them first (``http_errors`` answers 400)."""
    content_type = (app.current_event.headers.get("content-type") or "application/json").split(";")[0].strip()
    if content_type != "application/json":
        raise body_not_json(content_type)


def _remaining_seconds() -> float:
    """Time left to answer: the Lambda's own, or API Gateway's 29 s from the request's arrival."""
    arrived = (app.current_event.get("requestContext") or {}).get("requestTimeEpoch")
    return min(app.lambda_context.get_remaining_time_in_millis() / 1000, gateway_seconds_left(arrived, time.time()))


def _respond(answer: RunAnswer) -> Response[str]:
    record_answer(answer.http_status, answer.started, answer.waited_seconds, answer.aws_calls)
    headers = {"X-Request-Id": answer.run.request_id}
    if answer.replayed:
        headers["X-Idempotent-Replayed"] = "true"
    return Response(
        status_code=answer.http_status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(answer.run.to_body()),
        headers=headers,
    )


@app.post(
    "/api/workflow/execute/<name>",
    summary="Execute a workflow synchronously (the body is its input)",
    description="Starts the latest version (or `version`) of workflow `name` and answers when the run ends,"
    " a task in `waitUntilTaskRef` completes, or `waitForSeconds` runs out, whichever comes first.",
    operation_id="executeWorkflow",
    tags=["workflow"],
    responses=openapi.EXECUTE_RESPONSES,
)
@tracer.capture_method
def execute_workflow(
    name: str,
    workflow_input: Annotated[dict[str, Any] | None, Body(embed=False)] = None,
    include_tasks: Annotated[bool, Query(alias="includeTasks", description=INCLUDE_TASKS)] = True,
) -> Response[str]:
    """The user's document's form: the body is the workflow input."""
    _require_json()
    options = _options()
    command = StartCommand(
        workflow=name,
        version=options.version,
        input=workflow_input or {},
        options=options,
        include_tasks=include_tasks,
    )
    return _respond(workflow_service().execute(command, _remaining_seconds))


@app.post(
    "/api/workflow/execute/<name>/<version>",
    summary="Execute a workflow synchronously (Conductor's StartWorkflowRequest)",
    description="Conductor's current form: the body is a StartWorkflowRequest whose `input` is the workflow input;"
    " the path's `name` and `version` (0 = latest) win over the body's.",
    operation_id="executeWorkflowVersion",
    tags=["workflow"],
    responses=openapi.EXECUTE_RESPONSES,
)
@tracer.capture_method
def execute_workflow_version(
    name: str,
    version: Annotated[int, Path(ge=0, le=2**31 - 1)],
    request: Annotated[StartWorkflowRequest | None, Body(embed=False)] = None,
    include_tasks: Annotated[bool, Query(alias="includeTasks", description=INCLUDE_TASKS)] = True,
) -> Response[str]:
    """Conductor's current form: a StartWorkflowRequest body; the path's name and version win."""
    _require_json()
    request = request or StartWorkflowRequest()
    options = _options(
        version=version, idempotency_key=request.idempotency_key, on_conflict=request.idempotency_strategy
    )
    command = StartCommand(
        workflow=name,
        version=version,
        input=request.input,
        options=options,
        correlation_id=request.correlation_id,
        priority=request.priority,
        include_tasks=include_tasks,
    )
    return _respond(workflow_service().execute(command, _remaining_seconds))


@app.get(
    "/api/workflow/<workflowId>",
    summary="Get a workflow run",
    description="The run as it stands, so a caller answered 206 can fetch the result later.",
    operation_id="getWorkflow",
    tags=["workflow"],
    responses=openapi.GET_RESPONSES,
)
@tracer.capture_method
def get_workflow(
    workflowId: str,  # noqa: N803 - the route's own parameter name
    include_tasks: Annotated[bool, Query(alias="includeTasks", description=INCLUDE_TASKS)] = True,
) -> Response[str]:
    """A run as it stands, so a caller answered 206 can fetch the result later."""
    options = _options()
    return _respond(workflow_service().get(workflowId, options.request_id, include_tasks))


def openapi_document() -> dict[str, Any]:
    """The routes' OpenAPI document (local mode serves it at /api/openapi.json)."""
    return openapi.openapi_document(app)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
# powertools writes ColdStart with single_metric, which does not read POWERTOOLS_METRICS_DISABLED
# (local mode's setting): asked for only when metrics are on.
@metrics.log_metrics(capture_cold_start_metric=not is_metrics_disabled())
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
