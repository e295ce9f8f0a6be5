"""StopExecution's reason and RedriveExecution in local mode, as AWS has them.

moto 5.2.5 runs executions (``execute_state_machine``) but:
- ``StopExecution`` drops the request's ``error`` and ``cause`` (it stops the run with empty ones),
  where AWS writes them into the ``ExecutionAborted`` event, DescribeExecution and the EventBridge
  event: a terminated run's reason would be lost;
- ``RedriveExecution`` does not exist (botocore knows it; moto answers "not implemented").

This answers both, at moto's Step Functions response seam (as ``execution_history`` answers
GetExecutionHistory), on moto's own execution objects. Redrive does what the AWS documentation
("Redriving executions") says, for the top level of a state machine:
- only a Standard execution that ended FAILED, ABORTED or TIMED_OUT, less than 14 days ago, and
  redriven fewer than 1,000 times: else ``ExecutionNotRedrivable``;
- same ARN, status RUNNING again, the history goes on (event ids continue) with an
  ``ExecutionRedriven`` event (``redriveCount``), then the state that did not succeed is entered
  afresh with the input it had, and the run goes on from there; an end publishes its EventBridge
  event again (local_mode.aws), with the new stop date.
What it does not do: AWS redrives only a Map's or Parallel's failed iterations or branches; here
such a state runs again whole.
"""

import datetime
import functools
import json
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from moto.core.exceptions import AWSError
from moto.stepfunctions.parser.api import ExecutionRedrivenEventDetails, ExecutionStatus, HistoryEventType
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.utils import TMP_THREADS
from moto.stepfunctions.responses import StepFunctionResponse

REDRIVABLE = (ExecutionStatus.FAILED, ExecutionStatus.ABORTED, ExecutionStatus.TIMED_OUT)
REDRIVE_WINDOW = datetime.timedelta(days=14)
MAX_REDRIVES = 1000
ENVIRONMENT_WAIT_SECONDS = 5.0


class ExecutionNotRedrivable(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _epoch_seconds(moment: datetime.datetime) -> float:
    return moment.timestamp()


def _kind(event: Any) -> str:
    """An event's type as text: moto keeps it as an enum, a client reads it as a string."""
    kind = event["type"]
    return str(getattr(kind, "value", kind))


def _program_begun(execution: Any) -> bool:
    """moto's program has entered its first state: an event after ExecutionStarted (or after
    ExecutionRedriven, for a redriven run)."""
    env = execution.exec_worker.env
    if env is None:
        return False
    with env.event_manager._mutex:
        events = env.event_manager._history_event_list
        return bool(events) and _kind(events[-1]) not in ("ExecutionStarted", "ExecutionRedriven")


def stop_execution(self: StepFunctionResponse) -> str:
    """StopExecution with its ``error`` and ``cause`` kept, as AWS keeps them."""
    # The executing backend's execution (moto.stepfunctions.parser), typed as the plain one.
    execution: Any = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    error, cause = self._get_param("error"), self._get_param("cause")
    if execution.exec_status == ExecutionStatus.RUNNING:
        # A run started a moment ago: moto's worker thread may not have begun its program yet, and
        # moto ignores a stop until it has, or ends the run ABORTED without its ExecutionAborted
        # event if its first state has not been entered yet (AWS stops it all the same).
        deadline = time.monotonic() + ENVIRONMENT_WAIT_SECONDS
        while not _program_begun(execution) and time.monotonic() < deadline:
            time.sleep(0.001)
    if execution.exec_status == ExecutionStatus.RUNNING:
        # DescribeExecution and the status change event carry them, as AWS's do.
        execution.error, execution.cause = error, cause
        execution.stop(stop_date=_now(), error=error, cause=cause)
    return json.dumps({"stopDate": _epoch_seconds(execution.stop_date or _now())})


def restart_point(definition: dict[str, Any], events: list[dict[str, Any]], run_input: Any) -> tuple[str, Any]:
    """The top-level state to enter again, with its input: the last one entered and never exited
    (the one that failed, was stopped or timed out); the start, with the run's input, if none."""
    top_level = set(definition.get("States", {}))
    open_state: tuple[str, Any] | None = None
    for event in events:
        kind = _kind(event)
        if kind.endswith("StateEntered"):
            details = event.get("stateEnteredEventDetails", {})
            if details.get("name") in top_level:
                text = details.get("input")
                open_state = (details["name"], json.loads(text) if text else {})
        elif kind.endswith("StateExited"):
            details = event.get("stateExitedEventDetails", {})
            if open_state is not None and details.get("name") == open_state[0]:
                open_state = None
    if open_state is None:
        return definition["StartAt"], run_input
    return open_state


def redrive(execution: Any) -> datetime.datetime:
    """Redrive ``execution`` (moto's) as AWS does; answers the redrive date."""
    worker = execution.exec_worker
    env = worker.env if worker is not None else None
    if execution.sm_type != "STANDARD" or env is None:
        raise ExecutionNotRedrivable("Execution is not redrivable: only Standard executions can be redriven")
    if execution.exec_status not in REDRIVABLE:
        raise ExecutionNotRedrivable(f"Execution is {execution.exec_status.value} and cannot be redriven")
    if execution.stop_date is not None and _now() - execution.stop_date > REDRIVE_WINDOW:
        raise ExecutionNotRedrivable("Execution ended more than 14 days ago and cannot be redriven")
    count = getattr(execution, "redrive_count", 0) + 1
    if count > MAX_REDRIVES:
        raise ExecutionNotRedrivable(f"Execution has been redriven {MAX_REDRIVES} times")

    details = worker._evaluation_details.state_machine_details
    definition = json.loads(details.definition)
    manager = env.event_manager
    with manager._mutex:
        events = list(manager._history_event_list)
    state_name, state_input = restart_point(definition, events, execution.input_data)
    program = AmazonStateLanguageParser.parse(json.dumps({**definition, "StartAt": state_name}))[0]

    fresh = worker._get_evaluation_environment()
    fresh.event_manager = manager  # one history: ids go on from the run's last event
    fresh.states.reset(input_value=state_input)
    fresh.event_manager.add_event(
        context=fresh.event_history_context,
        event_type=HistoryEventType.ExecutionRedriven,
        # EventDetails (moto's TypedDict) lacks this key; the event is as AWS writes it.
        event_details=cast(
            EventDetails, {"executionRedrivenEventDetails": ExecutionRedrivenEventDetails(redriveCount=count)}
        ),
        update_source_event_id=False,
    )
    redriven_at = _now()
    execution.redrive_count, execution.redrive_date = count, redriven_at
    execution.exec_status, execution.stop_date = ExecutionStatus.RUNNING, None
    execution.output = execution.error = execution.cause = None
    worker.env = fresh  # StopExecution and GetExecutionHistory now act on the redriven run

    def run() -> None:
        program.eval(fresh)
        worker._execution_communication.terminated()  # status, stop date, output; the EventBridge event

    thread = threading.Thread(target=run, name="local-redrive", daemon=True)
    TMP_THREADS.append(thread)
    thread.start()
    return redriven_at


def redrive_execution(self: StepFunctionResponse) -> str:
    execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    return json.dumps({"redriveDate": _epoch_seconds(redrive(execution))})


def _stopped_stays_stopped(method: Callable[..., None]) -> Callable[..., None]:
    """moto's ``Environment.set_error``: a run stopped while a Lambda task was in flight fails
    (``'dict' object has no attribute 'region'``) when the task returns into the stopped program.
    On AWS the run is ABORTED whatever its task does after the stop: an error after the stop is
    dropped, so the program ends as stopped (``ExecutionAborted``)."""

    @functools.wraps(method)
    def set_error(self: Environment, error: Any) -> None:
        with self._state_mutex:
            if isinstance(self._program_state, ProgramStopped):
                return
        method(self, error)

    set_error.__wrapped_by_local_mode__ = True  # type: ignore[attr-defined]
    return set_error


def install() -> None:
    StepFunctionResponse.stop_execution = stop_execution  # type: ignore[method-assign, assignment]
    if not getattr(Environment.set_error, "__wrapped_by_local_mode__", False):
        Environment.set_error = _stopped_stays_stopped(Environment.set_error)  # type: ignore[method-assign]
    StepFunctionResponse.redrive_execution = redrive_execution  # type: ignore[attr-defined]
