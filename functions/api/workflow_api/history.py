"""Fold Step Functions history events into a run as Conductor shows it.

Pure: events in, snapshot out. Events are the dicts GetExecutionHistory returns, in any order;
they are sorted by id here, because moto returns them oldest-first whatever was asked and AWS
returns them newest-first when asked to.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .status import OPEN_TASK_WHEN_RUN_ENDED, TERMINAL_EVENTS, TaskStatus, WorkflowStatus, from_step_functions

Event = Mapping[str, Any]


@dataclass
class TaskRun:
    reference_name: str
    task_type: str
    status: TaskStatus
    input_data: Any
    start_time: int
    output_data: Any = None
    end_time: int = 0
    reason_for_incompletion: str | None = None


@dataclass
class RunSnapshot:
    status: WorkflowStatus = WorkflowStatus.RUNNING
    input: Any = None
    output: Any = None
    create_time: int = 0
    update_time: int = 0
    reason_for_incompletion: str | None = None
    tasks: list[TaskRun] = field(default_factory=list)
    completed_task_refs: frozenset[str] = frozenset()
    last_event_id: int = 0


def epoch_millis(value: datetime | int | float) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _reason(details: Mapping[str, Any]) -> str:
    """``error: cause``; a Lambda's cause is its error JSON, of which the message is what matters
    (its stack trace is for the function's logs, not for the caller)."""
    error, cause = details.get("error"), details.get("cause")
    parsed = _json(cause)
    if isinstance(parsed, Mapping) and "errorMessage" in parsed:
        cause = str(parsed["errorMessage"])
    return ": ".join(part for part in (error, cause) if part) or "no error given"


def _failure_details(event: Event) -> Mapping[str, Any] | None:
    """The error/cause of an event that reports a task failing (LambdaFunctionFailed, ...)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping) and "error" in value:
            return value
    return None


def fold(events: Iterable[Event]) -> RunSnapshot:
    """Replay the events of one execution, oldest first, into a snapshot of the run."""
    run = RunSnapshot()
    open_tasks: dict[str, list[TaskRun]] = {}
    completed: set[str] = set()
    for event in sorted(events, key=lambda e: int(e["id"])):
        kind: str = event["type"]
        at = epoch_millis(event["timestamp"])
        run.update_time = max(run.update_time, at)
        run.last_event_id = max(run.last_event_id, int(event["id"]))
        if kind == "ExecutionStarted":
            run.create_time = at
            run.input = _json(event.get("executionStartedEventDetails", {}).get("input"))
        elif kind == "ExecutionRedriven":
            run.status, run.reason_for_incompletion, run.output = WorkflowStatus.RUNNING, None, None
        elif kind in TERMINAL_EVENTS:
            run.status = TERMINAL_EVENTS[kind]
            details: Mapping[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            if run.status is WorkflowStatus.COMPLETED:
                run.output = _json(details.get("output"))
            else:
                run.reason_for_incompletion = _reason(details)
            # Tasks still open end with the run; a redrive enters them afresh.
            for task in (t for waiting in open_tasks.values() for t in waiting):
                task.status, task.end_time = OPEN_TASK_WHEN_RUN_ENDED[run.status], at
            open_tasks.clear()
        elif kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            task = TaskRun(
                reference_name=details["name"],
                task_type=kind.removesuffix("StateEntered"),
                status=TaskStatus.IN_PROGRESS,
                input_data=_json(details.get("input")),
                start_time=at,
            )
            run.tasks.append(task)
            open_tasks.setdefault(task.reference_name, []).append(task)
        elif kind.endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            name = details["name"]
            completed.add(name)
            waiting = open_tasks.get(name)
            if waiting:
                task = waiting.pop(0)
                task.status, task.end_time = TaskStatus.COMPLETED, at
                task.output_data = _json(details.get("output"))
        elif (failure := _failure_details(event)) is not None:
            # A task attempt failed; the last open task is the one that ran it.
            last_open = next((t for t in reversed(run.tasks) if t.status is TaskStatus.IN_PROGRESS), None)
            if last_open is not None:
                last_open.reason_for_incompletion = _reason(failure)
    if run.output is None:
        run.output = {}
    run.completed_task_refs = frozenset(completed)
    return run


def state_names(definition: Mapping[str, Any]) -> frozenset[str]:
    """Every state of an ASL definition, nested Parallel branches and Map processors included."""
    names: set[str] = set()
    pending = [definition]
    while pending:
        machine = pending.pop()
        for name, state in machine.get("States", {}).items():
            names.add(name)
            pending.extend(state.get("Branches", []))
            for key in ("Iterator", "ItemProcessor"):
                if key in state:
                    pending.append(state[key])
    return frozenset(names)


@dataclass(frozen=True)
class RunEnd:
    """A run's end as Step Functions reports it outside the history: the EventBridge "Execution
    Status Change" event (kept by run_status, ``adapters/run_signals.py``) or DescribeExecution.
    The JSON texts are None when the report left them out (too large for the event)."""

    status: str  # as Step Functions says it: SUCCEEDED, FAILED, TIMED_OUT, ABORTED
    stop_date: int  # epoch milliseconds
    start_date: int = 0
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    input: str | None = None

    @property
    def output_known(self) -> bool:
        """A run that did not succeed has no output; one that did needs the text to answer it."""
        return self.output is not None or self.status != "SUCCEEDED"

    def snapshot(self, known: RunSnapshot) -> RunSnapshot:
        """``known`` (what the call knew: the input it sent, the start's time), ended as reported.
        Its tasks are the ones ``known`` holds: only the history has them."""
        status = from_step_functions(self.status)
        ended = RunSnapshot(
            status=status,
            input=_json(self.input) if self.input is not None else known.input,
            output=_json(self.output) if self.output is not None else {},
            create_time=self.start_date or known.create_time,
            update_time=max(self.stop_date, known.update_time),
            tasks=known.tasks,
            completed_task_refs=known.completed_task_refs,
            last_event_id=known.last_event_id,
        )
        if status is not WorkflowStatus.COMPLETED:
            ended.reason_for_incompletion = _reason({"error": self.error, "cause": self.cause})
        return ended
