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
from workflow_api.errors import FieldError, InvalidRequest, body_not_json
from workflow_api.lifecycle import (
    NOT_SUPPORTED,
    FlagFalseByDefault,
    OptionalCorrelationId,
    OptionalMillis,
    OptionalPriority,
    OptionalReason,
    OptionalVersion,
    WorkflowLifecycle,
)
from workflow_api.models import StartWorkflowRequest
from workflow_api.observability import logger, metrics, record_answer, tracer
from workflow_api.parameters import FlagTrueByDefault, RunOptions, read_run_options
from workflow_api.service import RunAnswer, StartCommand, WorkflowService
from workflow_api.waiting import gateway_seconds_left
from workflow_api.wiring import build_lifecycle, build_service

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
    include_tasks: Annotated[FlagTrueByDefault, Query(alias="includeTasks", description=INCLUDE_TASKS)] = True,
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
    include_tasks: Annotated[FlagTrueByDefault, Query(alias="includeTasks", description=INCLUDE_TASKS)] = True,
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
    include_tasks: Annotated[FlagTrueByDefault, Query(alias="includeTasks", description=INCLUDE_TASKS)] = True,
) -> Response[str]:
    """A run as it stands, so a caller answered 206 can fetch the result later."""
    options = _options()
    return _respond(workflow_service().get(workflowId, options.request_id, include_tasks))


# --- the rest of Conductor's WorkflowResource (workflow_api/lifecycle.py) ---------------------------


# API Gateway allows one variable name at a level of the path: Conductor's /api/workflow/{name} routes
# (start by name, correlated) share /api/workflow/{workflowId}'s name; the value is the workflow's name.
_NAME_AT_WORKFLOW_ID = "The workflow's name (named workflowId only because API Gateway allows one name here)"


@cache
def workflow_lifecycle() -> WorkflowLifecycle:
    return build_lifecycle(settings(), workflow_service())


def _text(body: str, request_id: str, replayed: bool = False) -> Response[str]:
    """Conductor answers a start with the workflowId as text/plain, an operation with no body."""
    headers = {"X-Request-Id": request_id}
    if replayed:
        headers["X-Idempotent-Replayed"] = "true"
    return Response(status_code=200, content_type=content_types.TEXT_PLAIN, body=body, headers=headers)


def _json(body: Any, request_id: str) -> Response[str]:
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers={"X-Request-Id": request_id},
    )


@app.post(
    "/api/workflow",
    summary="Start a workflow run without waiting (Conductor's StartWorkflowRequest)",
    description="Starts the run and answers its workflowId as text/plain, as Conductor does; `idempotencyKey` and"
    " `idempotencyStrategy` as on execute.",
    operation_id="startWorkflow",
    tags=["workflow"],
    responses=openapi.START_RESPONSES,
)
@tracer.capture_method
def start_workflow(request: Annotated[StartWorkflowRequest | None, Body(embed=False)] = None) -> Response[str]:
    _require_json()
    request = request or StartWorkflowRequest()
    if not request.name:
        raise InvalidRequest("The workflow name is missing", [FieldError("name", "required")])
    options = _options(
        version=request.version, idempotency_key=request.idempotency_key, on_conflict=request.idempotency_strategy
    )
    command = StartCommand(
        workflow=request.name,
        version=options.version,
        input=request.input,
        options=options,
        correlation_id=request.correlation_id,
        priority=request.priority,
    )
    started = workflow_lifecycle().start(command, _remaining_seconds)
    return _text(started.workflow_id, options.request_id, started.replayed)


@app.get(
    "/api/workflow/running/<name>",
    summary="List the RUNNING runs of a workflow version",
    description="Their workflowIds, newest first (at most 1,000). `version` defaults to 1 as in Conductor; 0 is"
    " the latest. `startTime`/`endTime` (epoch ms) bound when they started.",
    operation_id="getRunningWorkflow",
    tags=["workflow"],
    responses=openapi.LIST_RESPONSES,
)
@tracer.capture_method
def get_running_workflow(
    name: str,
    version: Annotated[OptionalVersion, Query()] = None,
    start_time: Annotated[OptionalMillis, Query(alias="startTime")] = None,
    end_time: Annotated[OptionalMillis, Query(alias="endTime")] = None,
) -> Response[str]:
    request_id = _options().request_id
    ids = workflow_lifecycle().running(name, 1 if version is None else version, start_time, end_time)
    return _json(ids, request_id)


@app.put(
    "/api/workflow/decide/<workflowId>",
    summary="Not supported: Step Functions decides a run's next state itself",
    operation_id="decide",
    tags=["workflow"],
    responses=openapi.NOT_SUPPORTED_RESPONSES,
)
def decide(workflowId: str) -> Response[str]:  # noqa: N803 - the route's own parameter name
    return _not_supported(workflowId, "decide")


@app.post(
    "/api/workflow/<workflowId>",
    summary="Start a workflow run without waiting (the body is its input)",
    description="Conductor's start by name: answers the workflowId as text/plain; `version` (absent or 0: the"
    " latest), `correlationId` and `priority` come in the query.",
    operation_id="startWorkflowByName",
    tags=["workflow"],
    responses=openapi.START_RESPONSES,
)
@tracer.capture_method
def start_workflow_by_name(
    workflowId: Annotated[str, Path(description=_NAME_AT_WORKFLOW_ID)],  # noqa: N803 - the route's own parameter name
    workflow_input: Annotated[dict[str, Any] | None, Body(embed=False)] = None,
    correlation_id: Annotated[OptionalCorrelationId, Query(alias="correlationId")] = None,
    priority: Annotated[OptionalPriority, Query()] = None,
) -> Response[str]:
    _require_json()
    options = _options()
    command = StartCommand(
        workflow=workflowId,
        version=options.version,
        input=workflow_input or {},
        options=options,
        correlation_id=correlation_id,
        priority=priority or 0,
    )
    started = workflow_lifecycle().start(command, _remaining_seconds)
    return _text(started.workflow_id, options.request_id, started.replayed)


@app.get(
    "/api/workflow/<workflowId>/status",
    summary="A run's status (Conductor's WorkflowStatus)",
    description="status and correlationId; `output` with includeOutput=true, `variables` with includeVariables=true.",
    operation_id="getWorkflowStatusSummary",
    tags=["workflow"],
    responses=openapi.STATUS_RESPONSES,
)
@tracer.capture_method
def get_workflow_status(
    workflowId: str,  # noqa: N803 - the route's own parameter name
    include_output: Annotated[FlagFalseByDefault, Query(alias="includeOutput")] = False,
    include_variables: Annotated[FlagFalseByDefault, Query(alias="includeVariables")] = False,
) -> Response[str]:
    request_id = _options().request_id
    status = workflow_lifecycle().status(
        workflowId, request_id, include_output=include_output, include_variables=include_variables
    )
    return _json(status.to_body(), request_id)


@app.delete(
    "/api/workflow/<workflowId>",
    summary="Terminate a run (StopExecution)",
    description="The run ends TERMINATED, `reason` its reasonForIncompletion. A TERMINATED run is left as it is;"
    " a COMPLETED, FAILED or TIMED_OUT one is a 409 (Step Functions cannot change an ended run).",
    operation_id="terminate",
    tags=["workflow"],
    responses=openapi.CHANGE_RESPONSES,
)
@tracer.capture_method
def terminate_workflow(
    workflowId: str,  # noqa: N803 - the route's own parameter name
    reason: Annotated[OptionalReason, Query()] = None,
    trigger_failure_workflow: Annotated[
        FlagFalseByDefault,
        Query(alias="triggerFailureWorkflow", description="Accepted; there is no failure workflow to start"),
    ] = False,
) -> Response[str]:
    request_id = _options().request_id
    workflow_lifecycle().terminate(workflowId, reason)
    return _text("", request_id)


@app.post(
    "/api/workflow/<workflowId>/retry",
    summary="Retry a FAILED, TIMED_OUT or TERMINATED run from where it stopped (RedriveExecution)",
    description="The run goes on under the same workflowId from the state that did not succeed. 409 when it cannot:"
    " RUNNING, COMPLETED, or Step Functions will not redrive it (ended over 14 days ago).",
    operation_id="retry",
    tags=["workflow"],
    responses=openapi.CHANGE_RESPONSES,
)
@tracer.capture_method
def retry_workflow(
    workflowId: str,  # noqa: N803 - the route's own parameter name
    resume_subworkflow_tasks: Annotated[
        FlagFalseByDefault, Query(alias="resumeSubworkflowTasks", description="Accepted; there are no sub-workflows")
    ] = False,
    retry_if_retried_by_parent: Annotated[
        FlagFalseByDefault, Query(alias="retryIfRetriedByParent", description="Accepted; there are no sub-workflows")
    ] = False,
) -> Response[str]:
    request_id = _options().request_id
    workflow_lifecycle().retry(workflowId)
    return _text("", request_id)


@app.get(
    "/api/workflow/<workflowId>/correlated/<correlationId>",
    summary="The runs of a workflow started with a correlationId",
    description="Oldest first, at most 100; only RUNNING ones unless includeClosed=true; tasks with includeTasks=true.",
    operation_id="getWorkflowsByCorrelationId",
    tags=["workflow"],
    responses=openapi.CORRELATED_RESPONSES,
)
@tracer.capture_method
def get_correlated_workflows(
    workflowId: Annotated[str, Path(description=_NAME_AT_WORKFLOW_ID)],  # noqa: N803 - the route's own parameter name
    correlationId: str,  # noqa: N803 - the route's own parameter name
    include_closed: Annotated[FlagFalseByDefault, Query(alias="includeClosed")] = False,
    include_tasks: Annotated[FlagFalseByDefault, Query(alias="includeTasks")] = False,
) -> Response[str]:
    request_id = _options().request_id
    runs = workflow_lifecycle().correlated(
        workflowId, correlationId, request_id, include_closed=include_closed, include_tasks=include_tasks
    )
    return _json([run.to_body() for run in runs], request_id)


@app.post(
    "/api/workflow/<workflowId>/correlated",
    summary="The runs of a workflow started with each of some correlationIds",
    description="The body is a JSON array of correlationIds (at most 20); the answer maps each to its runs, as"
    " GET .../correlated/{correlationId} lists them.",
    operation_id="getWorkflowsByCorrelationIds",
    tags=["workflow"],
    responses=openapi.CORRELATED_MANY_RESPONSES,
)
@tracer.capture_method
def get_correlated_workflows_many(
    workflowId: Annotated[str, Path(description=_NAME_AT_WORKFLOW_ID)],  # noqa: N803 - the route's own parameter name
    correlation_ids: Annotated[list[str], Body(embed=False)],
    include_closed: Annotated[FlagFalseByDefault, Query(alias="includeClosed")] = False,
    include_tasks: Annotated[FlagFalseByDefault, Query(alias="includeTasks")] = False,
) -> Response[str]:
    _require_json()
    request_id = _options().request_id
    found = workflow_lifecycle().correlated_many(
        workflowId, correlation_ids, request_id, include_closed=include_closed, include_tasks=include_tasks
    )
    return _json({cid: [run.to_body() for run in runs] for cid, runs in found.items()}, request_id)


def _not_supported(workflow_id: str, operation: str) -> Response[str]:
    _options()
    workflow_lifecycle().not_supported(workflow_id, operation)
    raise AssertionError("not_supported always raises")  # pragma: no cover


def _refuse(method: str, suffix: str, operation: str, operation_id: str) -> None:
    """Register a WorkflowResource route that Step Functions cannot honour: 404 for an unknown run,
    else a 409 naming why."""

    def refused(workflowId: str, taskReferenceName: str = "") -> Response[str]:  # noqa: N803
        return _not_supported(workflowId, operation)

    refused.__name__ = operation_id
    app.route(
        f"/api/workflow/<workflowId>/{suffix}",
        method=method,
        summary=f"Not supported: {NOT_SUPPORTED[operation].split(';')[0].split('. ')[0]}",
        operation_id=operation_id,
        tags=["workflow"],
        responses=openapi.NOT_SUPPORTED_RESPONSES,
    )(refused)


for _method, _suffix, _operation, _operation_id in (
    ("PUT", "pause", "pause", "pauseWorkflow"),
    ("PUT", "resume", "resume", "resumeWorkflow"),
    ("POST", "restart", "restart", "restart"),
    ("POST", "rerun", "rerun", "rerun"),
    ("PUT", "skiptask/<taskReferenceName>", "skiptask", "skipTaskFromWorkflow"),
    ("POST", "jump/<taskReferenceName>", "jump", "jumpToTask"),
    ("POST", "resetcallbacks", "resetcallbacks", "resetWorkflow"),
    ("POST", "upgrade", "upgrade", "upgradeRunningWorkflowToVersion"),
    ("POST", "variables", "variables", "updateWorkflowState"),
    ("DELETE", "remove", "remove", "delete"),
    ("DELETE", "terminate-remove", "terminate-remove", "terminateRemove"),
):
    _refuse(_method, _suffix, _operation, _operation_id)


@cache
def _with_token_route() -> APIGatewayRestResolver:
    """``app`` with POST /api/token, for the document only: deployed, TokenFunction alone serves it,
    so the API function does not import key auth (~9 ms of its cold start) for a route it never gets."""
    from token_app import router as token_router

    app.include_router(token_router)
    return app


def openapi_document() -> dict[str, Any]:
    """The routes' OpenAPI document (local mode serves it at /api/openapi.json)."""
    return openapi.openapi_document(_with_token_route())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
# powertools writes ColdStart with single_metric, which does not read POWERTOOLS_METRICS_DISABLED
# (local mode's setting): asked for only when metrics are on.
@metrics.log_metrics(capture_cold_start_metric=not is_metrics_disabled())
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
