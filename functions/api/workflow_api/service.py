"""Start a workflow run and answer when the caller's wait condition holds."""

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .adapters.aws import CALL_WORST_SECONDS
from .adapters.idempotency_store import IdempotencyStore
from .adapters.run_records import RunRecord, RunRecords
from .adapters.stepfunctions import HistoryCursor, StartedExecution, StepFunctionsGateway
from .catalog import RUN_NAME_PREFIX, WorkflowCatalog, WorkflowVersion
from .errors import (
    FieldError,
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidRequest,
    PayloadTooLarge,
    RunNotFound,
    ServiceUnavailable,
)
from .history import RunSnapshot, fold
from .idempotency import KeyedRequest, KeyRecord, KeyState, Move, decide, fingerprint, first_claim, mismatch
from .models import Strategy, WorkflowRun
from .parameters import RunOptions
from .run_wait import ANSWER_SECONDS, RunWaiter, Wait
from .waiting import wait_budget

# Step Functions refuses execution input over 256 KiB.
MAX_INPUT_BYTES = 256 * 1024
MAX_INPUT_DEPTH = 100
# Rounds of "write, lose the race, look again" before a contended key answers 503.
MAX_KEY_ROUNDS = 5


@dataclass(frozen=True)
class StartCommand:
    workflow: str
    version: int | None
    input: dict[str, Any]
    options: RunOptions
    correlation_id: str | None = None
    priority: int = 0
    include_tasks: bool = True


@dataclass
class RunAnswer:
    run: WorkflowRun
    http_status: int
    started: bool = False
    replayed: bool = False
    waited_seconds: float = 0.0
    aws_calls: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class StartAnswer:
    """A run started without waiting: its workflowId, and whether an earlier call had started it."""

    workflow_id: str
    replayed: bool
    aws_calls: Counter[str]


@dataclass(frozen=True)
class _TimeLeft:
    """When this call's answer is due (``clock`` time): the Lambda's or API Gateway's limit. A
    call to AWS is made only while it can stall to its timeouts and still leave the answer its
    time, so a hanging AWS makes a 503 the caller can retry, never a gateway 504."""

    answer_by: float
    clock: Callable[[], float]

    def allows_a_call(self) -> bool:
        return self.clock() + CALL_WORST_SECONDS + ANSWER_SECONDS <= self.answer_by

    def require_a_call(self, to: str) -> None:
        if not self.allows_a_call():
            raise ServiceUnavailable(f"Too little time is left to {to} before the answer is due; retry", 1)


@dataclass(frozen=True)
class _Launch:
    """The run a call waits on: one it started, or (replayed) one its idempotency key named.
    ``started`` is None when the run was there before this call's start was answered: a joined
    run, or this call's own whose StartExecution answer was lost and whose retry found it ended."""

    workflow: WorkflowVersion
    execution_name: str
    started: StartedExecution | None
    replayed: bool

    @property
    def existed(self) -> bool:
        return self.started is None


def encode_input(workflow_input: dict[str, Any]) -> str:
    """The input as Step Functions will get it, or why it cannot be, before anything starts.

    Canonical JSON (one byte-identical text per input, so a retried start is recognised by Step
    Functions). Refused: nesting deeper than the answer can echo (it carries the input, and task
    data a few levels further down; pydantic serialises ~250 levels), what is not JSON that Step
    Functions reads (NaN, Infinity, lone surrogates), and more than Step Functions' 256 KiB.
    """
    level: list[Any] = [workflow_input]
    for _ in range(MAX_INPUT_DEPTH):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            break
    else:
        raise InvalidRequest(
            "The workflow input is nested too deeply",
            [FieldError("input", f"nested deeper than {MAX_INPUT_DEPTH} levels")],
        )
    try:
        text = json.dumps(workflow_input, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        size = len(text.encode())
    except ValueError:  # UnicodeEncodeError too
        raise InvalidRequest(
            "The workflow input is not valid JSON", [FieldError("input", "holds NaN, Infinity or a lone surrogate")]
        ) from None
    if size > MAX_INPUT_BYTES:
        raise PayloadTooLarge(f"Workflow input is over the {MAX_INPUT_BYTES} byte limit of Step Functions")
    return text


class WorkflowService:
    def __init__(
        self,
        catalog: WorkflowCatalog,
        stepfunctions: StepFunctionsGateway,
        run_records: RunRecords,
        idempotency_keys: IdempotencyStore,
        waiter: RunWaiter,
        *,
        max_wait_seconds: int,
        answer_margin_seconds: float,
        lease_seconds: float = 40.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._catalog = catalog
        self._sfn = stepfunctions
        self._records = run_records
        self._keys = idempotency_keys
        self._waiter = waiter
        self._max_wait = max_wait_seconds
        self._margin = answer_margin_seconds
        self._lease = lease_seconds
        self._clock = clock
        self._wall = wall_clock

    @property
    def catalog(self) -> WorkflowCatalog:
        return self._catalog

    # --- the two operations ------------------------------------------------------------------

    def execute(self, command: StartCommand, remaining_seconds: Callable[[], float]) -> RunAnswer:
        options = command.options
        workflow = self._catalog.resolve(command.workflow, command.version)
        task_refs = self._task_refs(workflow, options)

        calls: Counter[str] = Counter()
        time_left = _TimeLeft(self._clock() + remaining_seconds(), self._clock)
        launch = self._launch(workflow, command, calls, time_left)
        record = RunRecord(command.correlation_id, command.priority)
        workflow_id = launch.workflow.workflow_id(launch.execution_name)
        if launch.replayed and time_left.allows_a_call():  # else answered without its correlationId
            calls["GetItem"] += 1
            record = self._records.get(workflow_id)

        begun, left = self._clock(), remaining_seconds()
        budget = wait_budget(options.wait_for_seconds, self._max_wait, left, self._margin)
        at = launch.started.start_time if launch.started else 0
        # A joined run is not this call's: its input, status and times come from AWS, not the call.
        known = RunSnapshot(input=None if launch.replayed else command.input, output={}, create_time=at, update_time=at)
        if budget <= 0 and not launch.existed:
            run, timed_out = known, True  # waitForSeconds 0: the run as started, no read
        else:
            wait = Wait(
                execution_arn=launch.workflow.execution_arn(launch.execution_name),
                known=known,
                task_refs=task_refs,
                include_tasks=command.include_tasks,
                deadline=begun + budget,
                answer_by=begun + left,
                ask_first=launch.existed,
            )
            run, timed_out = self._waiter.wait(wait, calls)
        answer = self._answer(
            run,
            workflow_id,
            options.request_id,
            record,
            include_tasks=command.include_tasks,
            signal_timeout=timed_out,
            calls=calls,
        )
        answer.started, answer.replayed = not launch.replayed, launch.replayed
        answer.waited_seconds = self._clock() - begun
        return answer

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

    def start(self, command: StartCommand, remaining_seconds: Callable[[], float]) -> StartAnswer:
        """Start a run (or find the one its idempotency key names) and answer at once, without
        reading it: Conductor's ``POST /api/workflow``. The very start ``execute`` makes."""
        workflow = self._catalog.resolve(command.workflow, command.version)
        calls: Counter[str] = Counter()
        time_left = _TimeLeft(self._clock() + remaining_seconds(), self._clock)
        launch = self._launch(workflow, command, calls, time_left)
        return StartAnswer(launch.workflow.workflow_id(launch.execution_name), launch.replayed, calls)

    # --- starting ------------------------------------------------------------------------------

    def _launch(
        self, workflow: WorkflowVersion, command: StartCommand, calls: Counter[str], time_left: _TimeLeft
    ) -> _Launch:
        """Start the command's run, or join the one its idempotency key names."""
        options = command.options
        workflow_input = encode_input(command.input)
        record = RunRecord(command.correlation_id, command.priority)
        if options.idempotency_key is None or options.on_conflict is None:
            return self._start(workflow, RUN_NAME_PREFIX + uuid.uuid4().hex, workflow_input, record, calls, time_left)
        # What the key is bound to: the input, and the version only if the caller named one
        # (absent or 0 is "the latest"); correlationId and priority are metadata (docs/IDEMPOTENCY.md).
        request = KeyedRequest(fingerprint(workflow_input), command.version or None)
        return self._start_with_key(
            workflow, options.idempotency_key, options.on_conflict, request, workflow_input, record, calls, time_left
        )

    def _start(
        self,
        workflow: WorkflowVersion,
        execution_name: str,
        workflow_input: str,
        record: RunRecord,
        calls: Counter[str],
        time_left: _TimeLeft,
    ) -> _Launch:
        if record != RunRecord():
            # Before the start: a failed write leaves nothing running that the caller cannot see.
            time_left.require_a_call("record the run")
            calls["PutItem"] += 1
            self._records.put(workflow.workflow_id(execution_name), record)
        time_left.require_a_call("start the run")
        started = self._sfn.start_or_find(workflow.state_machine_arn, execution_name, workflow_input, calls)
        # Found (None): the name is this call's own (a fresh uuid, or the key generation it holds,
        # started by it or, for it, by a caller of the same request), so the run is this call's,
        # not a replay: botocore retried a start whose answer was lost, and the run has ended.
        return _Launch(workflow, execution_name, started, replayed=False)

    def _start_with_key(
        self,
        workflow: WorkflowVersion,
        key: str,
        strategy: Strategy,
        request: KeyedRequest,
        workflow_input: str,
        record: RunRecord,
        calls: Counter[str],
        time_left: _TimeLeft,
    ) -> _Launch:
        """SPEC's idempotency matrix on conditional writes: claim the key, or act on its record.

        Every write either wins (this call holds the key and starts the generation's run) or
        hands back the record that beat it, and the decision is made again on that record.
        A record made for another request is a 422 before anything else (``decide``), and a run
        is only ever started with the input the key's record was made for: every claim this call
        writes holds ``request``'s fingerprint, and another call's claim is started only when its
        fingerprint is this call's (byte-identical canonical input).
        """
        owner = uuid.uuid4().hex
        mine = first_claim(workflow.name, key, workflow.version, owner, self._wall() + self._lease, request.fingerprint)
        time_left.require_a_call("claim the idempotency key")
        calls["PutItem"] += 1
        try:
            seen = self._keys.claim_first(mine)
        except ServiceUnavailable:
            self._let_go(mine, time_left)  # in case the write was applied and only its answer lost
            raise
        for _ in range(MAX_KEY_ROUNDS):
            if seen is None:
                return self._start_claimed(mine, workflow_input, record, calls, time_left)
            time_left.require_a_call("act on the idempotency key's record")
            existing = self._catalog.resolve(seen.workflow, seen.version)
            existing_arn = existing.execution_arn(seen.execution_name)
            move = decide(seen, strategy, self._wall(), request)
            if move is Move.REFUSE:
                raise IdempotencyKeyReused(
                    f"Idempotency key '{key}' of workflow {workflow.name} was made for another request"
                    f" ({mismatch(seen, request)}); send a new key with a new request",
                    existing.workflow_id(seen.execution_name),
                )
            if move is Move.JOIN:
                if seen.state is KeyState.CLAIMED and seen.fingerprint == request.fingerprint:
                    # Being started by another call of this very request (its input's canonical
                    # text is byte-identical to ours, its version the record's): make sure it is,
                    # in case that call dies now. A legacy claim (no fingerprint) does not say
                    # its input: it is only waited on, and its own lease decides what happens.
                    self._sfn.start_or_find(existing.state_machine_arn, seen.execution_name, workflow_input, calls)
                return _Launch(existing, seen.execution_name, None, replayed=True)
            if move is Move.TAKE_OVER:
                # decide() took the dead claim for this request's (or a legacy claim, which names
                # none): the key becomes bound to this request, and only then may it start a run.
                dead = seen
                mine = dead.claimed_by(owner, request.fingerprint, dead.version, self._wall() + self._lease)
                calls["PutItem"] += 1
                try:
                    seen = self._keys.take_over(dead, mine, self._wall())
                    if seen is not None:
                        continue
                    time_left.require_a_call("look for the run of the key's dead claimant")
                    if self._sfn.status_of(existing_arn, calls) is not None:
                        # The dead claimant got as far as starting the run: the key is simply
                        # started, bound to its request (unknown if it was a legacy claim).
                        started = replace(mine, fingerprint=dead.fingerprint)
                        time_left.require_a_call("mark the idempotency key started")
                        calls["PutItem"] += 1
                        self._keys.mark_started(started)
                        seen = started.started()
                except ServiceUnavailable:
                    self._let_go(mine, time_left)  # the 503's retry must find the key free, not held
                    raise
                continue
            if move is Move.CHECK_STATUS:
                status = self._sfn.status_of(existing_arn, calls)
                if status is not None and status.is_terminal:
                    mine = seen.claimed_by(
                        owner, request.fingerprint, workflow.version, self._wall() + self._lease, seen.generation + 1
                    )
                    time_left.require_a_call("claim the idempotency key for a new run")
                    calls["PutItem"] += 1
                    seen = self._keys.claim_next(seen, mine)
                    continue
            raise IdempotencyConflict(
                f"A run with this idempotency key exists for workflow {workflow.name} (strategy {strategy})",
                existing.workflow_id(seen.execution_name),
            )
        raise ServiceUnavailable("The idempotency key is contended by many calls at once; retry", 1)

    def _start_claimed(
        self, claim: KeyRecord, workflow_input: str, record: RunRecord, calls: Counter[str], time_left: _TimeLeft
    ) -> _Launch:
        """This call holds the key: start the generation's run, then record that it exists.

        ``claim`` is this call's own, written with its request's fingerprint: ``workflow_input``
        is the input the key's record names."""
        workflow = self._catalog.resolve(claim.workflow, claim.version)
        try:
            launch = self._start(workflow, claim.execution_name, workflow_input, record, calls, time_left)
        except ServiceUnavailable:
            self._let_go(claim, time_left)
            raise
        # If this write fails (or there is no time left for it), the run exists all the same:
        # whoever finds the claim stale sees the run and marks the key started.
        if time_left.allows_a_call():
            calls["PutItem"] += 1
            with contextlib.suppress(ServiceUnavailable):
                self._keys.mark_started(claim)
        return launch

    def _let_go(self, claim: KeyRecord, time_left: _TimeLeft) -> None:
        """Release ``claim`` on a 503, so the retry it asks for claims the key at once rather than
        wait out the lease. A conditional write on this call's owner id: a no-op if the call does
        not hold it. If it fails too (or would not fit), the lease runs out and the retry takes
        the key over then."""
        if time_left.allows_a_call():
            with contextlib.suppress(ServiceUnavailable):
                self._keys.release(claim)

    def _task_refs(self, workflow: WorkflowVersion, options: RunOptions) -> frozenset[str]:
        """The task references to wait on, each a state of ``workflow`` (else a 400)."""
        wanted = options.wait_until_task_refs
        if not wanted and options.task_ref_if_a_state is not None:
            # An SDK's "None"/"null" for "no task", unless the workflow has a state of that name.
            return frozenset({options.task_ref_if_a_state}) & self._catalog.task_refs(workflow)
        self._check_task_refs(workflow, wanted)
        return wanted

    def _check_task_refs(self, workflow: WorkflowVersion, wanted: frozenset[str]) -> None:
        if not wanted:
            return
        known = self._catalog.task_refs(workflow)
        unknown = sorted(wanted - known)
        if unknown:
            valid = ", ".join(sorted(known))
            raise InvalidRequest(
                f"waitUntilTaskRef names tasks that {workflow.name} v{workflow.version} does not have",
                [FieldError("waitUntilTaskRef", f"unknown task reference; valid ones: {valid}", ",".join(unknown))],
            )

    @staticmethod
    def _answer(
        run: RunSnapshot,
        workflow_id: str,
        request_id: str,
        record: RunRecord,
        *,
        include_tasks: bool = True,
        signal_timeout: bool = False,
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
        return RunAnswer(run=body, http_status=200 if run.status.is_terminal else 206, aws_calls=calls)
