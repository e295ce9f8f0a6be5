"""Start a workflow run and answer when the caller's wait condition holds."""

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .adapters.aws import WAITING_CALL_WORST_SECONDS
from .adapters.idempotency_store import IdempotencyStore
from .adapters.run_records import RunRecord, RunRecords
from .adapters.run_signals import RunEnded, RunSignals, WaitersFull
from .adapters.stepfunctions import HistoryCursor, StartedExecution, StepFunctionsGateway
from .adapters.wakeups import WakeupQueue, WakeupQueues, is_named_for, run_name
from .catalog import WorkflowCatalog, WorkflowVersion
from .errors import (
    FieldError,
    IdempotencyConflict,
    InvalidRequest,
    PayloadTooLarge,
    RunNotFound,
    ServiceUnavailable,
)
from .history import RunSnapshot, fold
from .idempotency import KeyRecord, KeyState, Move, decide, first_claim
from .models import Strategy, WorkflowRun
from .parameters import RunOptions
from .waiting import CallBudget, PollSchedule, wait_budget, wait_is_over

# Step Functions refuses execution input over 256 KiB.
MAX_INPUT_BYTES = 256 * 1024
MAX_INPUT_DEPTH = 100
# Rounds of "write, lose the race, look again" before a contended key answers 503.
MAX_KEY_ROUNDS = 5
# What the answer itself takes once the run is read (build, serialize, hand to API Gateway): the
# part of ANSWER_MARGIN_SECONDS a write after the wait must leave alone.
ANSWER_SECONDS = 0.25


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
    replayed: bool = False
    waited_seconds: float = 0.0
    aws_calls: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Launch:
    """The run a call waits on: one it started, or (replayed) one its idempotency key named."""

    workflow: WorkflowVersion
    execution_name: str
    started: StartedExecution | None
    replayed: bool


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
        *,
        max_wait_seconds: int,
        answer_margin_seconds: float,
        lease_seconds: float = 40.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        schedule: Callable[[], PollSchedule] = PollSchedule,
        read_budget: CallBudget | None = None,
        run_signals: RunSignals | None = None,
        history_first_seconds: float = 2.0,
        history_fallback_seconds: float = 5.0,
        wakeups: WakeupQueues | None = None,
    ) -> None:
        self._catalog = catalog
        self._sfn = stepfunctions
        self._records = run_records
        self._keys = idempotency_keys
        self._max_wait = max_wait_seconds
        self._margin = answer_margin_seconds
        self._lease = lease_seconds
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._schedule = schedule
        self._budget = read_budget or CallBudget(rate=20, burst=400)
        self._signals = run_signals
        self._history_first = history_first_seconds
        self._history_fallback = history_fallback_seconds
        self._wakeups = wakeups

    # --- the two operations ------------------------------------------------------------------

    def execute(self, command: StartCommand, remaining_seconds: Callable[[], float]) -> RunAnswer:
        options = command.options
        workflow = self._catalog.resolve(command.workflow, command.version)
        self._check_task_refs(workflow, options.wait_until_task_refs)
        workflow_input = encode_input(command.input)

        calls: Counter[str] = Counter()
        record = RunRecord(command.correlation_id, command.priority)
        with contextlib.ExitStack() as leased:
            # Leased before the start: a run without a key is named for the queue its call waits on.
            queue = self._queue_for(options, remaining_seconds(), leased, calls)
            if options.idempotency_key is None or options.on_conflict is None:
                launch = self._start(workflow, run_name(uuid.uuid4().hex, queue), workflow_input, record, calls)
            else:
                launch = self._start_with_key(
                    workflow, options.idempotency_key, options.on_conflict, workflow_input, record, calls
                )
            workflow_id = launch.workflow.workflow_id(launch.execution_name)
            if launch.replayed:
                calls["GetItem"] += 1
                record = self._records.get(workflow_id)

            begun, left = self._clock(), remaining_seconds()
            deadline = begun + wait_budget(options.wait_for_seconds, self._max_wait, left, self._margin)
            at = launch.started.start_time if launch.started else 0
            initial = RunSnapshot(input=command.input, output={}, create_time=at, update_time=at)
            cursor = HistoryCursor(launch.workflow.execution_arn(launch.execution_name))
            if launch.replayed:
                # The run is not ours: its input, status and times come from its history, not the
                # call. Read with botocore's retries: an answer made up without it (status RUNNING,
                # no input) would be wrong, so if AWS still refuses, the caller is told to retry (503).
                with contextlib.suppress(RunNotFound):  # started a moment ago by the key's other caller
                    self._sfn.read_new_events(cursor, calls)
                initial = fold(cursor.events.values()) if cursor.events else RunSnapshot()
            named = queue is not None and is_named_for(launch.execution_name, queue)
            run, timed_out = self._wait(
                cursor, initial, options.wait_until_task_refs, deadline, begun + left, calls, queue, named
            )
        answer = self._answer(run, workflow_id, options.request_id, record, signal_timeout=timed_out, calls=calls)
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

    # --- starting ------------------------------------------------------------------------------

    def _start(
        self,
        workflow: WorkflowVersion,
        execution_name: str,
        workflow_input: str,
        record: RunRecord,
        calls: Counter[str],
    ) -> _Launch:
        if record != RunRecord():
            # Before the start: a failed write leaves nothing running that the caller cannot see.
            calls["PutItem"] += 1
            self._records.put(workflow.workflow_id(execution_name), record)
        started = self._sfn.start_or_find(workflow.state_machine_arn, execution_name, workflow_input, calls)
        return _Launch(workflow, execution_name, started, replayed=started is None)

    def _start_with_key(
        self,
        workflow: WorkflowVersion,
        key: str,
        strategy: Strategy,
        workflow_input: str,
        record: RunRecord,
        calls: Counter[str],
    ) -> _Launch:
        """SPEC's idempotency matrix on conditional writes: claim the key, or act on its record.

        Every write either wins (this call holds the key and starts the generation's run) or
        hands back the record that beat it, and the decision is made again on that record.
        """
        owner = uuid.uuid4().hex
        mine = first_claim(workflow.name, key, workflow.version, owner, self._wall() + self._lease)
        calls["PutItem"] += 1
        seen = self._keys.claim_first(mine)
        for _ in range(MAX_KEY_ROUNDS):
            if seen is None:
                return self._start_claimed(mine, workflow_input, record, calls)
            existing = self._catalog.resolve(seen.workflow, seen.version)
            existing_arn = existing.execution_arn(seen.execution_name)
            move = decide(seen, strategy, self._wall())
            if move is Move.JOIN:
                if seen.state is KeyState.CLAIMED:
                    # Being started by another call: make sure it is, in case that call dies now.
                    self._sfn.start_or_find(existing.state_machine_arn, seen.execution_name, workflow_input, calls)
                return _Launch(existing, seen.execution_name, None, replayed=True)
            if move is Move.TAKE_OVER:
                mine = seen.claimed_by(owner, seen.version, self._wall() + self._lease)
                calls["PutItem"] += 1
                seen = self._keys.take_over(seen, mine, self._wall())
                if seen is None and self._sfn.status_of(existing_arn, calls) is not None:
                    # The dead claimant got as far as starting the run: the key is simply started.
                    calls["PutItem"] += 1
                    self._keys.mark_started(mine)
                    seen = KeyRecord(mine.workflow, mine.key, mine.version, mine.generation, KeyState.STARTED)
                continue
            if move is Move.CHECK_STATUS:
                status = self._sfn.status_of(existing_arn, calls)
                if status is not None and status.is_terminal:
                    mine = seen.claimed_by(owner, workflow.version, self._wall() + self._lease, seen.generation + 1)
                    calls["PutItem"] += 1
                    seen = self._keys.claim_next(seen, mine)
                    continue
            raise IdempotencyConflict(
                f"A run with this idempotency key exists for workflow {workflow.name} (strategy {strategy})",
                existing.workflow_id(seen.execution_name),
            )
        raise ServiceUnavailable("The idempotency key is contended by many calls at once; retry", 1)

    def _start_claimed(self, claim: KeyRecord, workflow_input: str, record: RunRecord, calls: Counter[str]) -> _Launch:
        """This call holds the key: start the generation's run, then record that it exists."""
        workflow = self._catalog.resolve(claim.workflow, claim.version)
        try:
            launch = self._start(workflow, claim.execution_name, workflow_input, record, calls)
        except ServiceUnavailable:
            # Let a retry claim the key at once rather than wait out the lease. If this write
            # fails too, the lease runs out and the retry takes the key over then.
            with contextlib.suppress(ServiceUnavailable):
                self._keys.release(claim)
            raise
        # If this write fails, the run exists all the same: whoever finds the claim stale sees
        # the run and marks the key started.
        calls["PutItem"] += 1
        with contextlib.suppress(ServiceUnavailable):
            self._keys.mark_started(claim)
        return launch

    # --- waiting -------------------------------------------------------------------------------

    def _queue_for(
        self, options: RunOptions, remaining: float, leased: contextlib.ExitStack, calls: Counter[str]
    ) -> WakeupQueue | None:
        """The wake-up queue this call will wait on, leased until ``leased`` closes; None when it
        will poll instead: a task reference is awaited (EventBridge says nothing of tasks), the
        wait is too short for SQS's whole seconds, or SQS refuses a queue."""
        if self._wakeups is None or self._signals is None or options.wait_until_task_refs:
            return None
        if wait_budget(options.wait_for_seconds, self._max_wait, remaining, self._margin) <= 1.0:
            return None  # after the start, under a second would be left: nothing to wait on SQS for
        try:
            return leased.enter_context(self._wakeups.lease(calls))
        except ServiceUnavailable:
            return None

    def _look(self, cursor: HistoryCursor, run: RunSnapshot, calls: Counter[str]) -> tuple[RunSnapshot, bool]:
        """Read what is new in the run's history: (run as it now stands, whether AWS throttled)."""
        try:
            if self._sfn.read_new_events(cursor, calls, waiting=True):
                run = fold(cursor.events.values())
        except RunNotFound:
            pass  # right after the start, history is eventually consistent
        except ServiceUnavailable:
            return run, True
        return run, False

    def _signal(self, execution_arn: str, calls: Counter[str]) -> tuple[RunEnded | None, bool]:
        """The run's end as run_status recorded it: (end or None, whether DynamoDB refused)."""
        assert self._signals is not None
        calls["GetItem"] += 1
        try:
            return self._signals.ended(execution_arn), False
        except ServiceUnavailable:
            return None, True

    def _wait(
        self,
        cursor: HistoryCursor,
        initial: RunSnapshot,
        wait_until_task_refs: frozenset[str],
        deadline: float,
        answer_by: float,
        calls: Counter[str],
        queue: WakeupQueue | None = None,
        named_for_queue: bool = False,
    ) -> tuple[RunSnapshot, bool]:
        """Look at the run until the wait condition holds or the deadline (``clock`` time) comes.

        Answers (run, timed_out); ``answer_by`` (``clock`` time) is when the answer must be out
        at the latest (the Lambda's or API Gateway's limit). Throttling and outages only lengthen
        the pauses: a waiting caller gets the run as last seen, never an error, and at least one
        look is taken when the budget allows it, so a run that already ended is reported as ended.

        With a ``queue`` the call blocks on it for the run's end (``_wait_awake``); the run is
        ``named_for_queue`` when run_status sends its end there without the run's item. For a
        task reference (EventBridge says nothing of tasks), or when SQS fails, it polls
        (``_wait_polling``).
        """
        if wait_is_over(initial, wait_until_task_refs):
            return initial, False
        if deadline <= self._clock():
            return initial, True
        run = initial
        # SQS waits whole seconds: with less than one left, a queue could not be waited on.
        awake = deadline - self._clock() >= 1.0 and not wait_until_task_refs
        if queue is not None and self._signals is not None and awake:
            run, timed_out, registered = self._wait_awake(cursor, run, queue, deadline, calls, named_for_queue)
            if registered and timed_out is not False:  # answered (or polling) before the end
                self._leave(cursor.execution_arn, queue, answer_by, calls)
            if timed_out is not None:
                return run, timed_out
        # No end is recorded on the item of a run named for its queue: then only the history tells.
        return self._wait_polling(cursor, run, wait_until_task_refs, deadline, calls, item=not named_for_queue)

    def _wait_awake(
        self,
        cursor: HistoryCursor,
        run: RunSnapshot,
        queue: WakeupQueue,
        deadline: float,
        calls: Counter[str],
        named_for_queue: bool = False,
    ) -> tuple[RunSnapshot, bool | None, bool]:
        """Wait for the run's end on ``queue``, reading the history only when it may say more.

        Answers (run, timed_out, registered): timed_out None when the queue failed and the call
        must poll; registered when the queue is on the run's item (no end was recorded yet). A
        run ``named_for_queue`` needs no registration: run_status finds the queue in its name. Its
        call never polls either: a failed receive is a wake-up that did not come, and is tried
        again at the next wait (a lost message's end comes from the history reads below).
        The history is read: a moment after the start (a run that is over at once); every second
        in the first seconds (a container's new queue may miss its first wake-up, and EventBridge's
        delivery adds to the lag of short runs); when woken; every fallback seconds in case an
        event is late or lost; and at the deadline. Between reads the call blocks on the queue.
        """
        assert self._signals is not None
        begun = self._clock()
        woken = False
        if not named_for_queue:
            calls["UpdateItem"] += 1
            try:
                woken = self._signals.register(cursor.execution_arn, queue.url) is not None
            except (ServiceUnavailable, WaitersFull):
                return run, None, False
        registered = not woken and not named_for_queue
        schedule = self._schedule()
        if not woken:
            self._sleep(min(schedule.next_pause(), max(0.0, deadline - self._clock())))
        while True:
            read = self._read_history(cursor, run, deadline, calls)
            if read is None:
                return run, True, registered  # over budget until the deadline: the run as last seen
            run, throttled, _ = read
            if wait_is_over(run, frozenset()):
                return run, False, registered
            now = self._clock()
            if now >= deadline:
                return run, True, registered
            if woken and throttled:
                # The end was heard of but AWS refused the read: read again after backing off.
                self._sleep(min(schedule.next_pause(throttled=True), deadline - now))
                continue
            next_read = now + (1.0 if now - begun < self._history_first else self._history_fallback)
            woken = False
            while not woken and (now := self._clock()) < min(next_read, deadline):
                seconds = min(max(1, round(next_read - now)), int(deadline - now))
                if seconds < 1:
                    self._sleep(deadline - now)  # SQS waits whole seconds: the last look comes at the deadline
                    break
                try:
                    woken = queue.wait(cursor.execution_arn, seconds, calls)
                except ServiceUnavailable:
                    if not named_for_queue:
                        return run, None, registered
                    # Nothing but this queue and the history tells of this run's end (its item
                    # is never written): wait out the receive's time, read on schedule, and try
                    # the queue again, where the end still is (kept 60 s) once SQS answers.
                    self._sleep(max(0.0, min(now + seconds, deadline) - self._clock()))

    def _leave(self, execution_arn: str, queue: WakeupQueue, answer_by: float, calls: Counter[str]) -> None:
        """A call done waiting on its queue before the run's end (a 206, or a queue that failed)
        takes the queue off the run's item, so the item lists the calls still waiting
        (``RunSignals.leave``). Only while the time left still holds the write at its slowest
        besides the answer: a late answer would cost the caller more than a queue left on the item
        (run_status's end takes it off anyway)."""
        assert self._signals is not None
        if self._clock() + WAITING_CALL_WORST_SECONDS + ANSWER_SECONDS > answer_by:
            return
        calls["UpdateItem"] += 1
        with contextlib.suppress(ServiceUnavailable):
            self._signals.leave(execution_arn, queue.url)

    def _wait_polling(
        self,
        cursor: HistoryCursor,
        initial: RunSnapshot,
        wait_until_task_refs: frozenset[str],
        deadline: float,
        calls: Counter[str],
        item: bool = True,
    ) -> tuple[RunSnapshot, bool]:
        """Look at the run on a backing-off schedule until the wait condition holds or the deadline.

        A look reads the history (an account-wide quota) in the first seconds, where most runs
        end and EventBridge's delivery delay would add to the answer's lag; for a task reference;
        for the last look; and now and then in case an event is lost. Otherwise it reads
        run_status's item in DynamoDB, and the history only once that item says the run ended.
        Without the ``item`` (run_status records no end for the run), every look reads the history.
        """
        begun = self._clock()
        schedule = self._schedule()
        run, throttled = initial, False
        # news: the end the item last reported; acted_on: the end a history read went through after.
        history_read_at, news, acted_on = begun, None, None
        while True:
            pause = schedule.next_pause(throttled)
            last_look = self._clock() + pause >= deadline
            self._sleep(max(0.0, deadline - self._clock()) if last_look else pause)
            now = self._clock()
            history_due = (
                self._signals is None
                or not item
                or bool(wait_until_task_refs)
                or last_look
                or now - begun < self._history_first
                or now - history_read_at >= self._history_fallback
            )
            if not history_due:
                news, throttled = self._signal(cursor.execution_arn, calls)
                if news is None or news == acted_on:
                    continue  # no news: the history has nothing new to say about the run's end
            read = self._read_history(cursor, run, deadline, calls)
            if read is None:
                return run, True  # over budget until the deadline: answer with the run as last seen
            run, throttled, queued = read
            if not throttled:
                # A throttled read leaves the news pending, so the next look tries again (after
                # the longer pause) rather than waiting for the fallback.
                history_read_at, acted_on = self._clock(), news
            # Queued for the budget is the process's own throttle: back off as for AWS's.
            throttled = throttled or queued
            if wait_is_over(run, wait_until_task_refs):
                return run, False
            if last_look:
                return run, True

    def _read_history(
        self, cursor: HistoryCursor, run: RunSnapshot, deadline: float, calls: Counter[str]
    ) -> tuple[RunSnapshot, bool, bool] | None:
        """One history read within the process's read budget: (run, whether AWS throttled, whether
        it queued for the budget), or None when the budget allows no read before the deadline."""
        queued = self._budget.reserve()
        if queued:
            if self._clock() + queued > deadline:
                return None
            # Only then: time.sleep(0) gives up the interpreter to any other thread that can run
            # (in local mode, the one that just woke this call), and the read waited on it.
            self._sleep(queued)
        run, throttled = self._look(cursor, run, calls)
        return run, throttled, queued > 0

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
