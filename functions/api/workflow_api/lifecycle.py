"""Conductor's workflow lifecycle beyond execute, on Step Functions: start without waiting, status,
terminate, retry (redrive), the running and correlated lists, and a clear refusal for what Step
Functions cannot do to a run (pause, restart, skip a task...).

Starts are ``WorkflowService``'s own (the same checks, records and idempotency as execute); reads
are its ``get``. What is new here maps onto StopExecution, RedriveExecution, ListExecutions and a
Query of the run records' correlation index.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from .adapters.run_records import RunRecords
from .adapters.stepfunctions import ExecutionNotRedrivable, ExecutionState, StepFunctionsGateway
from .catalog import WorkflowCatalog
from .errors import FieldError, InvalidRequest, OperationNotSupported, RunConflict, RunNotFound
from .models import WorkflowRun
from .parameters import is_absent
from .service import StartAnswer, StartCommand, WorkflowService
from .status import WorkflowStatus, from_step_functions

# Step Functions' limits on StopExecution's cause (the reason) and error.
MAX_REASON_CHARS = 32768
# What one call reads at most: each correlated run costs a history read (a quota of 20/s an account),
# so one call reads at most MAX_CORRELATED runs, however many correlationIds it names.
MAX_RUNNING = 1000
MAX_CORRELATED = 100
MAX_CORRELATION_IDS = 20
# The error a terminated run reads, when its caller gave no reason.
TERMINATED_ERROR = "Terminated"


def _absent_is_none(value: Any) -> Any:
    return None if is_absent(value) else value


def _absent_is_false(value: Any) -> Any:
    return False if is_absent(value) else value


# The lifecycle routes' optional query parameters: an SDK's empty, ``None`` or ``null`` is not given.
OptionalVersion = Annotated[Annotated[int, Field(ge=0, le=2**31 - 1)] | None, BeforeValidator(_absent_is_none)]
OptionalMillis = Annotated[Annotated[int, Field(ge=0, le=2**63 - 1)] | None, BeforeValidator(_absent_is_none)]
OptionalPriority = Annotated[Annotated[int, Field(ge=0, le=99)] | None, BeforeValidator(_absent_is_none)]
OptionalCorrelationId = Annotated[Annotated[str, Field(max_length=256)] | None, BeforeValidator(_absent_is_none)]
OptionalReason = Annotated[Annotated[str, Field(max_length=MAX_REASON_CHARS)] | None, BeforeValidator(_absent_is_none)]
FlagFalseByDefault = Annotated[bool, BeforeValidator(_absent_is_false)]

# What Step Functions cannot do, by Conductor operation: why, and what to do instead.
NOT_SUPPORTED = {
    "pause": "Step Functions cannot pause a running execution. Terminate it (DELETE /api/workflow/{workflowId})"
    " and retry it later (POST /api/workflow/{workflowId}/retry) to go on from the state it was in",
    "resume": "Step Functions cannot pause an execution, so there is none to resume. A terminated run goes on"
    " with POST /api/workflow/{workflowId}/retry",
    "restart": "Step Functions cannot start an ended execution again from its beginning under the same id;"
    " start a new run (POST /api/workflow), or retry this one from where it stopped (POST .../retry)",
    "rerun": "Step Functions cannot rerun an execution from a chosen task; start a new run, or retry this one"
    " from where it stopped (POST .../retry)",
    "skiptask": "Step Functions cannot skip a state of a running execution",
    "jump": "Step Functions cannot move a running execution to another state",
    "resetcallbacks": "Step Functions runs have no callback timers to reset",
    "decide": "Step Functions decides a run's next state itself",
    "upgrade": "Step Functions cannot move a running execution to another state machine version",
    "variables": "Step Functions cannot change a running execution's variables from outside",
    "remove": "Step Functions keeps an ended execution's history (90 days) and cannot delete it",
    "terminate-remove": "Step Functions keeps an ended execution's history (90 days) and cannot delete it;"
    " terminate with DELETE /api/workflow/{workflowId}",
}


@dataclass(frozen=True)
class WorkflowStatusBody:
    """Conductor's ``WorkflowStatus``: output and variables only when asked for, as Conductor."""

    workflow_id: str
    correlation_id: str | None
    status: str
    output: Any = None
    variables: dict[str, Any] | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "workflowId": self.workflow_id,
            "correlationId": self.correlation_id,
            "status": self.status,
        }
        if self.output is not None:
            body["output"] = self.output
        if self.variables is not None:
            body["variables"] = self.variables
        return body


class WorkflowLifecycle:
    def __init__(
        self,
        service: WorkflowService,
        catalog: WorkflowCatalog,
        stepfunctions: StepFunctionsGateway,
        run_records: RunRecords,
    ) -> None:
        self._service = service
        self._catalog = catalog
        self._sfn = stepfunctions
        self._records = run_records

    # --- start and read ----------------------------------------------------------------------

    def start(self, command: StartCommand, remaining_seconds: Callable[[], float]) -> StartAnswer:
        """Conductor's ``POST /api/workflow``: execute's start, without the wait."""
        return self._service.start(command, remaining_seconds)

    def status(
        self, workflow_id: str, request_id: str, *, include_output: bool, include_variables: bool
    ) -> WorkflowStatusBody:
        run = self._service.get(workflow_id, request_id, include_tasks=False).run
        return WorkflowStatusBody(
            workflow_id=run.workflow_id,
            correlation_id=run.correlation_id,
            status=run.status,
            output=run.output if include_output else None,
            variables=run.variables if include_variables else None,
        )

    def running(self, name: str, version: int, start_time: int | None, end_time: int | None) -> list[str]:
        """Conductor's ``GET /api/workflow/running/{name}``: the RUNNING runs' workflowIds, newest
        first; ``version`` 0 is the latest; ``startTime``/``endTime`` bound their start (epoch ms)."""
        workflow = self._catalog.resolve(name, version)
        listed = self._sfn.running(workflow.state_machine_arn, Counter(), MAX_RUNNING)
        return [
            workflow.workflow_id(run.name)
            for run in listed
            if (start_time is None or run.start_time >= start_time) and (end_time is None or run.start_time <= end_time)
        ]

    def correlated(
        self, name: str, correlation_id: str, request_id: str, *, include_closed: bool, include_tasks: bool
    ) -> list[WorkflowRun]:
        """Conductor's ``GET /api/workflow/{name}/correlated/{correlationId}``: the runs of ``name``
        started with that correlationId, oldest first; only RUNNING ones unless ``include_closed``."""
        return self._correlated(
            name, correlation_id, request_id, include_closed=include_closed, include_tasks=include_tasks
        )[0]

    def _correlated(
        self,
        name: str,
        correlation_id: str,
        request_id: str,
        *,
        include_closed: bool,
        include_tasks: bool,
        most: int = MAX_CORRELATED,
    ) -> tuple[list[WorkflowRun], int]:
        """(the runs, how many were read: at most ``most``)."""
        self._catalog.resolve(name, None)  # an unknown name is a 404, as everywhere else
        runs: list[WorkflowRun] = []
        listed = self._records.correlated(name, correlation_id, most) if most > 0 else []
        for workflow_id in listed:
            try:
                run = self._service.get(workflow_id, request_id, include_tasks).run
            except RunNotFound:
                continue  # recorded before a start that then failed: no run
            if include_closed or not WorkflowStatus(run.status).is_terminal:
                runs.append(run)
        return sorted(runs, key=lambda run: (run.create_time, run.workflow_id)), len(listed)

    def correlated_many(
        self, name: str, correlation_ids: list[str], request_id: str, *, include_closed: bool, include_tasks: bool
    ) -> dict[str, list[WorkflowRun]]:
        """Conductor's ``POST /api/workflow/{name}/correlated`` (the SDK's get_by_correlation_ids)."""
        unique = list(dict.fromkeys(correlation_ids))
        if len(unique) > MAX_CORRELATION_IDS:
            raise InvalidRequest(
                "Too many correlationIds",
                [FieldError("body", f"at most {MAX_CORRELATION_IDS} correlationIds a call", len(unique))],
            )
        answer: dict[str, list[WorkflowRun]] = {}
        left = MAX_CORRELATED  # the reads of the whole call, not of each correlationId
        for correlation_id in unique:
            answer[correlation_id], read = self._correlated(
                name, correlation_id, request_id, include_closed=include_closed, include_tasks=include_tasks, most=left
            )
            left -= read
        return answer

    # --- change a run ------------------------------------------------------------------------

    def terminate(self, workflow_id: str, reason: str | None) -> None:
        """Conductor's ``DELETE /api/workflow/{workflowId}``: StopExecution, the reason as its cause.
        As Conductor: a TERMINATED run is left as it is, a COMPLETED one is a 409. A FAILED or
        TIMED_OUT run is a 409 too: Step Functions cannot change an ended run's status."""
        if reason is not None and len(reason) > MAX_REASON_CHARS:
            raise InvalidRequest(
                "The reason is too long", [FieldError("reason", f"at most {MAX_REASON_CHARS} characters")]
            )
        arn, state = self._find(workflow_id)
        status = from_step_functions(state.status)
        if status is WorkflowStatus.TERMINATED:
            return
        if status is WorkflowStatus.COMPLETED:
            raise RunConflict("Cannot terminate a COMPLETED workflow.")
        if status.is_terminal:
            raise RunConflict(
                f"Cannot terminate a workflow that has ended {status}: Step Functions cannot change an ended run's"
                " status"
            )
        self._sfn.stop(arn, None if reason else TERMINATED_ERROR, reason or None, Counter())

    def retry(self, workflow_id: str) -> None:
        """Conductor's ``POST /api/workflow/{workflowId}/retry``: a FAILED, TIMED_OUT or TERMINATED
        run goes on from the state that did not succeed (RedriveExecution), under the same id."""
        arn, state = self._find(workflow_id)
        status = from_step_functions(state.status)
        if state.status in ("RUNNING", "PENDING_REDRIVE"):
            raise RunConflict("Cannot retry a workflow that is RUNNING: only FAILED, TIMED_OUT or TERMINATED ones")
        if status is WorkflowStatus.COMPLETED:
            raise RunConflict("Cannot retry a COMPLETED workflow: only FAILED, TIMED_OUT or TERMINATED ones")
        if state.redrive_status == "NOT_REDRIVABLE":
            raise RunConflict(_not_redrivable(state.redrive_status_reason))
        try:
            self._sfn.redrive(arn, Counter())
        except ExecutionNotRedrivable:
            raise RunConflict(_not_redrivable(None)) from None

    def not_supported(self, workflow_id: str, operation: str) -> None:
        """A 409 naming why, once the run is known to exist (an unknown one stays a 404)."""
        self._find(workflow_id)
        raise OperationNotSupported(f"{operation} is not supported: {NOT_SUPPORTED[operation]}")

    def _find(self, workflow_id: str) -> tuple[str, ExecutionState]:
        workflow, execution_name = self._catalog.parse_workflow_id(workflow_id)
        arn = workflow.execution_arn(execution_name)
        try:
            return arn, self._sfn.describe(arn, Counter())
        except RunNotFound:
            raise RunNotFound(f"No such workflow run: {workflow_id}") from None


def _not_redrivable(why: str | None) -> str:
    return "Step Functions cannot redrive (retry) this run" + (
        f": {why}" if why else ": it ended more than 14 days ago, or has been redriven 1,000 times"
    )
