"""The one place that turns failures into HTTP answers with Conductor's error body.

No answer carries a stack trace, an ARN or an account id: messages are ours, causes go to the log.
"""

import json

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from .errors import (
    FieldError,
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidRequest,
    ServiceUnavailable,
    WorkflowApiError,
    body_not_json,
)
from .models import ErrorBody
from .observability import logger
from .parameters import field_errors_from_dicts


def request_id(app: APIGatewayRestResolver) -> str:
    """The caller's requestId once parsed, else the one API Gateway gave the request."""
    rid = app.context.get("request_id")
    if rid:
        return str(rid)
    return str(app.current_event.request_context.request_id or "")


def error_response(app: APIGatewayRestResolver, error: WorkflowApiError) -> Response[str]:
    instance = request_id(app)
    body = ErrorBody(status=error.status, message=error.message, instance=instance, retryable=error.retryable)
    headers: dict[str, str] = {"X-Request-Id": instance}
    if isinstance(error, InvalidRequest):
        body.validation_errors = ErrorBody.validation(error.errors)
    if isinstance(error, IdempotencyConflict | IdempotencyKeyReused):  # the run the key names
        body.workflow_id = error.workflow_id
    if isinstance(error, ServiceUnavailable):
        headers["Retry-After"] = str(error.retry_after_seconds)
    logger.info("refused", extra={"http_status": error.status, "reason": error.message})
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body.to_body()),
        headers=headers,
    )


def register(app: APIGatewayRestResolver) -> None:
    @app.exception_handler(WorkflowApiError)
    def _domain(error: WorkflowApiError) -> Response[str]:
        return error_response(app, error)

    @app.exception_handler(RequestValidationError)
    def _validation(error: RequestValidationError) -> Response[str]:
        # Powertools answers 422; Conductor answers 400 for a body or path value it cannot read.
        errors: list[FieldError] = field_errors_from_dicts(error.errors())
        return error_response(app, InvalidRequest("invalid request", errors))

    @app.exception_handler(ValueError)
    def _unreadable_body(error: ValueError) -> Response[str]:
        # Powertools reads the body before any route runs, and lets these escape: bytes that are not
        # UTF-8 (a base64-encoded body), a multipart body without a boundary. Any other is a bug: 500.
        event = app.current_event
        content_type = event.headers.get("content-type") or ""
        if isinstance(error, UnicodeDecodeError) and event.is_base64_encoded:
            return error_response(app, InvalidRequest("The body must be JSON", [FieldError("body", "is not UTF-8")]))
        if content_type.lower().startswith("multipart/"):
            return error_response(app, body_not_json(content_type))
        return internal_error(app, error)

    @app.exception_handler(RecursionError)
    def _too_deep(_: RecursionError) -> Response[str]:
        # json.loads gives up on a body nested deeper than the interpreter's recursion limit.
        return error_response(app, InvalidRequest("The body is nested too deeply", [FieldError("body", "too deep")]))

    @app.exception_handler(RequestUnsupportedContentType)
    def _content_type(_: RequestUnsupportedContentType) -> Response[str]:
        return error_response(app, body_not_json(app.current_event.headers.get("content-type", "")))

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[str]:
        path = app.current_event.path
        return error_response(app, _RouteNotFound(f"No route for {app.current_event.http_method} {path}"))

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        return internal_error(app, error)


def internal_error(app: APIGatewayRestResolver, error: Exception) -> Response[str]:
    logger.exception("unexpected error", exc_info=error)
    return error_response(app, WorkflowApiError("Internal error; it has been logged"))


class _RouteNotFound(WorkflowApiError):
    status = 404
