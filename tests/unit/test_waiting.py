"""wait_is_over, wait_budget and PollSchedule: when a synchronous call answers and how often it looks."""

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow_api.history import RunSnapshot
from workflow_api.status import WorkflowStatus
from workflow_api.waiting import PollSchedule, gateway_seconds_left, wait_budget, wait_is_over


def _run(status=WorkflowStatus.RUNNING, done=()):
    return RunSnapshot(status=status, completed_task_refs=frozenset(done))


# wait_is_over ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.TIMED_OUT, WorkflowStatus.TERMINATED],
)
def test_a_terminal_run_ends_the_wait_whatever_task_is_awaited(status):
    assert wait_is_over(_run(status), frozenset())
    assert wait_is_over(_run(status), frozenset({"final_step"}))


def test_a_running_run_without_awaited_tasks_keeps_waiting():
    assert not wait_is_over(_run(done={"start_step"}), frozenset())


def test_the_awaited_task_completing_ends_the_wait():
    assert wait_is_over(_run(done={"start_step"}), frozenset({"start_step"}))


def test_another_task_completing_does_not_end_the_wait():
    assert not wait_is_over(_run(done={"start_step"}), frozenset({"final_step"}))


def test_any_one_of_several_awaited_tasks_ends_the_wait():
    assert wait_is_over(_run(done={"pause"}), frozenset({"final_step", "pause"}))
    assert not wait_is_over(_run(done={"start_step"}), frozenset({"final_step", "pause"}))


# wait_budget -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wait_for", "max_wait", "remaining", "margin", "expected"),
    [
        (10, 25, 900.0, 2.0, 10.0),  # the caller's wish
        (100, 25, 900.0, 2.0, 25.0),  # clamped to the configured maximum, not an error
        (25, 25, 10.0, 2.0, 8.0),  # never past the Lambda's end, minus the margin
        (0, 25, 900.0, 2.0, 0.0),  # start and return at once
        (10, 25, 1.5, 2.0, 0.0),  # the Lambda is already out of time: never negative
        (10, 0, 900.0, 2.0, 0.0),  # waiting switched off
    ],
)
def test_wait_budget(wait_for, max_wait, remaining, margin, expected):
    assert wait_budget(wait_for, max_wait, remaining, margin) == pytest.approx(expected)


@given(
    wait_for=st.integers(0, 2**31 - 1),
    max_wait=st.integers(0, 27),
    remaining=st.floats(0, 900, allow_nan=False),
    margin=st.floats(0, 5, allow_nan=False),
)
def test_wait_budget_never_exceeds_any_limit(wait_for, max_wait, remaining, margin):
    budget = wait_budget(wait_for, max_wait, remaining, margin)

    assert 0 <= budget <= wait_for
    assert budget <= max_wait
    assert budget <= max(0.0, remaining - margin) + 1e-9


# PollSchedule: the exact sequence with fixed jitter -----------------------------------------------


def _pauses(schedule, throttled_flags):
    return [schedule.next_pause(t) for t in throttled_flags]


def test_first_looks_come_quickly_then_grow_to_the_cap():
    schedule = PollSchedule(jitter=lambda: 1.0)

    pauses = _pauses(schedule, [False] * 12)

    assert pauses[0] == pytest.approx(0.05)
    assert pauses[1] == pytest.approx(0.08)
    assert all(b >= a for a, b in itertools.pairwise(pauses))
    assert pauses[-1] == pytest.approx(1.0)
    assert max(pauses) == pytest.approx(1.0)


def test_equal_jitter_keeps_at_least_half_of_the_pause():
    low = _pauses(PollSchedule(jitter=lambda: 0.0), [False] * 12)
    high = _pauses(PollSchedule(jitter=lambda: 1.0), [False] * 12)

    assert low == pytest.approx([h / 2 for h in high])


def test_throttling_lengthens_the_pause_past_the_cap_up_to_the_throttled_cap():
    schedule = PollSchedule(jitter=lambda: 1.0)
    _pauses(schedule, [False] * 10)  # settled at the cap

    throttled = _pauses(schedule, [True] * 6)

    assert throttled[0] > schedule.cap
    assert all(b >= a for a, b in itertools.pairwise(throttled))
    assert max(throttled) == pytest.approx(schedule.throttled_cap)


@pytest.mark.parametrize("looks_before", range(12))
def test_a_throttled_pause_is_longer_than_the_pause_it_replaces(looks_before):
    calm, throttled = PollSchedule(jitter=lambda: 1.0), PollSchedule(jitter=lambda: 1.0)
    _pauses(calm, [False] * looks_before)
    _pauses(throttled, [False] * looks_before)

    assert throttled.next_pause(throttled=True) > calm.next_pause(throttled=False)


def test_after_throttling_ends_the_pause_is_back_within_the_cap():
    """Once a look succeeds again, the schedule is back to its normal bounded rate."""
    schedule = PollSchedule(jitter=lambda: 1.0)
    _pauses(schedule, [False] * 10)
    _pauses(schedule, [True] * 3)

    after = _pauses(schedule, [False, False])

    assert after[0] <= schedule.cap
    assert after[1] <= schedule.cap


def test_default_jitter_is_random_within_the_bounds():
    pauses = _pauses(PollSchedule(), [False] * 200)

    assert all(0 < p <= 1.0 for p in pauses)
    assert len({round(p, 9) for p in pauses[20:]}) > 1  # jittered, not a fixed beat


# PollSchedule: properties -------------------------------------------------------------------------

unit_floats = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def schedules(draw):
    first = draw(st.floats(0.001, 1.0))
    cap = draw(st.floats(first, 10.0))
    throttled_cap = draw(st.floats(cap, 60.0))
    factor = draw(st.floats(1.01, 4.0))
    jitters = iter(draw(st.lists(unit_floats, min_size=60, max_size=60)))
    return PollSchedule(first=first, factor=factor, cap=cap, throttled_cap=throttled_cap, jitter=lambda: next(jitters))


@given(schedule=schedules(), flags=st.lists(st.booleans(), min_size=1, max_size=60))
def test_every_pause_is_positive_and_within_the_throttled_cap(schedule, flags):
    for throttled in flags:
        pause = schedule.next_pause(throttled)
        assert 0 < pause <= schedule.throttled_cap


@given(schedule=schedules(), flags=st.lists(st.booleans(), min_size=1, max_size=60))
def test_unthrottled_pauses_never_exceed_the_cap(schedule, flags):
    for throttled in flags:
        pause = schedule.next_pause(throttled)
        if not throttled:
            assert pause <= schedule.cap


@given(jitters=st.lists(unit_floats, min_size=40, max_size=40))
def test_default_schedule_settles_at_no_more_than_two_looks_per_second(jitters):
    values = iter(jitters)
    schedule = PollSchedule(jitter=lambda: next(values))

    pauses = _pauses(schedule, [False] * 40)

    # Once at the cap, equal jitter keeps every pause at >= cap / 2.
    assert all(p >= 0.5 for p in pauses[8:])


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("arrived_ms", "expected"),
    [
        (NOW * 1000, 29.0),  # just arrived: all of API Gateway's 29 s
        ((NOW - 1.5) * 1000, 27.5),  # a cold start of 1.5 s counts
        ((NOW - 28.9) * 1000, pytest.approx(0.1)),
        ((NOW + 3) * 1000, 29.0),  # the Lambda host's clock behind API Gateway's
        ((NOW - 29) * 1000, 0.0),  # API Gateway has given up: answer at once
        ((NOW - 600) * 1000, 0.0),
        ((NOW - 13 * 3600) * 1000, math.inf),  # an event file replayed by sam local invoke
        ((NOW + 3600) * 1000, math.inf),  # not a time any request came at
        (None, math.inf),  # a direct invocation
        ("1764360000000", math.inf),
        (True, math.inf),
    ],
)
def test_gateway_seconds_left_counts_from_the_requests_arrival(arrived_ms, expected):
    assert gateway_seconds_left(arrived_ms, NOW) == expected
