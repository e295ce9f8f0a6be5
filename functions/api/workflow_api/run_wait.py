"""How a call waits for its run: the end from run_status's item, the tasks from one history read.

Step Functions' reads are quotas of the whole account (GetExecutionHistory refills 20 a second,
DescribeExecution 15), shared by every waiting call of every container. So a call that waits for
the run's end never polls Step Functions: it polls the run's item in DynamoDB (``RunSignals``),
where run_status writes the end from EventBridge's event, and reads the history once, to answer
with ``tasks``. Only a wait for a task (``waitUntilTaskRef``) needs the run's progress, which no
event carries: that wait reads the history, paced to about one read a second.

The answer never says RUNNING for a run that has ended: EventBridge delivers best effort, so a
call waiting for the end asks Step Functions (DescribeExecution) every ``end_check_seconds`` of
its wait, and any call that nothing told of the end asks once more before it answers 206 (a task
wait whose last history read was refused reads the item, then DescribeExecution). Nor does it
answer an end the run has left: a joined run's item may hold an end from before a redrive, which
is answered only once a Step Functions read (the history or DescribeExecution) has not shown the
run running again; if both refuse the whole wait long, the answer is a 503.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from .adapters.aws import WAITING_CALL_WORST_SECONDS
from .adapters.run_signals import RunSignals
from .adapters.stepfunctions import HistoryCursor, StepFunctionsGateway
from .errors import RunNotFound, ServiceUnavailable
from .history import RunEnd, RunSnapshot, fold
from .waiting import PollSchedule, wait_is_over

# What the answer itself takes once the run is read (build, serialize, hand to API Gateway).
ANSWER_SECONDS = 0.25


def end_schedule() -> PollSchedule:
    """Polls of the run's item: 50 ms first, then up to one every 200 ms. A strongly consistent
    GetItem of ~1 KB costs one read unit ($0.25 a million on demand): 5 a second for 25 s is ~$0.03
    per 1,000 calls, and the ceiling adds at most ~200 ms to EventBridge's own delay."""
    return PollSchedule(first=0.05, factor=1.6, cap=0.2)


def task_schedule() -> PollSchedule:
    """History reads while a task is awaited: 0.25, 0.5, 1 s, then about one a second (0.6 to
    1.25 s with jitter); throttling doubles the pause up to 5 s."""
    return PollSchedule(first=0.25, factor=2.0, cap=1.25)


@dataclass(frozen=True)
class Wait:
    """One call's wait: its run, what it knows of it already, and when it must stop (``clock`` time)."""

    execution_arn: str
    known: RunSnapshot  # the input the call sent and the start's time; input None for a joined run
    task_refs: frozenset[str]
    include_tasks: bool
    deadline: float  # when the caller's waitForSeconds (clamped) runs out
    answer_by: float  # when the answer must be out at the latest (the Lambda's or API Gateway's limit)
    # A run the call joined (by idempotency key) may have ended long ago, its event lost: if its
    # item has no end at the first look, Step Functions is asked at once, not after end_check_seconds.
    ask_first: bool = False


class RunWaiter:
    def __init__(
        self,
        stepfunctions: StepFunctionsGateway,
        signals: RunSignals,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        end_check_seconds: float = 15.0,
        end_polls: Callable[[], PollSchedule] = end_schedule,
        task_polls: Callable[[], PollSchedule] = task_schedule,
    ) -> None:
        self._sfn = stepfunctions
        self._signals = signals
        self._clock = clock
        self._sleep = sleep
        self._end_check = end_check_seconds
        self._end_polls = end_polls
        self._task_polls = task_polls

    def wait(self, wait: Wait, calls: Counter[str]) -> tuple[RunSnapshot, bool]:
        """(the run as the answer shows it, whether the wait ran out before its condition held)."""
        cursor = HistoryCursor(wait.execution_arn)
        if wait.task_refs:
            return self._wait_for_task(wait, cursor, calls)
        end = self._wait_for_end(wait, calls)
        while end is not None:
            run = self._answer_with(end, wait.known, wait, cursor, calls)
            if run is not None:
                return run, False
            # The run was redriven (retried) after that end and runs again: only a later end
            # answers now, which the item gets when the run ends again.
            end = self._wait_for_end(wait, calls, after=end.stop_date)
        if end is None:
            # The item says nothing of an end yet. Before a 206, Step Functions is asked once (a
            # late or lost event must not make an ended run read RUNNING): the history when the
            # answer shows tasks (or needs a joined run's input), else DescribeExecution.
            if wait.include_tasks or wait.known.input is None:
                read = self._history(wait, cursor, calls)
                if read is not None:
                    return read, not read.status.is_terminal
            end = self._asked(wait, calls) if self._time_for_a_call(wait) else None
            if end is None:
                return wait.known, True
            return self._answer_with(end, wait.known, wait, None, calls) or wait.known, False

    # --- the run's end ------------------------------------------------------------------------

    def _wait_for_end(self, wait: Wait, calls: Counter[str], after: int = 0) -> RunEnd | None:
        """Poll the run's item until it holds an end later than ``after`` (epoch ms; or the
        deadline: None), asking Step Functions every ``end_check_seconds`` in case the event never
        comes."""
        schedule = self._end_polls()
        check_at = self._clock() + (0.0 if wait.ask_first else self._end_check)
        # A run just started cannot have ended yet; a joined one is looked at once, even with no
        # time to wait (waitForSeconds 0), when a stall would still leave the answer its time.
        refused, look_now = False, wait.ask_first and self._time_for_a_call(wait)
        while True:
            now = self._clock()
            if not look_now:
                if now >= wait.deadline:
                    return None
                self._sleep(min(schedule.next_pause(throttled=refused), wait.deadline - now))
            look_now = False
            end, refused = self._signal(wait.execution_arn, calls)
            if end is not None and end.stop_date > after:
                return end
            now = self._clock()
            if check_at <= now < wait.deadline:  # at the deadline, the answer's own read asks
                end = self._asked(wait, calls)
                if end is not None and end.stop_date > after:
                    return end
                check_at = self._clock() + self._end_check

    def _signal(self, execution_arn: str, calls: Counter[str]) -> tuple[RunEnd | None, bool]:
        """The end run_status recorded: (end or None, whether DynamoDB refused the read)."""
        calls["GetItem"] += 1
        try:
            return self._signals.ended(execution_arn), False
        except ServiceUnavailable:
            return None, True

    def _asked(self, wait: Wait, calls: Counter[str]) -> RunEnd | None:
        """The end as Step Functions tells it (DescribeExecution, tried once); None while the run
        runs, or when AWS refused: the caller then keeps what it knew."""
        return self._ask(wait, calls)[0]

    def _ask(self, wait: Wait, calls: Counter[str]) -> tuple[RunEnd | None, bool]:
        """(the end DescribeExecution tells, or None while the run runs; whether AWS refused, or
        there was no time to ask)."""
        if not self._time_for_a_call(wait):
            return None, True
        try:
            return self._sfn.end_of(wait.execution_arn, calls), False
        except ServiceUnavailable:
            return None, True

    def _answer_with(
        self, end: RunEnd, known: RunSnapshot, wait: Wait, cursor: HistoryCursor | None, calls: Counter[str]
    ) -> RunSnapshot | None:
        """The ended run: status and output from ``end``; the tasks (and a joined run's input, or an
        output too large for the event) from one history read, unless the caller wants no tasks.
        A read that AWS refuses leaves the answer's status and output as ``end`` says. None when
        the history shows the run running again after ``end`` (redriven)."""
        run = end.snapshot(known)
        # A joined run is read once whatever the caller asked: its item may hold an end from
        # before a redrive (a retry), which only the history tells apart.
        needs_history = wait.include_tasks or wait.ask_first or run.input is None or not end.output_known
        if cursor is None or not needs_history:
            return run
        read = self._history(wait, cursor, calls)
        if read is not None and read.status.is_terminal:
            return read  # the history is whole: the same end, with every task
        if read is not None and read.update_time > end.stop_date:
            return None  # events after the end: a redrive (a history that lags ends before it)
        schedule = self._task_polls()
        while read is None and wait.ask_first:
            # A joined run's item may hold an end from before a redrive, and the history that
            # would tell was refused: Step Functions is asked. While both refuse, both are asked
            # again, backing off, as long as the wait lasts; an end neither ever confirms is not
            # answered (it may be a redriven run's old one): 503, as for any refusal that outlasts
            # the retries (the fault suite's redriven_late_end cases).
            asked, refused = self._ask(wait, calls)
            if not refused:
                if asked is None:
                    return None  # running again: only a later end answers
                end = asked
                break
            pause = schedule.next_pause(throttled=True)
            if self._clock() + pause >= wait.deadline:
                raise ServiceUnavailable("Step Functions refused the reads that would confirm the run's end; retry", 1)
            self._sleep(pause)
            read = self._history(wait, cursor, calls)
            if read is not None and read.status.is_terminal:
                return read
            if read is not None and read.update_time > end.stop_date:
                return None
        if not end.output_known:  # the event had no room for it, and the history did not say it
            end = (self._asked(wait, calls) if self._time_for_a_call(wait) else None) or end
        # The history was refused, or does not show the end yet (its reads lag the event): the
        # end, with the tasks read so far.
        return end.snapshot(read or known)

    # --- a task --------------------------------------------------------------------------------

    def _wait_for_task(self, wait: Wait, cursor: HistoryCursor, calls: Counter[str]) -> tuple[RunSnapshot, bool]:
        """Read the history on ``task_polls`` until an awaited task has completed, the run ended,
        or the deadline; a refused read lengthens the next pause, never fails the call."""
        schedule = self._task_polls()
        run, refused = wait.known, False
        while True:
            pause = schedule.next_pause(throttled=refused)
            now = self._clock()
            last_look = now + pause >= wait.deadline
            if now < wait.deadline:
                self._sleep(wait.deadline - now if last_look else pause)
            read = self._history(wait, cursor, calls)
            refused = read is None
            run = read or run
            if wait_is_over(run, wait.task_refs):
                return run, False
            if last_look:
                if refused:  # the history could not say: Step Functions, or else the item, can
                    end, asked_refused = self._ask(wait, calls)
                    if end is None and asked_refused and not wait.ask_first and self._time_for_a_call(wait):
                        # (A joined run's item may hold an end from before a redrive: not trusted.)
                        end = self._signal(wait.execution_arn, calls)[0]
                    if end is not None:
                        return end.snapshot(run), False
                return run, True

    # --- reads ---------------------------------------------------------------------------------

    def _history(self, wait: Wait, cursor: HistoryCursor, calls: Counter[str]) -> RunSnapshot | None:
        """The run as its history tells it (what is new since the last read); None when AWS refused
        the read or there is no time left for one."""
        if not self._time_for_a_call(wait):
            return None
        try:
            self._sfn.read_new_events(cursor, calls, waiting=True)
        except RunNotFound:
            pass  # right after the start, history is eventually consistent
        except ServiceUnavailable:
            return None
        return fold(cursor.events.values()) if cursor.events else wait.known

    def _time_for_a_call(self, wait: Wait) -> bool:
        """Whether one more call, stalling to its timeouts, still leaves the answer its time."""
        return self._clock() + WAITING_CALL_WORST_SECONDS + ANSWER_SECONDS <= wait.answer_by
