"""Start a workflow run and answer when the caller's wait condition holds."""

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .adapters.run_records import RunRecord, RunRecords
from .adapters.stepfunctions import HistoryCursor, StepFunctionsGateway
from .catalog import WorkflowCatalog, WorkflowVersion
from .errors import FieldError, InvalidRequest, PayloadTooLarge, RunNotFound, ServiceUnavailable
from .history import RunSnapshot, fold
from .models import WorkflowRun
from .parameters import RunOptions
from .waiting import PollSchedule, wait_budget, wait_is_over

# Step Functions refuses execution input over 256 KiB.
MAX_INPUT_BYTES = 256 * 1024


@dataclass(frozen=True)
class StartCommand:
    workflow: str
    version: int | None
    input: dict[str, Any]
    options: RunOptions
    correlation_id: str | None = None
    priority: int = 0


@dataclass
class RunAnswer:
    run: WorkflowRun
    http_status: int
    started: bool = False
    waited_seconds: float = 0.0
    aws_calls: Counter[str] = field(default_factory=Counter)


def canonical_json(value: Any) -> str:
    """One byte-identical text per input, so a retried start is recognised by Step Functions."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class WorkflowService:
    def __init__(
        self,
        catalog: WorkflowCatalog,
        stepfunctions: StepFunctionsGateway,
        run_records: RunRecords,
        *,
        max_wait_seconds: int,
        answer_margin_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        schedule: Callable[[], PollSchedule] = PollSchedule,
    ) -> None:
        self._catalog = catalog
        self._sfn = stepfunctions
        self._records = run_records
        self._max_wait = max_wait_seconds
        self._margin = answer_margin_seconds
        self._clock = clock
        self._sleep = sleep
        self._schedule = schedule

    def execute(self, command: StartCommand, remaining_seconds: Callable[[], float]) -> RunAnswer:
        options = command.options
        workflow = self._catalog.resolve(command.workflow, command.version)
        self._check_task_refs(workflow, options.wait_until_task_refs)
        workflow_input = canonical_json(command.input)
        if len(workflow_input.encode()) > MAX_INPUT_BYTES:
            raise PayloadTooLarge(f"Workflow input is over the {MAX_INPUT_BYTES} byte limit of Step Functions")

        calls: Counter[str] = Counter()
        execution_name = uuid.uuid4().hex
        workflow_id = workflow.workflow_id(execution_name)
        record = RunRecord(command.correlation_id, command.priority)
        if record != RunRecord():
            # Before the start: a failed write leaves nothing running that the caller cannot see.
            calls["PutItem"] += 1
            self._records.put(workflow_id, record)
        started = self._sfn.start(workflow.state_machine_arn, execution_name, workflow_input, calls)

        budget = wait_budget(options.wait_for_seconds, self._max_wait, remaining_seconds(), self._margin)
        begun = self._clock()
        initial = RunSnapshot(
            input=command.input, output={}, create_time=started.start_time, update_time=started.start_time
        )
        run, timed_out = self._wait(started.execution_arn, initial, options.wait_until_task_refs, budget, calls)
        return self._answer(
            run,
            workflow_id,
            options.request_id,
            record,
            signal_timeout=timed_out,
            started=True,
            waited=self._clock() - begun,
            calls=calls,
        )

    def get(self, workflow_id: str, request_id: str, include_tasks: bool = True) -> RunAnswer:
        workflow, execution_name = self._catalog.parse_workflow_id(workflow_id)
        calls: Counter[str] = Counter()
        cursor = HistoryCursor(workflow.execution_arn(execution_name))
        self._sfn.read_new_events(cursor, calls)
        if not cursor.events:
            raise RunNotFound(f"No such workflow run: {workflow_id}")
        calls["GetItem"] += 1
        record = self._records.get(workflow_id)
        answer = self._answer(
            fold(cursor.events.values()), workflow_id, request_id, record, include_tasks=include_tasks, calls=calls
        )
        answer.http_status = 200  # a read is complete whatever the run's state, as in Conductor
        return answer

    def _check_task_refs(self, workflow: WorkflowVersion, wanted: frozenset[str]) -> None:
        if not wanted:
            return
        known = self._catalog.task_refs(workflow)
        unknown = sorted(wanted - known)
        if unknown:
            raise InvalidRequest(
                f"waitUntilTaskRef names tasks that {workflow.name} v{workflow.version} does not have",
                [
                    FieldError(
                        "waitUntilTaskRef",
                        f"unknown task reference; valid ones: {', '.join(sorted(known))}",
                        ",".join(unknown),
                    )
                ],
            )

    def _wait(
        self,
        execution_arn: str,
        initial: RunSnapshot,
        wait_until_task_refs: frozenset[str],
        budget: float,
        calls: Counter[str],
    ) -> tuple[RunSnapshot, bool]:
        """Look at the run until the wait condition holds or the budget is spent.

        Answers (run, timed_out). Throttling and outages only lengthen the pauses: a waiting
        caller gets the run as last seen, never an error, and at least one look is always taken
        so a run that already ended is reported as ended.
        """
        if budget <= 0:
            return initial, True
        deadline = self._clock() + budget
        cursor = HistoryCursor(execution_arn)
        schedule = self._schedule()
        run, throttled = initial, False
        while True:
            pause = schedule.next_pause(throttled)
            last_look = self._clock() + pause >= deadline
            self._sleep(max(0.0, deadline - self._clock()) if last_look else pause)
            try:
                if self._sfn.read_new_events(cursor, calls):
                    run = fold(cursor.events.values())
                throttled = False
            except RunNotFound:
                throttled = False  # Right after the start, history is eventually consistent.
            except ServiceUnavailable:
                throttled = True
            if wait_is_over(run, wait_until_task_refs):
                return run, False
            if last_look:
                return run, True

    @staticmethod
    def _answer(
        run: RunSnapshot,
        workflow_id: str,
        request_id: str,
        record: RunRecord,
        *,
        include_tasks: bool = True,
        signal_timeout: bool = False,
        started: bool = False,
        waited: float = 0.0,
        calls: Counter[str],
    ) -> RunAnswer:
        body = WorkflowRun.from_snapshot(
            run,
            workflow_id=workflow_id,
            request_id=request_id,
            correlation_id=record.correlation_id,
            priority=record.priority,
            include_tasks=include_tasks,
            signal_timeout=signal_timeout,
        )
        return RunAnswer(
            run=body,
            http_status=200 if run.status.is_terminal else 206,
            started=started,
            waited_seconds=waited,
            aws_calls=calls,
        )
