"""WorkflowService: start a run and answer when the wait condition holds.

Step Functions and the run records are small in-memory fakes of our own adapters; time is a fake
clock that only the fake sleep (and each AWS call's latency) moves forward, so nothing really sleeps.
"""

import contextlib
import itertools
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sfn_history import T0, T0_MS, HistoryBuilder, hello_world

from workflow_api.adapters.run_records import RunRecord
from workflow_api.adapters.run_signals import RunEnded, WaitersFull
from workflow_api.adapters.stepfunctions import AwsThrottled, AwsUnavailable, HistoryCursor, StartedExecution
from workflow_api.adapters.wakeups import WakeupQueueGone
from workflow_api.catalog import WorkflowCatalog
from workflow_api.errors import InvalidRequest, PayloadTooLarge, RunNotFound, WorkflowNotFound
from workflow_api.parameters import RunOptions
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
CAP = PollSchedule().cap


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


class FakeStepFunctions:
    """One execution whose events become visible at their timestamp, counted from the start."""

    def __init__(self, clock: FakeClock, events: list[dict[str, Any]]) -> None:
        self.clock = clock
        self.events = events
        self.starts: list[tuple[str, str, str]] = []
        self.read_times: list[float] = []  # seconds after the start
        self.waiting_reads: list[bool] = []  # per read: made as a waiting call's (tried once)?
        self.failure: Callable[[float], Exception | None] = lambda at: None
        self.started_at: float | None = None
        self.execution_arn: str | None = None

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
        self.clock.now += READ_LATENCY
        assert cursor.execution_arn == self.execution_arn
        at = self.clock.now - self.started_at
        self.read_times.append(at)
        failure = self.failure(at)
        if failure is not None:
            raise failure
        added = 0
        for event in self.events:
            if (event["timestamp"] - T0).total_seconds() <= at and event["id"] not in cursor.events:
                cursor.events[event["id"]] = event
                added += 1
        return added


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


class FakeRunSignals:
    """run_status's item: the run's end, readable ``delivery`` seconds after it happened (EventBridge's
    delay), or never when the event is ``lost``; ``failure`` makes every read raise."""

    def __init__(self, sfn: FakeStepFunctions, ends_at: float | None, delivery: float = 0.3) -> None:
        self.sfn = sfn
        self.ends_at = ends_at
        self.delivery = delivery
        self.lost = False
        self.failure: Exception | None = None
        self.read_times: list[float] = []
        self.registrations: list[str] = []
        self.leaves: list[tuple[float, str]] = []  # (seconds after the start, queue)

    def ended(self, execution_arn: str) -> RunEnded | None:
        assert execution_arn == self.sfn.execution_arn
        at = self.sfn.clock.now - self.sfn.started_at
        self.read_times.append(at)
        if self.failure is not None:
            raise self.failure
        if self.lost or self.ends_at is None or at < self.ends_at + self.delivery:
            return None
        return RunEnded("SUCCEEDED", T0_MS + int(self.ends_at * 1000))

    def register(self, execution_arn: str, wakeup_queue_url: str) -> RunEnded | None:
        """As the real item: the end once it is recorded, else the queue is kept to be woken."""
        self.registrations.append(wakeup_queue_url)
        return self.ended(execution_arn)

    def leave(self, execution_arn: str, wakeup_queue_url: str) -> None:
        assert execution_arn == self.sfn.execution_arn
        self.leaves.append((self.sfn.clock.now - self.sfn.started_at, wakeup_queue_url))
        if self.failure is not None:
            raise self.failure


class FakeWakeupQueue:
    """The container's queue: the run's end arrives ``delivery`` seconds after it happened (the
    same moment run_status records it), unless ``lost``; ``failure`` makes a receive raise."""

    url = "https://sqs.us-east-1.amazonaws.com/123456789012/wakeup-test-1"
    id: str | None = None  # no id: the run is not named for the queue, and the call registers

    def __init__(self, signals: FakeRunSignals) -> None:
        self.signals = signals
        self.lost = False
        self.failure: Exception | None = None
        self.waits: list[tuple[float, int]] = []  # (seconds after the start, whole seconds asked)
        self.delivered = False

    def wait(self, execution_arn: str, seconds: int, calls: Counter[str]) -> bool:
        assert isinstance(seconds, int) and 1 <= seconds <= 20, seconds
        sfn = self.signals.sfn
        assert execution_arn == sfn.execution_arn
        calls["ReceiveMessage"] += 1
        at = sfn.clock.now - sfn.started_at
        self.waits.append((at, seconds))
        if self.failure is not None:
            raise self.failure
        ends_at = self.signals.ends_at
        arrives = None if self.lost or self.delivered or ends_at is None else ends_at + self.signals.delivery
        if arrives is not None and arrives <= at + seconds:
            sfn.clock.now += max(0.0, arrives - at)
            self.delivered = True  # SQS hands a message out once (it is then hidden for 12 h)
            return True
        sfn.clock.now += seconds
        return False


class FakeWakeupQueues:
    def __init__(self, signals: FakeRunSignals) -> None:
        self.queue = FakeWakeupQueue(signals)
        self.failure: Exception | None = None
        self.leases = 0

    @contextlib.contextmanager
    def lease(self, calls: Counter[str]):
        if self.failure is not None:
            raise self.failure
        self.leases += 1
        yield self.queue


class UnusedIdempotencyStore:
    """No call here gives an idempotency key: touching the key store is a test failure."""

    def __getattr__(self, name: str):
        raise AssertionError(f"idempotency store used without a key: {name}")


class Harness:
    def __init__(
        self,
        events: list[dict[str, Any]],
        *,
        max_wait: int = 25,
        margin: float = 2.0,
        schedule=None,
        signals=False,
        wakeups=False,
        history_first: float = 2.0,
        read_budget=None,
        queue_id: str | None = None,
    ):
        """``queue_id``: the wake-up queue's id, so a run without a key is named for it."""
        self.clock = FakeClock()
        self.sfn = FakeStepFunctions(self.clock, events)
        ends = [e for e in events if e["type"] == "ExecutionSucceeded"]
        ends_at = (ends[0]["timestamp"] - T0).total_seconds() if ends else None
        self.signals = FakeRunSignals(self.sfn, ends_at) if signals or wakeups else None
        self.wakeups = FakeWakeupQueues(self.signals) if wakeups and self.signals else None
        if self.wakeups is not None:
            self.wakeups.queue.id = queue_id
        self.records = FakeRunRecords(self.sfn)
        self.loaded: list[str] = []
        self.catalog = WorkflowCatalog(MACHINES, self._load)
        self.service = WorkflowService(
            self.catalog,
            self.sfn,
            self.records,
            UnusedIdempotencyStore(),
            max_wait_seconds=max_wait,
            answer_margin_seconds=margin,
            clock=self.clock,
            sleep=self.clock.sleep,
            schedule=schedule or (lambda: PollSchedule(jitter=random.Random(7).random)),
            run_signals=self.signals,
            history_first_seconds=history_first,
            wakeups=self.wakeups,
            read_budget=read_budget,
        )

    def _load(self, arn: str) -> frozenset[str]:
        self.loaded.append(arn)
        return TASK_REFS[arn]

    def execute(self, workflow="hello_world", version=None, workflow_input=None, remaining=900.0, **options):
        command = StartCommand(
            workflow=workflow,
            version=version,
            input={"name": "Ada"} if workflow_input is None else workflow_input,
            options=RunOptions(**options),
        )
        return self.service.execute(command, lambda: remaining)

    def execute_command(self, command: StartCommand, remaining: float = 900.0):
        return self.service.execute(command, lambda: remaining)

    def reads_from(self, seconds: float) -> int:
        return sum(1 for at in self.sfn.read_times if at >= seconds)


def _hello(step_ms: int = 60) -> list[dict[str, Any]]:
    """hello_world v2: eight events, the last (ExecutionSucceeded) at 7 * step_ms."""
    return hello_world("Ada", 2, step_ms=step_ms).events


def _at(events: list[dict[str, Any]], kind: str, name: str | None = None) -> float:
    """When (seconds after the start) the first event of that kind (and state name) happens."""
    for event in events:
        if event["type"] == kind and (name is None or event["stateExitedEventDetails"]["name"] == name):
            return (event["timestamp"] - T0).total_seconds()
    raise AssertionError(f"no {kind} {name or ''}")


def _slow_steps(delay_seconds: int = 3) -> list[dict[str, Any]]:
    history = HistoryBuilder(step_ms=60).started({"delaySeconds": delay_seconds})
    history.task("start_step", {"delaySeconds": delay_seconds}, {"delaySeconds": delay_seconds})
    history.wait("pause", {"delaySeconds": delay_seconds}, delay_seconds * 1000)
    history.task("final_step", {"delaySeconds": delay_seconds}, {"finished": True, "delaySeconds": delay_seconds})
    return history.succeeded({"finished": True, "delaySeconds": delay_seconds}).events


def _never_ending() -> list[dict[str, Any]]:
    """A run that enters a long Wait and stays there."""
    history = HistoryBuilder(step_ms=60).started({"delaySeconds": 3600}).task("start_step", {}, {})
    return history.entered("Wait", "pause", {"delaySeconds": 3600}).events


# Answering when the run ends ---------------------------------------------------------------------


def test_answers_200_as_soon_as_the_run_is_terminal():
    events = _hello()
    harness = Harness(events)
    ended = _at(events, "ExecutionSucceeded")

    answer = harness.execute(wait_for_seconds=10)

    assert answer.http_status == 200
    body = answer.run.to_body()
    assert body["status"] == "COMPLETED"
    assert body["output"] == {"greeting": "Hello, Ada!", "version": 2}
    assert body["signalTimeout"] is False
    assert answer.started is True
    # The first look after the end answers: no further look, and the lag is one short pause.
    assert harness.reads_from(ended) == 1
    assert answer.waited_seconds - ended < 0.5
    assert answer.aws_calls["StartExecution"] == 1
    # Each read tried once (the wait loop, not botocore, backs off): the deadline holds.
    assert harness.sfn.waiting_reads and all(harness.sfn.waiting_reads)
    assert answer.aws_calls["GetExecutionHistory"] == len(harness.sfn.read_times)


def test_failed_run_answers_200_with_the_reason():
    history = HistoryBuilder(step_ms=50).started({})
    history.task_failing("explode", {}, "RuntimeError", "boom").failed("RuntimeError", "boom")
    harness = Harness(history.events)

    answer = harness.execute(workflow="hello_world", wait_for_seconds=10)

    body = answer.run.to_body()
    assert answer.http_status == 200
    assert body["status"] == "FAILED"
    assert body["reasonForIncompletion"] == "RuntimeError: boom"


def test_a_run_already_ended_is_reported_ended_even_with_a_tiny_budget():
    harness = Harness(_hello(step_ms=0))

    answer = harness.execute(wait_for_seconds=10, remaining=2.01)  # margin 2 s: 0.01 s to wait

    assert answer.http_status == 200
    assert answer.run.status == "COMPLETED"
    assert len(harness.sfn.read_times) == 1


# waitUntilTaskRef --------------------------------------------------------------------------------


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
    assert answer.waited_seconds - reached < 0.5
    tasks = {t["referenceTaskName"]: t["status"] for t in body["tasks"]}
    assert tasks["start_step"] == "COMPLETED"
    assert "final_step" not in tasks


def test_returns_when_any_of_several_awaited_tasks_completes():
    events = _slow_steps(3)
    harness = Harness(events)
    pause_done = _at(events, "WaitStateExited", "pause")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=20, wait_until_task_ref=("final_step", "pause"))

    assert answer.http_status == 206
    assert answer.run.signal_timeout is False
    assert pause_done <= answer.waited_seconds < pause_done + CAP + READ_LATENCY
    assert answer.waited_seconds < _at(events, "TaskStateExited", "final_step")


def test_awaited_task_that_never_completes_before_the_end_answers_200_at_the_end():
    events = _slow_steps(1)
    harness = Harness(events)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=20, wait_until_task_ref=("final_step",))

    assert answer.http_status == 200  # final_step's exit and the end are both visible at that look
    assert answer.run.status == "COMPLETED"


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
    assert harness.sfn.read_times == []


def test_task_refs_are_read_once_per_version_across_calls():
    harness = Harness(_slow_steps())
    for _ in range(3):
        harness.execute(workflow="slow_steps", wait_for_seconds=0, wait_until_task_ref=("pause",))

    assert harness.loaded == [ARN.format("slow_steps-v1")]


# The budget -------------------------------------------------------------------------------------


def test_answers_206_with_signal_timeout_when_the_budget_runs_out():
    harness = Harness(_never_ending())

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=5)

    body = answer.run.to_body()
    assert answer.http_status == 206
    assert body["status"] == "RUNNING"
    assert body["signalTimeout"] is True
    assert 5.0 <= answer.waited_seconds <= 5.0 + READ_LATENCY + 1e-9
    assert max(harness.sfn.read_times) >= 5.0  # a last look at the deadline: the freshest state
    assert {t["referenceTaskName"]: t["status"] for t in body["tasks"]} == {
        "start_step": "COMPLETED",
        "pause": "IN_PROGRESS",
    }


def test_wait_for_seconds_zero_answers_at_once_without_reading_history():
    harness = Harness(_hello())

    answer = harness.execute(wait_for_seconds=0, workflow_input={"name": "Bo"})

    body = answer.run.to_body()
    assert answer.http_status == 206
    assert body["status"] == "RUNNING"
    assert body["input"] == {"name": "Bo"}
    assert body["output"] == {}
    assert body["createTime"] == T0_MS
    assert harness.sfn.read_times == []
    assert answer.aws_calls["GetExecutionHistory"] == 0
    assert answer.aws_calls["StartExecution"] == 1
    assert harness.clock.sleeps == []
    assert answer.waited_seconds == 0


def test_wait_is_clamped_to_max_wait_seconds_not_refused():
    harness = Harness(_never_ending(), max_wait=25)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=600)

    assert answer.http_status == 206
    assert answer.run.signal_timeout is True
    assert 25.0 <= answer.waited_seconds <= 25.0 + READ_LATENCY + 1e-9


def test_wait_is_clamped_to_the_lambdas_remaining_time_minus_the_margin():
    harness = Harness(_never_ending(), max_wait=25, margin=2.0)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25, remaining=10.0)

    assert answer.http_status == 206
    assert 8.0 <= answer.waited_seconds <= 8.0 + READ_LATENCY + 1e-9


def test_lambda_already_past_its_margin_answers_at_once():
    harness = Harness(_never_ending(), margin=2.0)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=10, remaining=1.0)

    assert answer.http_status == 206
    assert harness.sfn.read_times == []
    assert harness.clock.sleeps == []


@pytest.mark.parametrize("seed", range(10))
def test_history_reads_for_a_20_second_wait_stay_bounded(seed):
    state = random.getstate()
    random.seed(seed)
    try:
        harness = Harness(_never_ending(), schedule=PollSchedule)  # the service's default schedule
        answer = harness.execute(workflow="slow_steps", wait_for_seconds=20)
    finally:
        random.setstate(state)

    assert answer.http_status == 206
    assert answer.aws_calls["GetExecutionHistory"] < 40
    assert answer.aws_calls["GetExecutionHistory"] == len(harness.sfn.read_times)


def test_worst_case_jitter_still_settles_at_two_reads_per_second():
    harness = Harness(_never_ending(), schedule=lambda: PollSchedule(jitter=lambda: 0.0))

    harness.execute(workflow="slow_steps", wait_for_seconds=20)

    settled = [at for at in harness.sfn.read_times if at >= 2.0][:-1]  # the last look is cut to the deadline
    for at in settled:
        assert sum(1 for other in settled if at <= other < at + 1.0) <= 2


# Learning of the end from run_status's item (EventBridge) ---------------------------------------------


def test_with_run_signals_a_long_run_reads_history_early_and_then_only_for_its_end_and_fallbacks():
    events = _slow_steps(20)
    # The harness's seeded jitter: with random jitter this polling path made 32-39 calls in 2,000
    # runs, and 40 (the bound below) once in a full suite run.
    harness = Harness(events, signals=True)
    ended = _at(events, "ExecutionSucceeded")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.to_body()["output"] == {"finished": True, "delaySeconds": 20}
    # After the first 2 s: one history read per 5 s of fallback, and the one the item's news asked for.
    assert harness.reads_from(2.0) <= ended // 5 + 1
    assert answer.aws_calls["GetItem"] == len(harness.signals.read_times) > 0
    assert sum(answer.aws_calls.values()) < 40
    # The answer comes within a pause of the item being readable (its delivery delay included).
    assert answer.waited_seconds - (ended + harness.signals.delivery) <= CAP + READ_LATENCY * 2


def test_a_lost_end_event_is_caught_by_a_fallback_history_read():
    events = _slow_steps(4)
    harness = Harness(events, signals=True)
    harness.signals.lost = True
    ended = _at(events, "ExecutionSucceeded")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.waited_seconds - ended <= 5.0 + CAP + READ_LATENCY * 2


def test_without_news_in_the_item_the_history_is_read_every_five_seconds_after_the_first_two():
    harness = Harness(_never_ending(), signals=True, schedule=lambda: PollSchedule(jitter=lambda: 0.0))

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=20)

    assert answer.http_status == 206
    later = [at for at in harness.sfn.read_times if at >= 2.0]
    gaps = [b - a for a, b in itertools.pairwise(later)]
    assert all(gap >= 5.0 - CAP for gap in gaps[:-1]), gaps  # the last look is the deadline's
    assert len(harness.signals.read_times) > len(later)


def test_waiting_for_a_task_reads_the_history_not_the_item():
    harness = Harness(_slow_steps(3), signals=True)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25, wait_until_task_ref=("final_step",))

    assert answer.http_status == 200
    assert harness.signals.read_times == []  # EventBridge says nothing of tasks


@pytest.mark.parametrize("error", [AwsThrottled("slow down"), AwsUnavailable("outage")], ids=type)
def test_a_dynamodb_failure_on_the_item_never_fails_the_wait(error):
    events = _slow_steps(4)
    harness = Harness(events, signals=True)
    harness.signals.failure = error

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")


# Throttling and eventual consistency ---------------------------------------------------------------


@pytest.mark.parametrize("error", [AwsThrottled("slow down"), AwsUnavailable("outage")], ids=type)
def test_throttling_never_fails_the_request(error):
    events = _hello()
    harness = Harness(events)
    harness.sfn.failure = lambda at: error if at < 6.0 else None

    answer = harness.execute(wait_for_seconds=20)

    assert answer.http_status == 200
    assert answer.run.status == "COMPLETED"


def test_throttling_lengthens_the_pauses():
    calm = Harness(_never_ending())
    calm.execute(workflow="slow_steps", wait_for_seconds=20)
    throttled = Harness(_never_ending())
    throttled.sfn.failure = lambda at: AwsThrottled("slow down")

    answer = throttled.execute(workflow="slow_steps", wait_for_seconds=20)

    assert answer.http_status == 206
    assert answer.run.signal_timeout is True
    assert len(throttled.sfn.read_times) < len(calm.sfn.read_times) / 2
    assert max(throttled.clock.sleeps) > CAP


def test_throttling_that_stops_lets_the_answer_come_promptly_again():
    events = _slow_steps(8)
    harness = Harness(events)
    harness.sfn.failure = lambda at: AwsThrottled("slow down") if at < 3.0 else None
    ended = _at(events, "ExecutionSucceeded")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=20)

    assert answer.http_status == 200
    assert answer.waited_seconds - ended <= CAP + READ_LATENCY


def test_once_throttling_stops_the_next_pause_is_back_within_the_cap():
    """A run that ends just after the first un-throttled look is answered within one normal pause."""
    throttled_until = 10.0
    probe = Harness(_never_ending())
    probe.sfn.failure = lambda at: AwsThrottled("slow down") if at < throttled_until else None
    probe.execute(workflow="slow_steps", wait_for_seconds=25)
    first_good_look = min(at for at in probe.sfn.read_times if at >= throttled_until)
    history = HistoryBuilder(step_ms=60).started({}).task("start_step", {}, {})
    history.now_ms = int(first_good_look * 1000) + 10
    events = history.succeeded({"finished": True}).events
    ended = _at(events, "ExecutionSucceeded")
    harness = Harness(events)
    harness.sfn.failure = probe.sfn.failure

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert answer.http_status == 200
    assert answer.waited_seconds - ended <= CAP + READ_LATENCY


def test_run_not_found_right_after_the_start_is_tolerated():
    events = _hello()
    harness = Harness(events)
    harness.sfn.failure = lambda at: RunNotFound("not visible yet") if at < 0.5 else None

    answer = harness.execute(wait_for_seconds=10)

    assert answer.http_status == 200
    assert answer.run.status == "COMPLETED"
    assert min(harness.sfn.read_times) < 0.5  # it really was not found at first


def test_history_never_visible_answers_206_with_what_the_start_said():
    harness = Harness(_hello())
    harness.sfn.failure = lambda at: RunNotFound("not visible yet")

    answer = harness.execute(wait_for_seconds=3, workflow_input={"name": "Cy"})

    body = answer.run.to_body()
    assert answer.http_status == 206
    assert body["signalTimeout"] is True
    assert body["input"] == {"name": "Cy"}
    assert body["createTime"] == T0_MS


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


def test_with_no_first_seconds_of_history_a_short_run_is_read_once_at_its_end():
    events = _slow_steps(1)
    harness = Harness(events, signals=True, history_first=0.0)  # HISTORY_FIRST_SECONDS=0: spare the quota

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert len(harness.sfn.read_times) == 1


def test_a_throttled_history_read_after_the_items_news_is_retried_not_left_to_the_fallback():
    events = _slow_steps(4)
    harness = Harness(events, signals=True)
    ended = _at(events, "ExecutionSucceeded")
    news_at = ended + harness.signals.delivery
    # The first history read after the item reports the end is throttled.
    harness.sfn.failure = lambda at: AwsThrottled("slow down") if news_at <= at < news_at + 0.5 else None

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert any(news_at <= at < news_at + 0.5 for at in harness.sfn.read_times)  # the throttled read happened
    assert answer.waited_seconds - news_at < 4.0  # a backed-off retry, not the 5 s fallback


# Blocking on the wake-up queue (run_status sends the run's end there) ---------------------------


def test_woken_a_long_run_is_answered_at_its_wakeup_with_few_calls():
    events = _slow_steps(20)
    harness = Harness(events, wakeups=True)
    arrives = _at(events, "ExecutionSucceeded") + harness.signals.delivery

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.to_body()["output"] == {"finished": True, "delaySeconds": 20}
    # The answer is one history read after the wake-up, not a poll's pause later.
    assert answer.waited_seconds - arrives <= READ_LATENCY * 2
    # Reads: right after the start, each second of the first two, every 5 s, and the end's.
    assert answer.aws_calls["GetExecutionHistory"] <= 8, answer.aws_calls
    assert answer.aws_calls["GetItem"] == 0  # nothing is polled
    assert answer.aws_calls["UpdateItem"] == len(harness.signals.registrations) == 1
    assert sum(answer.aws_calls.values()) < 20, answer.aws_calls


def test_a_run_over_at_once_is_answered_by_the_first_read_without_blocking():
    harness = Harness(_hello(step_ms=5), wakeups=True)

    answer = harness.execute(wait_for_seconds=10)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert harness.wakeups.queue.waits == []
    assert answer.waited_seconds < 0.1


def test_a_run_whose_end_is_recorded_before_the_registration_is_read_at_once():
    harness = Harness(_hello(step_ms=1), wakeups=True)
    harness.signals.delivery = -0.01  # run_status recorded the end before this call registered

    answer = harness.execute(wait_for_seconds=10)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert harness.sfn.read_times == [pytest.approx(READ_LATENCY)]  # read at once: no first pause
    assert sum(harness.clock.sleeps) == 0


def test_a_lost_wakeup_is_caught_by_a_fallback_history_read():
    events = _slow_steps(4)
    harness = Harness(events, wakeups=True)
    harness.wakeups.queue.lost = True
    ended = _at(events, "ExecutionSucceeded")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.waited_seconds - ended <= 5.0 + READ_LATENCY * 4


def test_without_a_wakeup_the_history_is_read_each_second_then_every_five_and_at_the_deadline():
    harness = Harness(_never_ending(), wakeups=True)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=20)

    assert (answer.http_status, answer.run.to_body()["signalTimeout"]) == (206, True)
    reads = harness.sfn.read_times
    gaps = [round(b - a) for a, b in itertools.pairwise(reads)]
    assert gaps[:2] == [1, 1] and set(gaps[2:-1]) == {5}, (gaps, reads)
    assert reads[-1] == pytest.approx(20.0, abs=READ_LATENCY * 2)  # the last look, at the deadline
    assert answer.waited_seconds <= 20.0 + READ_LATENCY * 2  # whole-second receives never overshoot
    assert all(seconds <= 5 for _, seconds in harness.wakeups.queue.waits)


def test_a_deadline_between_whole_seconds_is_kept():
    harness = Harness(_never_ending(), wakeups=True, max_wait=25, margin=0.0)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25, remaining=3.4)

    assert answer.http_status == 206
    assert 3.4 <= answer.waited_seconds <= 3.4 + READ_LATENCY * 2


def test_waiting_for_a_task_polls_the_history_and_leases_no_queue():
    harness = Harness(_slow_steps(3), wakeups=True)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25, wait_until_task_ref=("final_step",))

    assert answer.http_status == 200
    assert harness.wakeups.leases == 0  # EventBridge says nothing of tasks


@pytest.mark.parametrize("where", ["lease", "register", "register, item full", "receive"])
def test_when_the_queue_fails_the_call_polls_and_is_still_answered(where):
    events = _slow_steps(6)
    harness = Harness(events, wakeups=True)
    failure = {"receive": WakeupQueueGone("gone"), "register, item full": WaitersFull("32 already")}.get(
        where, AwsUnavailable("outage")
    )
    if where == "lease":
        harness.wakeups.failure = failure
    elif where.startswith("register"):
        harness.signals.register = lambda *_: (_ for _ in ()).throw(failure)
    else:
        harness.wakeups.queue.failure = failure
    arrives = _at(events, "ExecutionSucceeded") + harness.signals.delivery

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.aws_calls["GetItem"] > 0  # polled run_status's item instead
    assert answer.waited_seconds - arrives <= CAP + READ_LATENCY * 2


def test_a_throttled_read_after_a_wakeup_is_retried_after_a_backoff():
    events = _slow_steps(4)
    harness = Harness(events, wakeups=True)
    arrives = _at(events, "ExecutionSucceeded") + harness.signals.delivery
    harness.sfn.failure = lambda at: AwsThrottled("slow down") if arrives <= at < arrives + 0.2 else None

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert any(arrives <= at < arrives + 0.2 for at in harness.sfn.read_times)  # the throttled read happened
    assert answer.waited_seconds - arrives < 2.0  # a backed-off retry, not the 5 s fallback


class AlwaysQueuedBudget:
    """A read budget that is always just spent: every read waits 10 ms for it."""

    def reserve(self) -> float:
        return 0.01


def test_a_wakeup_about_an_earlier_end_sends_the_call_back_to_its_queue():
    events = _slow_steps(6)
    # The item holds the end of the run's first attempt (it was redriven); every read also waits
    # for the read budget, which must not be taken for AWS refusing the read.
    harness = Harness(events, wakeups=True, read_budget=AlwaysQueuedBudget())
    harness.signals.register = lambda *_: RunEnded("FAILED", T0_MS)
    arrives = _at(events, "ExecutionSucceeded") + harness.signals.delivery

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    # Read at once (the earlier end), each second of the first two, every 5 s, and when woken:
    # blocking on the queue again, not reading the history until something changes.
    assert len(harness.sfn.read_times) <= 6, harness.sfn.read_times
    assert answer.waited_seconds - arrives <= 0.01 + READ_LATENCY * 2


# --- leaving the run's item when answering before its end -----------------------------------


def test_a_call_answered_before_the_runs_end_takes_its_queue_off_the_item():
    harness = Harness(_slow_steps(30), wakeups=True)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=5)

    assert (answer.http_status, answer.run.status) == (206, "RUNNING")
    assert [url for _, url in harness.signals.leaves] == [harness.wakeups.queue.url]
    assert harness.signals.leaves[0][0] >= 5  # after the last look, not before it
    assert answer.aws_calls["UpdateItem"] == 2  # registered, then left


def test_a_call_answered_at_the_runs_end_leaves_nothing_to_take_off():
    harness = Harness(_slow_steps(3), wakeups=True)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert answer.http_status == 200
    assert harness.signals.leaves == []  # run_status's end took the queue off
    assert answer.aws_calls["UpdateItem"] == 1


@pytest.mark.parametrize(("time_left", "leaves"), [(25 + 3.5, 1), (25 + 3.2, 0)])
def test_leaving_only_when_the_time_left_holds_the_write_at_its_slowest(time_left, leaves):
    """Waiting up to API Gateway's limit (25 s of 28.x left): after the last look at 25.02 s, a
    206 must not be late for a bookkeeping write of up to 3 s (one try to its timeouts) + the
    answer's 0.25 s."""
    harness = Harness(_slow_steps(30), wakeups=True)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25, remaining=time_left)

    assert answer.http_status == 206
    assert len(harness.signals.leaves) == leaves


def test_no_leaving_after_a_slow_last_look_near_the_limit():
    harness = Harness(_slow_steps(30), wakeups=True)
    read = harness.sfn.read_new_events

    def slow_at_the_end(cursor, calls, **kwargs):
        if harness.clock.now - harness.sfn.started_at >= 25:
            harness.clock.now += 0.5  # the last look takes half a second
        return read(cursor, calls, **kwargs)

    harness.sfn.read_new_events = slow_at_the_end

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25, remaining=25 + 3.5)

    assert answer.http_status == 206
    assert harness.signals.leaves == []  # 25.5 + 3.25 is past the 28.5 s limit


def test_a_call_whose_queue_fails_leaves_the_item_then_polls():
    events = _slow_steps(6)
    harness = Harness(events, wakeups=True)
    harness.wakeups.queue.failure = WakeupQueueGone("gone")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert [url for _, url in harness.signals.leaves] == [harness.wakeups.queue.url]
    assert answer.aws_calls["GetItem"] > 0  # polled the item after leaving it


def test_a_call_that_registered_nothing_leaves_nothing():
    harness = Harness(_slow_steps(30), wakeups=True)
    harness.signals.register = lambda *_: RunEnded("FAILED", T0_MS)  # a redriven run's first end

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=5)

    assert answer.http_status == 206
    assert harness.signals.leaves == []


def test_a_failed_leave_still_answers_206():
    harness = Harness(_slow_steps(30), wakeups=True)
    harness.service._wait_awake = _failing_after(harness)  # the item fails once the wait is over

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=5)

    assert answer.http_status == 206
    assert len(harness.signals.leaves) == 1


def _failing_after(harness):
    wait_awake = harness.service._wait_awake

    def wrapped(*args, **kwargs):
        result = wait_awake(*args, **kwargs)
        harness.signals.failure = AwsUnavailable("outage")
        return result

    return wrapped


# --- a run without a key, named for its caller's queue ------------------------------------------

QUEUE_ID = "0123456789abcdef" * 2


def test_a_run_without_a_key_is_named_for_its_queue_and_its_call_registers_nothing():
    events = _slow_steps(20)
    harness = Harness(events, wakeups=True, queue_id=QUEUE_ID)
    arrives = _at(events, "ExecutionSucceeded") + harness.signals.delivery

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    ((_, name, _),) = harness.sfn.starts
    assert re.fullmatch(rf"[0-9a-f]{{32}}-q{QUEUE_ID}", name), name
    assert answer.run.workflow_id == f"slow_steps.1.{name}"
    # run_status finds the queue in the run's name: no write to the run's item, and none read.
    assert harness.signals.registrations == [] and harness.signals.read_times == []
    assert answer.aws_calls["UpdateItem"] == answer.aws_calls["GetItem"] == 0, answer.aws_calls
    assert answer.waited_seconds - arrives <= READ_LATENCY * 2  # woken, then one history read
    assert sum(answer.aws_calls.values()) < 20, answer.aws_calls


def test_a_call_answered_206_on_a_run_named_for_its_queue_leaves_nothing():
    harness = Harness(_slow_steps(30), wakeups=True, queue_id=QUEUE_ID)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=5)

    assert (answer.http_status, answer.run.status) == (206, "RUNNING")
    assert harness.signals.leaves == [] and answer.aws_calls["UpdateItem"] == 0


def test_a_run_named_for_a_queue_that_fails_reads_its_history_on_the_woken_schedule():
    """Its item is never written, so it is not polled; nor is the history at every look: in an
    SQS outage every warm container's calls land here, and looks at 1 a second would spend the
    account's 20 history reads a second. A failed receive is a wake-up that did not come."""
    events = _slow_steps(20)
    harness = Harness(events, wakeups=True, queue_id=QUEUE_ID)
    harness.wakeups.queue.failure = AwsUnavailable("SQS outage")
    ended = _at(events, "ExecutionSucceeded")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.aws_calls["GetItem"] == 0 and harness.signals.registrations == harness.signals.leaves == []
    # Right after the start, each second of the first two, then every 5 s: the end within 5 s.
    assert answer.aws_calls["GetExecutionHistory"] <= 8, harness.sfn.read_times
    assert answer.waited_seconds - ended <= 5.0 + READ_LATENCY * 2
    # Each wait still tries the queue once: one receive per read's pause, never more.
    assert answer.aws_calls["ReceiveMessage"] <= answer.aws_calls["GetExecutionHistory"], answer.aws_calls


def test_a_run_named_for_a_queue_that_fails_once_is_woken_when_it_answers_again():
    events = _slow_steps(20)
    harness = Harness(events, wakeups=True, queue_id=QUEUE_ID)
    queue = harness.wakeups.queue
    wait = queue.wait

    def failing_first(*args, **kwargs):
        queue.failure = AwsUnavailable("SQS outage") if not queue.waits else None
        return wait(*args, **kwargs)

    queue.wait = failing_first
    arrives = _at(events, "ExecutionSucceeded") + harness.signals.delivery

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.waited_seconds - arrives <= READ_LATENCY * 2  # woken, not a fallback read


@pytest.mark.parametrize(
    "options",
    [
        {"wait_for_seconds": 1},
        {"wait_for_seconds": 0},
        {"wait_for_seconds": 25, "wait_until_task_ref": ("final_step",)},
    ],
    ids=["one second", "no wait", "task reference"],
)
def test_a_call_that_will_not_wait_on_a_queue_leases_none_and_names_its_run_plainly(options):
    harness = Harness(_slow_steps(3), wakeups=True, queue_id=QUEUE_ID)

    harness.execute(workflow="slow_steps", **options)

    ((_, name, _),) = harness.sfn.starts
    assert re.fullmatch(r"[0-9a-f]{32}", name), name
    assert harness.wakeups.leases == 0


def test_without_a_queue_the_run_is_named_plainly_and_its_item_polled():
    events = _slow_steps(6)
    harness = Harness(events, wakeups=True, queue_id=QUEUE_ID)
    harness.wakeups.failure = AwsUnavailable("SQS outage")

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    ((_, name, _),) = harness.sfn.starts
    assert re.fullmatch(r"[0-9a-f]{32}", name), name  # run_status records its end on the item
    assert answer.aws_calls["GetItem"] > 0


def test_a_read_within_the_budget_does_not_sleep_first():
    """time.sleep(0) gives the interpreter up to any thread that can run: in local mode, the one
    that had just sent the wake-up, and the answer's read waited for it."""
    harness = Harness(_slow_steps(3), wakeups=True, queue_id=QUEUE_ID)

    answer = harness.execute(workflow="slow_steps", wait_for_seconds=25)

    assert answer.http_status == 200
    assert len(harness.sfn.read_times) >= 2 and 0 not in harness.clock.sleeps, harness.clock.sleeps
