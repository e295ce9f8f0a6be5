"""WorkflowService and RunWaiter: start a run and answer when the wait condition holds.

The adapters (Step Functions, run_status's item, the run records, the idempotency keys) are small
in-memory fakes; the service, the waiter, its schedules and the history fold are the real ones.
Time is a fake clock that only the fake sleep and each AWS call's latency move forward, so
nothing really sleeps; the schedules' jitter is seeded.
"""

import itertools
import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sfn_history import T0, T0_MS, HistoryBuilder, hello_world

from workflow_api.adapters.aws import CALL_WORST_SECONDS, WAITING_CALL_WORST_SECONDS
from workflow_api.adapters.run_records import RunRecord
from workflow_api.adapters.stepfunctions import AwsThrottled, AwsUnavailable, HistoryCursor, StartedExecution
from workflow_api.catalog import WorkflowCatalog, tagged
from workflow_api.errors import InvalidRequest, PayloadTooLarge, RunNotFound, ServiceUnavailable, WorkflowNotFound
from workflow_api.history import RunEnd, epoch_millis
from workflow_api.idempotency import KeyRecord, KeyState
from workflow_api.parameters import RunOptions
from workflow_api.run_wait import ANSWER_SECONDS, RunWaiter, end_schedule, task_schedule
from workflow_api.service import MAX_INPUT_BYTES, StartCommand, WorkflowService
from workflow_api.waiting import PollSchedule

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:{}"
MACHINES = {
    "hello_world": {1: ARN.format("hello_world-v1"), 2: ARN.format("hello_world-v2")},
    "slow_steps": {1: ARN.format("slow_steps-v1")},
}
TASK_REFS = {
    ARN.format("hello_world-v1"): frozenset({"greet"}),
    ARN.format("hello_world-v2"): frozenset({"greet"}),
    ARN.format("slow_steps-v1"): frozenset({"start_step", "pause", "final_step"}),
}
READ_LATENCY = 0.02  # seconds one GetExecutionHistory call takes
DESCRIBE_LATENCY = 0.02  # one DescribeExecution
ITEM_LATENCY = 0.005  # one GetItem of run_status's item
DELIVERY = 0.3  # EventBridge's delay: the item holds the end this long after the run ended
MARGIN = 3.5  # ANSWER_MARGIN_SECONDS' default
END_CHECK = 10.0  # END_CHECK_SECONDS' default
END_CAP = end_schedule().cap
TASK_CAP = task_schedule().cap
SFN_READS = ("GetExecutionHistory", "DescribeExecution")
STATUS_OF = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}
Events = list[dict[str, Any]]


def _seconds(event: dict[str, Any]) -> float:
    return (event["timestamp"] - T0).total_seconds()


def _end_in(
    events: Events, *, output: bool = True, workflow_input: bool = True, by: float = float("inf")
) -> tuple[float, RunEnd] | None:
    """(when, the end) as Step Functions reports it outside the history: the latest end at or
    before ``by`` seconds (a redriven run ends again); None for a run that has not ended."""
    end = next((e for e in reversed(events) if e["type"] in STATUS_OF and _seconds(e) <= by), None)
    if end is None:
        return None
    details = next((v for k, v in end.items() if k.endswith("EventDetails")), {})
    started = events[0]["executionStartedEventDetails"]["input"]
    return _seconds(end), RunEnd(
        status=STATUS_OF[end["type"]],
        stop_date=epoch_millis(end["timestamp"]),
        start_date=T0_MS,
        output=details.get("output") if output else None,
        error=details.get("error"),
        cause=details.get("cause"),
        input=started if workflow_input else None,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, "slept a negative time"
        self.sleeps.append(seconds)
        self.now += seconds


def _never(at: float) -> Exception | None:
    return None


def _no_stall(at: float) -> float:
    return 0.0


class FakeStepFunctions:
    """One execution whose events happen at their timestamp, counted from the start. The history
    shows them ``history_lag`` seconds later; DescribeExecution tells the end as soon as it is.
    ``*_failure(at)`` makes a call raise, ``*_stall(at)`` makes it take that much longer first."""

    def __init__(self, clock: FakeClock, events: Events) -> None:
        self.clock = clock
        self.events = events
        self.history_lag = 0.0
        self.starts: list[tuple[str, str, str]] = []
        self.read_times: list[float] = []  # history reads, seconds after the start
        self.describe_times: list[float] = []
        self.waiting_reads: list[bool] = []  # per history read: made as a waiting call's (tried once)?
        self.history_failure: Callable[[float], Exception | None] = _never
        self.describe_failure: Callable[[float], Exception | None] = _never
        self.history_stall: Callable[[float], float] = _no_stall
        self.describe_stall: Callable[[float], float] = _no_stall
        self.started_at: float | None = None
        self.execution_arn: str | None = None

    def since_start(self) -> float:
        return self.clock.now - self.started_at

    def start(self, state_machine_arn: str, execution_name: str, workflow_input: str, calls: Counter[str]):
        calls["StartExecution"] += 1
        self.starts.append((state_machine_arn, execution_name, workflow_input))
        self.started_at = self.clock.now
        prefix, _, machine = state_machine_arn.partition(":stateMachine:")
        self.execution_arn = f"{prefix}:execution:{machine}:{execution_name}"
        return StartedExecution(self.execution_arn, T0_MS)

    def start_or_find(self, state_machine_arn: str, execution_name: str, workflow_input: str, calls: Counter[str]):
        return self.start(state_machine_arn, execution_name, workflow_input, calls)

    def read_new_events(self, cursor: HistoryCursor, calls: Counter[str], *, waiting: bool = False) -> int:
        self.waiting_reads.append(waiting)
        calls["GetExecutionHistory"] += 1
        assert cursor.execution_arn == self.execution_arn
        self.clock.now += self.history_stall(self.since_start()) + READ_LATENCY
        at = self.since_start()
        self.read_times.append(at)
        failure = self.history_failure(at)
        if failure is not None:
            raise failure
        added = 0
        for event in self.events:
            if _seconds(event) <= at - self.history_lag and event["id"] not in cursor.events:
                cursor.events[event["id"]] = event
                added += 1
        return added

    def end_of(self, execution_arn: str, calls: Counter[str]) -> RunEnd | None:
        calls["DescribeExecution"] += 1
        assert execution_arn == self.execution_arn
        self.clock.now += self.describe_stall(self.since_start()) + DESCRIBE_LATENCY
        at = self.since_start()
        self.describe_times.append(at)
        failure = self.describe_failure(at)
        if failure is not None:
            raise failure
        end = _end_in(self.events, by=at)
        redriven = any(
            e["type"] == "ExecutionRedriven" and end is not None and end[0] < _seconds(e) <= at for e in self.events
        )
        return end[1] if end is not None and not redriven else None


class FakeRunSignals:
    """run_status's item: the run's end, readable ``delivery`` seconds after it happened
    (EventBridge's delay), or never when the event is ``lost``. ``output_in_event``/``input_in_event``
    False: the event had no room for them."""

    def __init__(self, sfn: FakeStepFunctions) -> None:
        self.sfn = sfn
        self.delivery = DELIVERY
        self.lost = False
        self.output_in_event = True
        self.input_in_event = True
        self.failure: Callable[[float], Exception | None] = _never
        self.stall: Callable[[float], float] = _no_stall
        self.read_times: list[float] = []

    def ended(self, execution_arn: str) -> RunEnd | None:
        assert execution_arn == self.sfn.execution_arn
        self.sfn.clock.now += self.stall(self.sfn.since_start()) + ITEM_LATENCY
        at = self.sfn.since_start()
        self.read_times.append(at)
        failure = self.failure(at)
        if failure is not None:
            raise failure
        # The latest end whose event has arrived: a redriven run's item keeps its earlier end
        # until the run ends again.
        end = _end_in(
            self.sfn.events, output=self.output_in_event, workflow_input=self.input_in_event, by=at - self.delivery
        )
        if self.lost or end is None:
            return None
        return end[1]


class FakeRunRecords:
    def __init__(self, sfn: FakeStepFunctions) -> None:
        self.sfn = sfn
        self.items: dict[str, RunRecord] = {}
        self.started_before_put: list[bool] = []

    def put(self, workflow_id: str, record: RunRecord) -> None:
        self.started_before_put.append(bool(self.sfn.starts))
        self.items[workflow_id] = record

    def get(self, workflow_id: str) -> RunRecord:
        return self.items.get(workflow_id, RunRecord())


class UnusedIdempotencyStore:
    """No call here gives an idempotency key: touching the key store is a test failure."""

    def __getattr__(self, name: str):
        raise AssertionError(f"idempotency store used without a key: {name}")


class StartedKeyStore:
    """A key whose run another call started: every claim loses to that record."""

    def __init__(self, record: KeyRecord) -> None:
        self.record = record
        self.claims = 0

    def claim_first(self, record: KeyRecord) -> KeyRecord:
        self.claims += 1
        return self.record


def _seeded(schedule: Callable[[], PollSchedule], rng: random.Random) -> Callable[[], PollSchedule]:
    """The waiter's own schedule, its jitter drawn from ``rng``."""

    def make() -> PollSchedule:
        made = schedule()
        made.jitter = rng.random
        return made

    return make


class Harness:
    def __init__(
        self,
        events: Events,
        *,
        max_wait: int = 25,
        margin: float = MARGIN,
        end_check: float = END_CHECK,
        seed: int | None = 7,
        task_polls: Callable[[], PollSchedule] | None = None,
        keys: Any = None,
    ):
        self.clock = FakeClock()
        self.sfn = FakeStepFunctions(self.clock, events)
        self.signals = FakeRunSignals(self.sfn)
        self.records = FakeRunRecords(self.sfn)
        self.loaded: list[str] = []
        self.catalog = WorkflowCatalog(tagged(MACHINES), self._load)
        rng = random.Random(seed)
        self.waiter = RunWaiter(
            self.sfn,
            self.signals,
            clock=self.clock,
            sleep=self.clock.sleep,
            end_check_seconds=end_check,
            end_polls=_seeded(end_schedule, rng),
            task_polls=task_polls or _seeded(task_schedule, rng),
        )
        self.service = WorkflowService(
            self.catalog,
            self.sfn,
            self.records,
            keys or UnusedIdempotencyStore(),
            self.waiter,
            max_wait_seconds=max_wait,
            answer_margin_seconds=margin,
            clock=self.clock,
            wall_clock=lambda: 1_800_000_000.0,
        )

    def _load(self, arn: str) -> frozenset[str]:
        self.loaded.append(arn)
        return TASK_REFS[arn]

    def execute(
        self,
        workflow="hello_world",
        version=None,
        workflow_input=None,
        remaining=900.0,
        include_tasks=True,
        **options,
    ):
        command = StartCommand(
            workflow=workflow,
            version=version,
            input={"name": "Ada"} if workflow_input is None else workflow_input,
            options=RunOptions(**options),
            include_tasks=include_tasks,
        )
        return self.service.execute(command, lambda: remaining)

    def execute_command(self, command: StartCommand, remaining: float = 900.0):
        return self.service.execute(command, lambda: remaining)

    def reads_from(self, seconds: float) -> int:
        return sum(1 for at in self.sfn.read_times if at >= seconds)


def _joined(events: Events, *, started_ago: float, **harness_options: Any) -> tuple[Harness, str]:
    """A harness whose key names a run another call started ``started_ago`` seconds before."""
    key = "order-42"
    record = KeyRecord("hello_world", key, 2, 1, KeyState.STARTED)
    harness = Harness(events, keys=StartedKeyStore(record), **harness_options)
    harness.sfn.execution_arn = harness.catalog.resolve("hello_world", 2).execution_arn(record.execution_name)
    harness.sfn.started_at = harness.clock.now - started_ago
    return harness, key


def _join(harness: Harness, key: str, **options: Any):
    return harness.execute(idempotency_key=key, on_conflict="RETURN_EXISTING", **options)


def _sfn_reads(answer) -> int:
    return sum(answer.aws_calls[name] for name in SFN_READS)


def _hello(step_ms: int = 60) -> Events:
    """hello_world v2: eight events, the last (ExecutionSucceeded) at 7 * step_ms."""
    return hello_world("Ada", 2, step_ms=step_ms).events


def _at(events: Events, kind: str, name: str | None = None) -> float:
    """When (seconds after the start) the first event of that kind (and state name) happens."""
    for event in events:
        if event["type"] == kind and (name is None or event["stateExitedEventDetails"]["name"] == name):
            return _seconds(event)
    raise AssertionError(f"no {kind} {name or ''}")


def _slow_steps(delay_seconds: float = 3, final_step_seconds: float = 0.0) -> Events:
    """slow_steps v1; its final_step's Lambda takes ``final_step_seconds`` longer than the rest."""
    data = {"delaySeconds": delay_seconds}
    output = {"finished": True, "delaySeconds": delay_seconds}
    history = HistoryBuilder(step_ms=60).started(data)
    history.task("start_step", data, data)
    history.wait("pause", data, int(delay_seconds * 1000))
    history.entered("Task", "final_step", data).lambda_attempt(data, output=output)
    history.now_ms += int(final_step_seconds * 1000)
    return history.exited("Task", "final_step", output).succeeded(output).events


def _never_ending() -> Events:
    """A run that enters a long Wait and stays there."""
    history = HistoryBuilder(step_ms=60).started({"delaySeconds": 3600}).task("start_step", {}, {})
    return history.entered("Wait", "pause", {"delaySeconds": 3600}).events


def _ending_at(seconds: float) -> Events:
    """slow_steps whose run ends ``seconds`` after its start."""
    events = _slow_steps(seconds - 0.78)
    assert _at(events, "ExecutionSucceeded") == pytest.approx(seconds, abs=0.01)
    return events


def _tasks(answer) -> dict[str, str]:
    return {t["referenceTaskName"]: t["status"] for t in answer.run.to_body()["tasks"]}


# Answering when the run ends: from run_status's item ---------------------------------------------


def test_answers_200_from_the_signal_with_one_history_read_for_the_tasks():
    events = _hello()
    harness = Harness(events)
    recorded = _at(events, "ExecutionSucceeded") + DELIVERY

    answer = harness.execute(wait_for_seconds=10)

    assert answer.http_status == 200
    body = answer.run.to_body()
    assert body["status"] == "COMPLETED"
    assert body["output"] == {"greeting": "Hello, Ada!", "version": 2}
    assert body["input"] == {"name": "Ada"}
    assert body["signalTimeout"] is False
    assert _tasks(answer) == {"greet": "COMPLETED"}
    assert answer.started is True
    # The item is polled until it holds the end; then the history is read exactly once.
    assert answer.aws_calls["GetExecutionHistory"] == len(harness.sfn.read_times) == 1
    assert harness.sfn.read_times[0] >= recorded
    assert answer.aws_calls["DescribeExecution"] == 0
    assert answer.aws_calls["GetItem"] == len(harness.signals.read_times) > 1
    assert answer.waited_seconds - recorded <= END_CAP + ITEM_LATENCY + READ_LATENCY
    assert answer.aws_calls["StartExecution"] == 1
    # Each read tried once (the wait loop, not botocore, backs off): the deadline holds.
    assert harness.sfn.waiting_reads == [True]


def test_without_tasks_a_started_run_is_answered_with_no_step_functions_call_at_all():
    events = _hello()
    harness = Harness(events)
    recorded = _at(events, "ExecutionSucceeded") + DELIVERY

    answer = harness.execute(wait_for_seconds=10, include_tasks=False)

    assert answer.http_status == 200
    body = answer.run.to_body()
    assert (body["status"], body["output"], body["input"]) == (
        "COMPLETED",
        {"greeting": "Hello, Ada!", "version": 2},
        {"name": "Ada"},
    )
    assert "tasks" not in body
    assert body["createTime"] == T0_MS
    assert body["updateTime"] == T0_MS + int(_at(events, "ExecutionSucceeded") * 1000)
    assert _sfn_reads(answer) == 0, answer.aws_calls
    assert harness.sfn.read_times == harness.sfn.describe_times == []
    assert set(answer.aws_calls) == {"StartExecution", "GetItem"}
    assert answer.waited_seconds - recorded <= END_CAP + ITEM_LATENCY


@pytest.mark.parametrize("include_tasks", [True, False])
def test_failed_run_answers_200_with_the_reason(include_tasks):
    history = HistoryBuilder(step_ms=50).started({})
    history.task_failing("explode", {}, "RuntimeError", "boom").failed("RuntimeError", "boom")
    harness = Harness(history.events)

    answer = harness.execute(workflow="hello_world", wait_for_seconds=10, include_tasks=include_tasks)

    body = answer.run.to_body()
    assert answer.http_status == 200
    assert body["status"] == "FAILED"
    assert body["reasonForIncompletion"] == "RuntimeError: boom"
    assert _sfn_reads(answer) == int(include_tasks)


def test_a_run_already_ended_is_reported_ended_even_with_a_tiny_budget():
    harness = Harness(_hello(step_ms=0), margin=12.0)

    answer = harness.execute(wait_for_seconds=10, remaining=12.01)  # 0.01 s to wait

    assert answer.http_status == 200
    assert answer.run.status == "COMPLETED"
    assert len(harness.sfn.read_times) == 1  # the item had no news yet: the history said it


@pytest.mark.parametrize(
    ("run_seconds", "most_reads"),
    [(1.0, 1), (5.0, 1), (19.5, 2)],
    ids=["1 s run", "5 s run", "20 s run"],
)
def test_step_functions_reads_per_answered_call(run_seconds, most_reads):
    events = _ending_at(run_seconds)
    harness = Harness(events)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert _sfn_reads(answer) <= most_reads, answer.aws_calls
    assert answer.aws_calls["GetExecutionHistory"] == 1  # the tasks, once
    # A DescribeExecution for each end_check_seconds gone by, never more.
    assert answer.aws_calls["DescribeExecution"] <= answer.waited_seconds // END_CHECK
    assert answer.waited_seconds - (run_seconds + DELIVERY) <= END_CAP + ITEM_LATENCY + READ_LATENCY


@pytest.mark.parametrize("include_tasks", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_a_20_second_wait_that_runs_out_makes_at_most_two_step_functions_reads(seed, include_tasks):
    harness = Harness(_never_ending(), seed=seed)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=20, include_tasks=include_tasks)

    assert (answer.http_status, answer.run.to_body()["signalTimeout"]) == (206, True)
    assert _sfn_reads(answer) <= 2, answer.aws_calls
    assert harness.sfn.describe_times[0] >= END_CHECK  # the check for a lost event
    # The item, polled up to every 200 ms (never faster than every 100 ms once settled).
    assert answer.aws_calls["GetItem"] <= 20 / (END_CAP / 2) + 10


def test_the_item_is_polled_quickly_first_then_at_its_ceiling():
    harness = Harness(_never_ending())

    harness.execute(workflow="slow_steps", wait_for_seconds=5)

    assert harness.clock.sleeps[0] <= end_schedule().first
    assert max(harness.clock.sleeps) <= END_CAP
    reads = harness.signals.read_times
    assert all(b - a <= END_CAP + ITEM_LATENCY + 1e-9 for a, b in itertools.pairwise(reads))


# A lost event ---------------------------------------------------------------------------------


def test_a_lost_end_event_is_caught_by_the_describe_execution_check():
    events = _slow_steps(4)
    harness = Harness(events)
    harness.signals.lost = True

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.to_body()["output"] == {"finished": True, "delaySeconds": 4}
    assert _tasks(answer)["final_step"] == "COMPLETED"
    assert answer.aws_calls["DescribeExecution"] == 1
    assert END_CHECK <= harness.sfn.describe_times[0] <= END_CHECK + END_CAP + ITEM_LATENCY + DESCRIBE_LATENCY
    assert answer.waited_seconds <= END_CHECK + END_CAP + ITEM_LATENCY + DESCRIBE_LATENCY + READ_LATENCY


def test_the_describe_execution_check_comes_every_end_check_seconds():
    harness = Harness(_never_ending())

    harness.execute(workflow="slow_steps", wait_for_seconds=25)

    checks = harness.sfn.describe_times
    assert len(checks) == 2
    assert all(gap >= END_CHECK for gap in (b - a for a, b in itertools.pairwise(checks)))


@pytest.mark.parametrize("include_tasks", [True, False])
@pytest.mark.parametrize("ends_at", [3.0, 7.9])
def test_at_the_deadline_a_run_that_ended_is_never_answered_running(ends_at, include_tasks):
    harness = Harness(_ending_at(ends_at))
    harness.signals.lost = True

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=8, include_tasks=include_tasks)

    body = answer.run.to_body()
    assert (answer.http_status, body["status"], body["signalTimeout"]) == (200, "COMPLETED", False)
    assert body["output"] == {"finished": True, "delaySeconds": pytest.approx(ends_at - 0.78)}
    assert _sfn_reads(answer) == 1  # asked once before the 206 it would have been
    assert answer.waited_seconds <= 8 + ITEM_LATENCY + READ_LATENCY + 1e-9


@pytest.mark.parametrize("error", [AwsThrottled("slow down"), AwsUnavailable("outage")], ids=type)
def test_a_failed_describe_execution_check_never_fails_the_call(error):
    events = _slow_steps(12)
    harness = Harness(events)
    harness.sfn.describe_failure = lambda at: error
    harness.signals.delivery = 3.0  # the event comes late, after a check failed

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert harness.sfn.describe_times  # the check was made, and refused
    assert answer.waited_seconds - (_at(events, "ExecutionSucceeded") + 3.0) <= END_CAP + ITEM_LATENCY + READ_LATENCY


def test_a_lost_event_and_a_refused_check_still_say_the_end_at_the_deadline():
    harness = Harness(_ending_at(3.0))
    harness.signals.lost = True
    harness.sfn.describe_failure = lambda at: AwsThrottled("slow down") if at < 11 else None

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=12, include_tasks=False)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.aws_calls["DescribeExecution"] == 2  # the check at 10 s, then the deadline's


# The history read at the end ---------------------------------------------------------------------


@pytest.mark.parametrize("error", [AwsThrottled("slow down"), AwsUnavailable("outage")], ids=type)
def test_a_refused_history_read_at_the_end_still_answers_200_from_the_signal(error):
    events = _hello()
    harness = Harness(events)
    harness.sfn.history_failure = lambda at: error if at < 6.0 else None

    answer = harness.execute(wait_for_seconds=20)

    body = answer.run.to_body()
    assert (answer.http_status, body["status"], body["signalTimeout"]) == (200, "COMPLETED", False)
    assert body["output"] == {"greeting": "Hello, Ada!", "version": 2}
    assert body["input"] == {"name": "Ada"}
    assert body["tasks"] == []  # as last known: the call never saw the history
    assert answer.aws_calls["GetExecutionHistory"] == 1  # not retried: the answer does not wait on it


def test_run_not_found_in_the_history_right_after_the_start_is_tolerated():
    harness = Harness(_hello(step_ms=0))
    harness.sfn.history_failure = lambda at: RunNotFound("not visible yet")

    answer = harness.execute(wait_for_seconds=10)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.to_body()["output"] == {"greeting": "Hello, Ada!", "version": 2}


def _lagging_history(harness: Harness) -> None:
    """The history shows an event 0.35 s after it happened; the item, 0.05 s after the end. With
    greet exiting 0.4 s before the end, the read at the item's news shows greet's exit, not the end."""
    harness.signals.delivery = 0.05
    harness.sfn.history_lag = 0.35


def test_a_history_that_lags_the_event_gives_the_tasks_and_the_event_the_end():
    events = _hello(step_ms=400)
    ended = _at(events, "ExecutionSucceeded")
    harness = Harness(events)
    _lagging_history(harness)

    answer = harness.execute(wait_for_seconds=10)

    assert harness.sfn.read_times[0] - harness.sfn.history_lag < ended  # the read did not show the end
    body = answer.run.to_body()
    assert (answer.http_status, body["status"]) == (200, "COMPLETED")
    assert body["output"] == {"greeting": "Hello, Ada!", "version": 2}
    assert body["updateTime"] == T0_MS + int(ended * 1000)
    assert _tasks(answer) == {"greet": "COMPLETED"}
    assert answer.aws_calls["GetExecutionHistory"] == 1


@pytest.mark.parametrize("include_tasks", [True, False])
def test_an_output_too_large_for_the_event_comes_from_the_history(include_tasks):
    harness = Harness(_hello())
    harness.signals.output_in_event = False

    answer = harness.execute(wait_for_seconds=10, include_tasks=include_tasks)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.to_body()["output"] == {"greeting": "Hello, Ada!", "version": 2}
    assert (answer.aws_calls["GetExecutionHistory"], answer.aws_calls["DescribeExecution"]) == (1, 0)


@pytest.mark.parametrize("error", [AwsThrottled("slow down"), AwsUnavailable("outage")], ids=type)
def test_an_output_too_large_for_the_event_comes_from_describe_execution_when_the_history_fails(error):
    harness = Harness(_hello())
    harness.signals.output_in_event = False
    harness.sfn.history_failure = lambda at: error

    answer = harness.execute(wait_for_seconds=10, include_tasks=False)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.to_body()["output"] == {"greeting": "Hello, Ada!", "version": 2}
    assert (answer.aws_calls["GetExecutionHistory"], answer.aws_calls["DescribeExecution"]) == (1, 1)


def test_an_output_too_large_for_the_event_with_every_read_refused_still_answers_the_end():
    harness = Harness(_hello())
    harness.signals.output_in_event = False
    harness.sfn.history_failure = harness.sfn.describe_failure = lambda at: AwsThrottled("slow down")

    answer = harness.execute(wait_for_seconds=10)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")


def test_an_output_too_large_for_the_event_is_not_lost_when_the_history_lags():
    harness = Harness(_hello(step_ms=400))
    harness.signals.output_in_event = False
    _lagging_history(harness)

    answer = harness.execute(wait_for_seconds=10, include_tasks=False)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.to_body()["output"] == {"greeting": "Hello, Ada!", "version": 2}


# A joined run (idempotency key) -------------------------------------------------------------------


def test_a_joined_runs_input_comes_from_the_history():
    harness, key = _joined(_hello(), started_ago=0.1)
    harness.signals.input_in_event = False  # too large to keep beside the output

    answer = _join(harness, key, wait_for_seconds=10, include_tasks=False)

    body = answer.run.to_body()
    assert (answer.http_status, answer.replayed, answer.started) == (200, True, False)
    assert body["input"] == {"name": "Ada"}
    assert body["output"] == {"greeting": "Hello, Ada!", "version": 2}
    assert body["createTime"] == T0_MS
    assert harness.sfn.starts == []
    assert answer.aws_calls["GetExecutionHistory"] == 1


def test_a_joined_run_is_read_once_even_without_tasks():
    """Its item could hold an end from before a redrive, which only the history tells apart."""
    harness, key = _joined(_hello(), started_ago=5.0)

    answer = _join(harness, key, wait_for_seconds=10, include_tasks=False)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.to_body()["input"] == {"name": "Ada"}
    assert answer.run.tasks is None
    assert _sfn_reads(answer) == 1, answer.aws_calls


def _failed_then_redriven_and_succeeded() -> Events:
    """hello_world fails at 0.3 s, is redriven (retried) at 2 s and succeeds at 3 s."""
    output = {"greeting": "Hello, Ada!", "version": 2}
    history = HistoryBuilder(step_ms=100).started({"name": "Ada"})
    history.task_failing("greet", {"name": "Ada"}, "Boom", "the first attempt fails").failed("Boom", "first")
    history.add("ExecutionRedriven", {"redriveCount": 1}, at_ms=2000)
    history.entered("Task", "greet", {"name": "Ada"}).lambda_attempt({"name": "Ada"}, output=output)
    history.exited("Task", "greet", output).add(
        "ExecutionSucceeded", {"output": json.dumps(output), "outputDetails": {"truncated": False}}, at_ms=3000
    )
    return history.events


@pytest.mark.parametrize("include_tasks", [True, False])
def test_a_joined_redriven_run_whose_history_is_refused_is_never_answered_its_old_end(include_tasks):
    """The item still holds the run's first end (FAILED) and the history read that would tell of
    the redrive is refused: DescribeExecution says the run runs again, and the call waits for its
    next end."""
    harness, key = _joined(_failed_then_redriven_and_succeeded(), started_ago=2.5)
    harness.sfn.history_failure = lambda at: AwsThrottled("slow down")

    answer = _join(harness, key, wait_for_seconds=10, include_tasks=include_tasks)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.output == {"greeting": "Hello, Ada!", "version": 2}


def test_a_joined_task_wait_with_every_read_refused_does_not_trust_the_items_old_end():
    harness, key = _joined(_failed_then_redriven_and_succeeded(), started_ago=2.5)
    harness.sfn.history_failure = lambda at: AwsThrottled("slow down")
    harness.sfn.describe_failure = lambda at: AwsThrottled("slow down")

    answer = _join(harness, key, wait_for_seconds=0, wait_until_task_ref=("greet",))

    assert answer.run.status != "FAILED"  # the item's end predates the redrive: not answered
    assert answer.http_status == 206


@pytest.mark.parametrize("include_tasks", [True, False])
def test_a_joined_run_redriven_after_its_recorded_end_is_answered_at_its_next_end(include_tasks):
    harness, key = _joined(_failed_then_redriven_and_succeeded(), started_ago=2.5)

    answer = _join(harness, key, wait_for_seconds=10, include_tasks=include_tasks)

    # The item still held the first end (FAILED) when the call came: the history showed the run
    # running again, so the call waited for its next end instead of answering the stale one.
    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.output == {"greeting": "Hello, Ada!", "version": 2}
    assert harness.sfn.since_start() >= 3.0 + DELIVERY


def test_a_joined_run_whose_event_was_lost_is_asked_at_once():
    harness, key = _joined(_hello(), started_ago=60.0)
    harness.signals.lost = True

    answer = _join(harness, key, wait_for_seconds=10)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.to_body()["input"] == {"name": "Ada"}
    assert answer.waited_seconds <= ITEM_LATENCY + DESCRIBE_LATENCY + READ_LATENCY + 1e-9
    assert (answer.aws_calls["DescribeExecution"], answer.aws_calls["GetExecutionHistory"]) == (1, 1)


# waitUntilTaskRef ------------------------------------------------------------------------------


def test_returns_206_as_soon_as_the_awaited_task_completes():
    events = _slow_steps(3)
    harness = Harness(events)
    reached = _at(events, "TaskStateExited", "start_step")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=10, wait_until_task_ref=("start_step",))

    body = answer.run.to_body()
    assert answer.http_status == 206
    assert body["status"] == "RUNNING"
    assert body["signalTimeout"] is False
    assert harness.reads_from(reached) == 1
    assert answer.waited_seconds - reached <= TASK_CAP + READ_LATENCY
    tasks = _tasks(answer)
    assert tasks["start_step"] == "COMPLETED"
    assert "final_step" not in tasks
    assert harness.signals.read_times == []  # EventBridge says nothing of tasks
    assert answer.aws_calls["DescribeExecution"] == 0


def test_returns_when_any_of_several_awaited_tasks_completes():
    events = _slow_steps(3, final_step_seconds=3)
    harness = Harness(events)
    pause_done = _at(events, "WaitStateExited", "pause")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=20, wait_until_task_ref=("final_step", "pause"))

    assert answer.http_status == 206
    assert answer.run.signal_timeout is False
    assert pause_done <= answer.waited_seconds <= pause_done + TASK_CAP + READ_LATENCY
    assert answer.waited_seconds < _at(events, "TaskStateExited", "final_step")


def test_awaited_task_that_never_completes_before_the_end_answers_200_at_the_end():
    events = _slow_steps(1)
    harness = Harness(events)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=20, wait_until_task_ref=("final_step",))

    assert answer.http_status == 200  # final_step's exit and the end are both visible at that look
    assert answer.run.status == "COMPLETED"
    assert answer.run.to_body()["output"] == {"finished": True, "delaySeconds": 1}


def test_unknown_wait_until_task_ref_is_refused_listing_the_valid_ones_and_starts_nothing():
    harness = Harness(_slow_steps())

    with pytest.raises(InvalidRequest) as caught:
        harness.execute(workflow="slow_steps", wait_until_task_ref=("start_step", "nope"))

    error = caught.value
    assert error.status == 400
    assert [e.path for e in error.errors] == ["waitUntilTaskRef"]
    assert error.errors[0].invalid_value == "nope"
    for valid in ("start_step", "pause", "final_step"):
        assert valid in error.errors[0].message
    assert harness.sfn.starts == []
    assert harness.sfn.read_times == harness.sfn.describe_times == harness.signals.read_times == []


def test_task_refs_are_read_once_per_version_across_calls():
    harness = Harness(_slow_steps())
    for _ in range(3):
        harness.execute(workflow="slow_steps", wait_for_seconds=0, wait_until_task_ref=("pause",))

    assert harness.loaded == [ARN.format("slow_steps-v1")]


def test_task_reads_come_quickly_first_then_about_one_a_second():
    harness = Harness(_never_ending())

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=20, wait_until_task_ref=("final_step",))

    assert (answer.http_status, answer.run.signal_timeout) == (206, True)
    assert harness.sfn.read_times[0] <= task_schedule().first + READ_LATENCY
    assert harness.reads_from(0) - harness.reads_from(1.0) >= 2  # the first second: quick looks
    settled = harness.sfn.read_times[3:-1]  # the last look is cut to the deadline
    assert all(b - a >= TASK_CAP / 2 for a, b in itertools.pairwise(settled))
    assert all(b - a <= TASK_CAP + READ_LATENCY + 1e-9 for a, b in itertools.pairwise(harness.sfn.read_times))


@pytest.mark.parametrize("seed", range(10))
def test_history_reads_for_a_20_second_task_wait_stay_bounded(seed):
    harness = Harness(_never_ending(), seed=seed)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=20, wait_until_task_ref=("final_step",))

    assert answer.http_status == 206
    assert answer.aws_calls["GetExecutionHistory"] == len(harness.sfn.read_times) <= 24
    assert answer.aws_calls["DescribeExecution"] == 0
    assert answer.aws_calls["GetItem"] == 0  # every read was answered: the item is not needed


def test_worst_case_jitter_still_settles_at_two_task_reads_per_second():
    harness = Harness(_never_ending(), task_polls=lambda: PollSchedule(first=0.25, factor=2.0, cap=1.25, jitter=float))

    harness.execute(workflow="slow_steps", wait_for_seconds=20, wait_until_task_ref=("final_step",))

    settled = [at for at in harness.sfn.read_times if at >= 1.0][:-1]  # the last look is cut to the deadline
    for at in settled:
        assert sum(1 for other in settled if at <= other < at + 1.0) <= 2


@pytest.mark.parametrize("error", [AwsThrottled("slow down"), AwsUnavailable("outage")], ids=type)
def test_throttled_task_reads_never_fail_the_request(error):
    harness = Harness(_hello())
    harness.sfn.history_failure = lambda at: error if at < 6.0 else None

    answer = harness.execute(wait_for_seconds=20, wait_until_task_ref=("greet",))

    assert answer.http_status == 200
    assert answer.run.status == "COMPLETED"


def test_throttling_doubles_the_task_read_pauses_up_to_five_seconds():
    calm = Harness(_never_ending())
    calm.execute(workflow="slow_steps", wait_for_seconds=20, wait_until_task_ref=("final_step",))
    throttled = Harness(_never_ending())
    throttled.sfn.history_failure = lambda at: AwsThrottled("slow down")

    answer = throttled.execute(workflow="slow_steps", wait_for_seconds=20, wait_until_task_ref=("final_step",))

    assert answer.http_status == 206
    assert answer.run.signal_timeout is True
    assert len(throttled.sfn.read_times) < len(calm.sfn.read_times) / 2
    assert TASK_CAP < max(throttled.clock.sleeps) <= 5.0
    # Each refusal doubles the pause (equal jitter keeps at least half of it): they only grow.
    doubling = throttled.clock.sleeps[1:4]  # 1, 2, 4 s before jitter; then the 5 s ceiling
    assert all(b >= a for a, b in itertools.pairwise(doubling)), throttled.clock.sleeps


def test_throttling_that_stops_lets_the_task_answer_come_promptly_again():
    events = _slow_steps(8)
    harness = Harness(events)
    harness.sfn.history_failure = lambda at: AwsThrottled("slow down") if at < 3.0 else None
    reached = _at(events, "TaskStateExited", "final_step")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=20, wait_until_task_ref=("final_step",))

    assert answer.run.signal_timeout is False
    assert _tasks(answer)["final_step"] == "COMPLETED"
    assert answer.waited_seconds - reached <= TASK_CAP + READ_LATENCY


def test_once_throttling_stops_the_next_task_read_pause_is_back_within_the_cap():
    """A run that ends just after the first un-throttled look is answered within one normal pause."""
    throttled_until = 10.0
    probe = Harness(_never_ending())
    probe.sfn.history_failure = lambda at: AwsThrottled("slow down") if at < throttled_until else None
    probe.execute(workflow="slow_steps", wait_for_seconds=25, wait_until_task_ref=("final_step",))
    first_good_look = min(at for at in probe.sfn.read_times if at >= throttled_until)
    history = HistoryBuilder(step_ms=60).started({}).task("start_step", {}, {})
    history.now_ms = int(first_good_look * 1000) + 10
    events = history.succeeded({"finished": True}).events
    ended = _at(events, "ExecutionSucceeded")
    harness = Harness(events)
    harness.sfn.history_failure = probe.sfn.history_failure

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25, wait_until_task_ref=("final_step",))

    assert answer.http_status == 200
    assert answer.waited_seconds - ended <= TASK_CAP + READ_LATENCY


def test_at_the_deadline_with_the_task_read_refused_step_functions_is_asked():
    events = _slow_steps(4)
    harness = Harness(events)
    harness.sfn.history_failure = lambda at: AwsThrottled("slow down")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=8, wait_until_task_ref=("final_step",))

    body = answer.run.to_body()
    assert (answer.http_status, body["status"], body["signalTimeout"]) == (200, "COMPLETED", False)
    assert body["output"] == {"finished": True, "delaySeconds": 4}
    assert (answer.aws_calls["DescribeExecution"], answer.aws_calls["GetItem"]) == (1, 0)


def test_at_the_deadline_with_the_task_read_and_step_functions_refused_the_items_end_is_used():
    events = _slow_steps(4)
    harness = Harness(events)
    harness.sfn.history_failure = lambda at: AwsThrottled("slow down")
    harness.sfn.describe_failure = lambda at: AwsThrottled("slow down")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=8, wait_until_task_ref=("final_step",))

    body = answer.run.to_body()
    assert (answer.http_status, body["status"], body["signalTimeout"]) == (200, "COMPLETED", False)
    assert body["output"] == {"finished": True, "delaySeconds": 4}
    assert answer.aws_calls["GetItem"] == 1  # only once Step Functions could not say


def test_at_the_deadline_with_the_task_read_refused_and_no_end_the_call_answers_206():
    harness = Harness(_never_ending())
    harness.sfn.history_failure = lambda at: AwsUnavailable("outage")
    harness.signals.failure = lambda at: AwsUnavailable("outage")

    answer = harness.execute(
        workflow="slow_steps", wait_for_seconds=8, wait_until_task_ref=("final_step",), workflow_input={"n": 1}
    )

    body = answer.run.to_body()
    assert (answer.http_status, body["status"], body["signalTimeout"]) == (206, "RUNNING", True)
    assert body["input"] == {"n": 1}


def test_history_never_visible_answers_206_with_what_the_start_said():
    harness = Harness(_never_ending())
    harness.sfn.history_failure = lambda at: RunNotFound("not visible yet")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=3, workflow_input={"name": "Cy"})

    body = answer.run.to_body()
    assert answer.http_status == 206
    assert body["signalTimeout"] is True
    assert body["input"] == {"name": "Cy"}
    assert body["createTime"] == T0_MS
    assert body["output"] == {}


# The budget ------------------------------------------------------------------------------------


def test_answers_206_with_signal_timeout_when_the_budget_runs_out():
    harness = Harness(_never_ending())

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=5)

    body = answer.run.to_body()
    assert answer.http_status == 206
    assert body["status"] == "RUNNING"
    assert body["signalTimeout"] is True
    assert 5.0 <= answer.waited_seconds <= 5.0 + ITEM_LATENCY + READ_LATENCY + 1e-9
    assert harness.sfn.read_times == [pytest.approx(5.0, abs=ITEM_LATENCY + READ_LATENCY + 1e-9)]  # the freshest state
    assert _tasks(answer) == {"start_step": "COMPLETED", "pause": "IN_PROGRESS"}
    assert answer.aws_calls["DescribeExecution"] == 0  # the history said it is running


def test_a_206_without_tasks_asks_describe_execution_once():
    harness = Harness(_never_ending())

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=5, include_tasks=False)

    assert (answer.http_status, answer.run.signal_timeout) == (206, True)
    assert (answer.aws_calls["DescribeExecution"], answer.aws_calls["GetExecutionHistory"]) == (1, 0)
    assert harness.sfn.describe_times[0] >= 5.0


def test_wait_for_seconds_zero_answers_at_once_without_reading_anything():
    harness = Harness(_hello())

    answer = harness.execute(wait_for_seconds=0, workflow_input={"name": "Bo"})

    body = answer.run.to_body()
    assert answer.http_status == 206
    assert body["status"] == "RUNNING"
    assert body["input"] == {"name": "Bo"}
    assert body["output"] == {}
    assert body["createTime"] == T0_MS
    assert harness.sfn.read_times == harness.sfn.describe_times == harness.signals.read_times == []
    assert answer.aws_calls == Counter({"StartExecution": 1})
    assert harness.clock.sleeps == []
    assert answer.waited_seconds == 0


def test_wait_for_seconds_zero_on_a_joined_run_reads_it_exactly_once():
    harness, key = _joined(_hello(), started_ago=2.0)

    answer = _join(harness, key, wait_for_seconds=0)

    body = answer.run.to_body()
    assert (answer.http_status, body["status"], answer.replayed) == (200, "COMPLETED", True)
    assert body["input"] == {"name": "Ada"}  # not the joining call's: the run's own
    assert _sfn_reads(answer) == 1 and len(harness.sfn.read_times) == 1
    # Its item is looked at once, at once: an end recorded there answers even if AWS refuses reads.
    assert len(harness.signals.read_times) == 1 and harness.clock.sleeps == []


def test_wait_is_clamped_to_max_wait_seconds_not_refused():
    harness = Harness(_never_ending(), max_wait=25)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=600)

    assert answer.http_status == 206
    assert answer.run.signal_timeout is True
    assert 25.0 <= answer.waited_seconds <= 25.0 + ITEM_LATENCY + READ_LATENCY + 1e-9


def test_wait_is_clamped_to_the_lambdas_remaining_time_minus_the_margin():
    harness = Harness(_never_ending(), max_wait=25, margin=MARGIN)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25, remaining=14.0)

    assert answer.http_status == 206
    assert 10.5 <= answer.waited_seconds <= 10.5 + ITEM_LATENCY + READ_LATENCY + DESCRIBE_LATENCY + 1e-9
    assert answer.aws_calls["GetExecutionHistory"] == 1  # the margin holds the last read


def test_lambda_already_past_its_margin_answers_at_once():
    harness = Harness(_never_ending(), margin=12.0)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=10, remaining=11.0)

    assert answer.http_status == 206
    assert len(harness.sfn.starts) == 1
    assert harness.sfn.read_times == harness.signals.read_times == []
    assert harness.clock.sleeps == []


def test_too_little_time_to_start_is_a_503_and_nothing_starts():
    harness = Harness(_never_ending())

    with pytest.raises(ServiceUnavailable) as caught:
        harness.execute(workflow="slow_steps", wait_for_seconds=10, remaining=CALL_WORST_SECONDS)

    assert caught.value.status == 503 and caught.value.retryable
    assert harness.sfn.starts == []


# Stalls near the limit: the answer is never late -----------------------------------------------------


def _stall_from(seconds: float) -> Callable[[float], float]:
    """Calls made from ``seconds`` on stall to both timeouts."""
    return lambda at: WAITING_CALL_WORST_SECONDS if at >= seconds else 0.0


@pytest.mark.parametrize("include_tasks", [True, False])
@pytest.mark.parametrize("stall_from", [21.0, 24.0, 24.9])
def test_stalled_calls_near_the_deadline_never_make_the_answer_late(stall_from, include_tasks):
    remaining = 25 + MARGIN  # API Gateway's limit is what bounds the wait
    harness = Harness(_never_ending())
    harness.signals.stall = harness.sfn.history_stall = harness.sfn.describe_stall = _stall_from(stall_from)

    answer = harness.execute(
        workflow="slow_steps", wait_for_seconds=25, remaining=remaining, include_tasks=include_tasks
    )

    assert answer.http_status == 206
    assert answer.waited_seconds + ANSWER_SECONDS <= remaining


def test_a_read_that_would_not_fit_before_the_limit_is_skipped():
    remaining = 25 + MARGIN
    harness = Harness(_never_ending())
    harness.signals.stall = _stall_from(24.0)  # the last item read ends at ~27 s

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25, remaining=remaining)

    assert answer.http_status == 206
    assert harness.reads_from(24.0) == 0  # a history read from ~27 s could end past 28.5 s: none
    assert answer.waited_seconds + ANSWER_SECONDS <= remaining


@pytest.mark.parametrize("stall_from", [21.0, 24.0, 24.5])
def test_stalled_task_reads_near_the_deadline_never_make_the_answer_late(stall_from):
    remaining = 25 + MARGIN
    harness = Harness(_never_ending())
    harness.signals.stall = harness.sfn.history_stall = _stall_from(stall_from)

    answer = harness.execute(
        workflow="slow_steps", wait_for_seconds=25, remaining=remaining, wait_until_task_ref=("final_step",)
    )

    assert answer.http_status == 206
    assert answer.waited_seconds + ANSWER_SECONDS <= remaining


def test_a_stalled_and_refused_task_read_at_the_deadline_never_makes_the_answer_late():
    remaining = 25 + MARGIN
    harness = Harness(_never_ending())
    harness.signals.stall = harness.sfn.history_stall = _stall_from(24.0)
    harness.sfn.history_failure = lambda at: AwsUnavailable("read timeout") if at >= 24.0 else None

    answer = harness.execute(
        workflow="slow_steps", wait_for_seconds=25, remaining=remaining, wait_until_task_ref=("final_step",)
    )

    assert answer.http_status == 206
    assert answer.waited_seconds + ANSWER_SECONDS <= remaining


# DynamoDB refusing the item's reads ------------------------------------------------------------------


@pytest.mark.parametrize("error", [AwsThrottled("slow down"), AwsUnavailable("outage")], ids=type)
def test_a_dynamodb_failure_on_the_item_never_fails_the_wait(error):
    events = _slow_steps(4)
    harness = Harness(events)
    harness.signals.failure = lambda at: error

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.to_body()["output"] == {"finished": True, "delaySeconds": 4}
    # The end came from the DescribeExecution check, a backed-off poll after end_check_seconds.
    assert answer.aws_calls["DescribeExecution"] == 1
    assert answer.waited_seconds <= END_CHECK + PollSchedule().throttled_cap + 1.0


def test_a_refused_item_read_lengthens_the_pauses():
    calm = Harness(_never_ending())
    calm.execute(workflow="slow_steps", wait_for_seconds=20)
    refused = Harness(_never_ending())
    refused.signals.failure = lambda at: AwsThrottled("slow down")

    answer = refused.execute(workflow="slow_steps", wait_for_seconds=20)

    assert (answer.http_status, answer.run.signal_timeout) == (206, True)
    assert len(refused.signals.read_times) < len(calm.signals.read_times) / 4
    assert END_CAP < max(refused.clock.sleeps) <= PollSchedule().throttled_cap


def test_item_reads_refused_for_a_while_then_answered_come_promptly_again():
    events = _slow_steps(6)
    harness = Harness(events)
    harness.signals.failure = lambda at: AwsThrottled("slow down") if at < 3.0 else None
    recorded = _at(events, "ExecutionSucceeded") + DELIVERY

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.waited_seconds - recorded <= END_CAP + ITEM_LATENCY + READ_LATENCY


# Starting ---------------------------------------------------------------------------------------


def test_input_over_256_kib_is_refused_and_nothing_is_started():
    harness = Harness(_hello())
    command = StartCommand(
        workflow="hello_world",
        version=None,
        input={"blob": "x" * MAX_INPUT_BYTES},
        options=RunOptions(),
        correlation_id="c-1",
    )

    with pytest.raises(PayloadTooLarge) as caught:
        harness.execute_command(command)

    assert caught.value.status == 413
    assert harness.sfn.starts == []
    assert harness.records.items == {}


def test_input_of_exactly_256_kib_is_started():
    padding = MAX_INPUT_BYTES - len('{"b":""}')
    harness = Harness(_hello())

    answer = harness.execute(workflow_input={"b": "x" * padding}, wait_for_seconds=0)

    assert len(harness.sfn.starts[0][2].encode()) == MAX_INPUT_BYTES
    assert answer.started


def test_the_input_limit_counts_utf8_bytes_not_characters():
    harness = Harness(_hello())
    text = "é" * (MAX_INPUT_BYTES // 2 - 2)  # fewer characters than the limit, more bytes

    with pytest.raises(PayloadTooLarge):
        harness.execute(workflow_input={"b": text})
    assert harness.sfn.starts == []


def test_latest_version_is_started_and_its_workflow_id_finds_the_run_again():
    harness = Harness(_hello())

    answer = harness.execute(wait_for_seconds=0)

    arn, execution_name, _ = harness.sfn.starts[0]
    assert arn == ARN.format("hello_world-v2")
    workflow, parsed_name = harness.catalog.parse_workflow_id(answer.run.workflow_id)
    assert (workflow.version, parsed_name) == (2, execution_name)
    assert answer.run.target_workflow_id == answer.run.workflow_id


def test_a_given_version_is_started():
    harness = Harness(_hello())

    harness.execute(version=1, wait_for_seconds=0)

    assert harness.sfn.starts[0][0] == ARN.format("hello_world-v1")


def test_input_is_sent_as_canonical_json():
    harness = Harness(_hello())

    harness.execute(workflow_input={"b": 1, "a": "é"}, wait_for_seconds=0)

    sent = harness.sfn.starts[0][2]
    assert sent == '{"a":"é","b":1}'
    assert json.loads(sent) == {"a": "é", "b": 1}


def test_each_call_starts_its_own_execution():
    harness = Harness(_hello())

    first = harness.execute(wait_for_seconds=0)
    second = harness.execute(wait_for_seconds=0)

    assert first.run.workflow_id != second.run.workflow_id
    assert len({name for _, name, _ in harness.sfn.starts}) == 2


def test_correlation_id_and_priority_are_recorded_before_the_start_and_answered():
    harness = Harness(_hello())
    command = StartCommand(
        workflow="hello_world",
        version=None,
        input={"name": "Ada"},
        options=RunOptions(request_id="req-9"),
        correlation_id="order-7",
        priority=3,
    )

    answer = harness.execute_command(command)

    body = answer.run.to_body()
    assert body["correlationId"] == "order-7"
    assert body["priority"] == 3
    assert body["requestId"] == "req-9"
    assert harness.records.items == {answer.run.workflow_id: RunRecord("order-7", 3)}
    assert harness.records.started_before_put == [False]
    assert answer.aws_calls["PutItem"] == 1


def test_a_plain_call_writes_no_record():
    harness = Harness(_hello())

    answer = harness.execute(wait_for_seconds=0)

    assert harness.records.items == {}
    assert answer.aws_calls["PutItem"] == 0
    assert answer.run.correlation_id is None


def test_unknown_workflow_starts_nothing():
    harness = Harness(_hello())

    with pytest.raises(WorkflowNotFound):
        harness.execute(workflow="nope")
    with pytest.raises(WorkflowNotFound):
        harness.execute(version=9)
    assert harness.sfn.starts == []


# GET /api/workflow/{workflowId} -----------------------------------------------------------------


def test_get_reads_the_run_as_it_stands():
    harness = Harness(_hello(step_ms=0))
    started = harness.execute(wait_for_seconds=0)

    answer = harness.service.get(started.run.workflow_id, "req-get")

    body = answer.run.to_body()
    assert harness.sfn.waiting_reads[-1] is False  # a GET is not bound by a wait: botocore retries it
    assert answer.http_status == 200
    assert body["status"] == "COMPLETED"
    assert body["requestId"] == "req-get"
    assert body["workflowId"] == started.run.workflow_id


def test_get_of_an_unknown_run_is_run_not_found():
    harness = Harness([])
    started = harness.execute(wait_for_seconds=0)

    with pytest.raises(RunNotFound):
        harness.service.get(started.run.workflow_id, "req-get")
    with pytest.raises(RunNotFound):
        harness.service.get("not-an-id", "req-get")
