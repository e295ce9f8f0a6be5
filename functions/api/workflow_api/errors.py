"""The service's failures as a small hierarchy; ``http_errors`` turns them into answers."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str
    invalid_value: Any = None


class WorkflowApiError(Exception):
    """Base of every error a caller can be told about."""

    status = 500
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(WorkflowApiError):
    status = 400

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def body_not_json(content_type: str) -> InvalidRequest:
    return InvalidRequest(
        "The body must be JSON", [FieldError("Content-Type", "must be application/json", content_type)]
    )


class WorkflowNotFound(WorkflowApiError):
    status = 404


class RunNotFound(WorkflowApiError):
    status = 404


class WorkflowAmbiguous(WorkflowApiError):
    """Two state machines are tagged with one workflow name and version: which one a caller means
    cannot be known, so neither runs until one is untagged (409: the workflow's state, not the
    request, is at fault; no retry helps before someone changes the tags)."""

    status = 409


class IdempotencyConflict(WorkflowApiError):
    status = 409

    def __init__(self, message: str, workflow_id: str) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id


class IdempotencyKeyReused(WorkflowApiError):
    """The idempotency key was made for another request (input or version): 422 naming the key
    and the run it names, whatever the strategy; nothing was started. Not retryable: only a new
    key, or the original request, can succeed (the IETF Idempotency-Key draft, Stripe)."""

    status = 422

    def __init__(self, message: str, workflow_id: str) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id


class PayloadTooLarge(WorkflowApiError):
    status = 413


class ServiceUnavailable(WorkflowApiError):
    """AWS throttled or failed for longer than our retries: safe to retry later."""

    status = 503
    retryable = True

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class RunConflict(WorkflowApiError):
    """The run's state does not allow the operation (retry a RUNNING run, terminate a COMPLETED
    one): Conductor's ConflictException, which its clients map from 409."""

    status = 409


class OperationNotSupported(WorkflowApiError):
    """A Conductor operation Step Functions cannot do to a run (pause, restart, skip a task...).
    409 as Conductor answers an operation a run cannot take: not 404 (the run exists), not 400
    (no other request would do it), never retryable."""

    status = 409
