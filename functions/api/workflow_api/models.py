"""Conductor's wire shapes: what callers send and what they get back."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .errors import FieldError
from .history import RunSnapshot, TaskRun

Strategy = Literal["RETURN_EXISTING", "FAIL", "FAIL_ON_RUNNING"]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class StartWorkflowRequest(_Wire):
    """Body of ``POST /api/workflow/execute/{name}/{version}``, as Conductor's SDKs send it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str | None = None
    version: int | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = Field(default=None, max_length=256)
    idempotency_key: str | None = None
    idempotency_strategy: Strategy | None = None
    priority: int = Field(default=0, ge=0, le=99)


class Task(_Wire):
    reference_task_name: str
    task_type: str
    status: str
    input_data: Any = None
    output_data: Any = None
    start_time: int
    end_time: int
    reason_for_incompletion: str | None = None

    @classmethod
    def from_task_run(cls, task: TaskRun) -> "Task":
        return cls(
            reference_task_name=task.reference_name,
            task_type=task.task_type,
            status=task.status.value,
            input_data=task.input_data,
            output_data=task.output_data,
            start_time=task.start_time,
            end_time=task.end_time,
            reason_for_incompletion=task.reason_for_incompletion,
        )


class WorkflowRun(_Wire):
    """Conductor's ``SignalResponse`` + ``WorkflowRun``: SDK clients read it unchanged."""

    workflow_id: str
    request_id: str
    correlation_id: str | None = None
    status: str
    input: Any = None
    output: Any = None
    create_time: int
    update_time: int
    reason_for_incompletion: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    priority: int = 0
    response_type: Literal["TARGET_WORKFLOW"] = "TARGET_WORKFLOW"
    target_workflow_id: str
    target_workflow_status: str
    signal_timeout: bool = False
    tasks: list[Task] | None = None

    @classmethod
    def from_snapshot(
        cls,
        run: RunSnapshot,
        *,
        workflow_id: str,
        request_id: str,
        correlation_id: str | None,
        priority: int,
        include_tasks: bool,
        signal_timeout: bool = False,
    ) -> "WorkflowRun":
        return cls(
            workflow_id=workflow_id,
            request_id=request_id,
            correlation_id=correlation_id,
            status=run.status.value,
            input=run.input if run.input is not None else {},
            output=run.output,
            create_time=run.create_time,
            update_time=run.update_time,
            reason_for_incompletion=run.reason_for_incompletion,
            priority=priority,
            target_workflow_id=workflow_id,
            target_workflow_status=run.status.value,
            signal_timeout=signal_timeout,
            tasks=[Task.from_task_run(t) for t in run.tasks] if include_tasks else None,
        )

    def to_body(self) -> dict[str, Any]:
        # reasonForIncompletion is absent, not null, while there is none (SPEC "Response body").
        body = self.model_dump(mode="json", by_alias=True)
        for holder in (body, *(body.get("tasks") or [])):
            if holder.get("reasonForIncompletion") is None:
                holder.pop("reasonForIncompletion", None)
        if body.get("tasks") is None:
            body.pop("tasks")
        return body


class ValidationErrorBody(_Wire):
    path: str
    message: str
    invalid_value: Any = None


class ErrorBody(_Wire):
    """Conductor's ``ErrorResponse``."""

    status: int
    message: str
    instance: str
    retryable: bool
    validation_errors: list[ValidationErrorBody] | None = None
    workflow_id: str | None = None

    @staticmethod
    def validation(errors: list[FieldError]) -> list[ValidationErrorBody]:
        return [ValidationErrorBody(path=e.path, message=e.message, invalid_value=e.invalid_value) for e in errors]

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
