"""Step Functions, in the service's words: start a run, read what happened since the last look."""

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import RunNotFound, ServiceUnavailable, WorkflowNotFound
from ..history import Event, RunEnd, epoch_millis, state_names
from ..status import WorkflowStatus, from_step_functions
from .aws import THROTTLING_CODES, AwsThrottled, AwsUnavailable, stepfunctions_client, stepfunctions_waiting_client

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# Pages are large while catching up on a history and small once only the newest events are missing.
FIRST_PAGE_SIZE = 1000
NEXT_PAGE_SIZE = 100


class ExecutionAlreadyExists(Exception):
    """An execution of that name exists and differs in input, or has closed."""


class ExecutionNotRedrivable(Exception):
    """Step Functions refused to redrive an execution; the message says why."""


@dataclass(frozen=True)
class ExecutionState:
    """DescribeExecution's answer, as the lifecycle needs it."""

    status: str  # as Step Functions says it: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE
    stop_date: int | None = None
    redrive_status: str | None = None  # REDRIVABLE, NOT_REDRIVABLE, REDRIVABLE_BY_MAP_RUN
    redrive_status_reason: str | None = None


@dataclass(frozen=True)
class ListedExecution:
    name: str
    start_time: int  # epoch milliseconds


@dataclass(frozen=True)
class StartedExecution:
    execution_arn: str
    start_time: int


@contextmanager
def _translated(not_found: type[Exception] | None = None) -> Iterator[None]:
    """AWS errors as domain errors, raised from the original so logs keep the cause."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in THROTTLING_CODES:
            raise AwsThrottled("Step Functions is throttling requests; retry shortly") from exc
        if code == "ExecutionAlreadyExists":
            raise ExecutionAlreadyExists(code) from exc
        if code in ("ExecutionDoesNotExist", "StateMachineDoesNotExist") and not_found is not None:
            raise not_found("No such workflow run") from exc
        if code == "ExecutionLimitExceeded":
            raise ServiceUnavailable("Too many workflow runs are open; retry later", 5) from exc
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        if status >= 500:
            raise AwsUnavailable("Step Functions is unavailable; retry shortly") from exc
        raise
    except BotoCoreError as exc:
        raise AwsUnavailable("Step Functions could not be reached; retry shortly") from exc


@dataclass
class HistoryCursor:
    """What one waiting request has read of one execution's history so far."""

    execution_arn: str
    events: dict[int, Event] = field(default_factory=dict)

    @property
    def last_event_id(self) -> int:
        return max(self.events, default=0)


class StepFunctionsGateway:
    def __init__(self, client: "SFNClient | None" = None, waiting_client: "SFNClient | None" = None) -> None:
        self._client = client or stepfunctions_client()
        # For the reads of a waiting call: tried once (adapters/aws.py, WAITING_CONFIG).
        self._waiting_client = waiting_client or (client if client is not None else stepfunctions_waiting_client())

    def start(
        self, state_machine_arn: str, execution_name: str, workflow_input: str, calls: Counter[str]
    ) -> StartedExecution:
        calls["StartExecution"] += 1
        with _translated(not_found=WorkflowNotFound):
            answer = self._client.start_execution(
                stateMachineArn=state_machine_arn, name=execution_name, input=workflow_input
            )
        started: datetime = answer["startDate"]
        return StartedExecution(answer["executionArn"], epoch_millis(started))

    def start_or_find(
        self, state_machine_arn: str, execution_name: str, workflow_input: str, calls: Counter[str]
    ) -> StartedExecution | None:
        """Start the named execution; None when it already exists (with other input, or closed).

        Same name and same input while running answers the existing execution, as AWS does.
        """
        try:
            return self.start(state_machine_arn, execution_name, workflow_input, calls)
        except ExecutionAlreadyExists:
            return None

    def status_of(self, execution_arn: str, calls: Counter[str]) -> WorkflowStatus | None:
        """The execution's current status; None when it does not exist (or is not visible yet:
        DescribeExecution is eventually consistent right after a start)."""
        calls["DescribeExecution"] += 1
        try:
            with _translated(not_found=RunNotFound):
                answer = self._client.describe_execution(executionArn=execution_arn)
        except RunNotFound:
            return None
        return from_step_functions(answer["status"])

    def end_of(self, execution_arn: str, calls: Counter[str]) -> RunEnd | None:
        """The run's end, as DescribeExecution tells it; None while it runs (or is not visible yet).
        For a waiting call: tried once, as its history reads are (throttling is the caller's to
        back off). It reads another quota than the history (DescribeExecution: refill 15/s)."""
        calls["DescribeExecution"] += 1
        try:
            with _translated(not_found=RunNotFound):
                answer = self._waiting_client.describe_execution(executionArn=execution_arn)
        except RunNotFound:
            return None
        if not from_step_functions(answer["status"]).is_terminal:
            return None
        stopped = answer.get("stopDate")
        return RunEnd(
            status="FAILED" if answer["status"] == "PENDING_REDRIVE" else answer["status"],
            stop_date=epoch_millis(stopped) if stopped is not None else 0,
            start_date=epoch_millis(answer["startDate"]),
            output=answer.get("output"),
            error=answer.get("error"),
            cause=answer.get("cause"),
            input=answer.get("input"),
        )

    def read_new_events(self, cursor: HistoryCursor, calls: Counter[str], *, waiting: bool = False) -> int:
        """Add the events not yet in ``cursor``; answer how many were new. ``waiting``: for a call
        that waits, each page is tried once, and a throttled page is the wait loop's to back off.

        Asks newest-first and stops at the first page that reaches an event already seen, so a
        long history is read once, not on every look. A look asks one small page; when more than
        that is new (a Map ran since the last look), it starts again in large pages rather than
        paging on 100 at a time: 2,000 new events cost 4 calls, not 20, of the account's 20 a
        second. A service that ignores ``reverseOrder`` (moto itself does; local mode pages as AWS
        does) answers oldest-first: then every page is read, and the result is the same.
        """
        last_seen = cursor.last_event_id
        request: dict[str, Any] = {
            "executionArn": cursor.execution_arn,
            "reverseOrder": True,
            "maxResults": FIRST_PAGE_SIZE if last_seen == 0 else NEXT_PAGE_SIZE,
            "includeExecutionData": True,
        }
        # Merged only once the read is whole: a read cut short (throttled on page 2) must not
        # leave a gap that the next look, stopping at the newest event seen, would never fill.
        new: dict[int, Event] = {}
        client = self._waiting_client if waiting else self._client
        while True:
            calls["GetExecutionHistory"] += 1
            with _translated(not_found=RunNotFound):
                page = client.get_execution_history(**request)
            events = page["events"]
            new.update((event["id"], event) for event in events if event["id"] > last_seen)
            token = page.get("nextToken")
            newest_first = len(events) > 1 and events[0]["id"] > events[-1]["id"]
            if not token or (newest_first and events[-1]["id"] <= last_seen):
                cursor.events.update(new)
                return len(new)
            if request["maxResults"] < FIRST_PAGE_SIZE:
                # From the newest again, not on from the token: a token is for the request it came with.
                request["maxResults"] = FIRST_PAGE_SIZE
                continue
            request["nextToken"] = token

    # --- the lifecycle: stop, redrive, list ---------------------------------------------------

    def describe(self, execution_arn: str, calls: Counter[str]) -> ExecutionState:
        """The execution's status as Step Functions says it (RunNotFound when there is none)."""
        calls["DescribeExecution"] += 1
        with _translated(not_found=RunNotFound):
            answer = self._client.describe_execution(executionArn=execution_arn)
        stopped = answer.get("stopDate")
        return ExecutionState(
            status=answer["status"],
            stop_date=epoch_millis(stopped) if stopped is not None else None,
            redrive_status=answer.get("redriveStatus"),
            redrive_status_reason=answer.get("redriveStatusReason"),
        )

    def stop(self, execution_arn: str, error: str | None, cause: str | None, calls: Counter[str]) -> None:
        """StopExecution: the run ends ABORTED with ``error``/``cause`` (its reason)."""
        request: dict[str, Any] = {"executionArn": execution_arn}
        if error is not None:
            request["error"] = error
        if cause is not None:
            request["cause"] = cause
        calls["StopExecution"] += 1
        with _translated(not_found=RunNotFound):
            self._client.stop_execution(**request)

    def redrive(self, execution_arn: str, calls: Counter[str]) -> None:
        """RedriveExecution: a FAILED, ABORTED or TIMED_OUT Standard run goes on from the state
        that did not succeed, under the same ARN. ExecutionNotRedrivable when it cannot."""
        calls["RedriveExecution"] += 1
        try:
            with _translated(not_found=RunNotFound):
                self._client.redrive_execution(executionArn=execution_arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionNotRedrivable":
                raise ExecutionNotRedrivable(exc.response["Error"].get("Message", "")) from exc
            raise

    def running(self, state_machine_arn: str, calls: Counter[str], limit: int) -> list[ListedExecution]:
        """The state machine's RUNNING executions, newest first, at most ``limit``."""
        request: dict[str, Any] = {
            "stateMachineArn": state_machine_arn,
            "statusFilter": "RUNNING",
            "maxResults": min(limit, 1000),
        }
        found: list[ListedExecution] = []
        while len(found) < limit:
            calls["ListExecutions"] += 1
            with _translated(not_found=WorkflowNotFound):
                page = self._client.list_executions(**request)
            found.extend(ListedExecution(item["name"], epoch_millis(item["startDate"])) for item in page["executions"])
            token = page.get("nextToken")
            if not token:
                break
            request["nextToken"] = token
        return found[:limit]

    def task_refs(self, state_machine_arn: str) -> frozenset[str]:
        with _translated(not_found=WorkflowNotFound):
            answer = self._client.describe_state_machine(stateMachineArn=state_machine_arn)
        return state_names(json.loads(answer["definition"]))
