"""When a synchronous call may answer, and how often it looks: pure, so it is tested without AWS."""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .history import RunSnapshot


def wait_is_over(run: RunSnapshot, wait_until_task_refs: frozenset[str]) -> bool:
    """The run ended, or any of the awaited tasks has finished (any outcome of that state)."""
    return run.status.is_terminal or not wait_until_task_refs.isdisjoint(run.completed_task_refs)


# API Gateway's REST integration timeout: past it the caller gets a 504, whatever the Lambda answers.
API_GATEWAY_TIMEOUT_SECONDS = 29.0


# Older than this, an event's arrival time is not a live request's: an event file replayed by
# ``sam local invoke`` or ``make invoke`` (a request lives at most 29 s, and Lambda's init 10 s).
REPLAYED_EVENT_AGE_SECONDS = 900.0


def gateway_seconds_left(request_time_epoch_ms: object, now: float) -> float:
    """Seconds before API Gateway gives up on the request, counted from its arrival, so a cold
    start and the calls before the wait count too: 0 once it has (answer at once; its caller has
    had a 504). Infinite when the event does not say when the request came (a direct
    invocation) or is a replayed event file: then the Lambda's own time is the only limit."""
    if not isinstance(request_time_epoch_ms, int | float) or isinstance(request_time_epoch_ms, bool):
        return math.inf
    age = now - request_time_epoch_ms / 1000
    if not -60.0 <= age < REPLAYED_EVENT_AGE_SECONDS:
        return math.inf
    return max(0.0, API_GATEWAY_TIMEOUT_SECONDS - max(age, 0.0))  # age < 0: the hosts' clocks differ


def wait_budget(wait_for_seconds: int, max_wait_seconds: int, remaining_seconds: float, margin_seconds: float) -> float:
    """Seconds this call may wait: the caller's wish, clamped, and never so long that the answer
    (one last read, within the margin) would come after the Lambda's or API Gateway's end."""
    return max(0.0, min(float(wait_for_seconds), float(max_wait_seconds), remaining_seconds - margin_seconds))


@dataclass
class PollSchedule:
    """Short first looks, then exponential backoff with jitter up to a bounded rate.

    Most workflows that callers wait on finish within a second, so the first looks come quickly;
    long ones settle at one look per ``cap`` seconds, which bounds the AWS calls per waiting request.
    Throttling doubles the pause (up to ``throttled_cap``) instead of failing the request.
    """

    first: float = 0.05
    factor: float = 1.6
    cap: float = 1.0
    throttled_cap: float = 5.0
    jitter: Callable[[], float] = field(default=random.random)
    _next: float = 0.0

    def __post_init__(self) -> None:
        self._next = self.first

    def next_pause(self, throttled: bool = False) -> float:
        """The pause before the next look; equal jitter keeps at least half of it."""
        if throttled:
            # Double the pause (past the usual cap if need be): AWS asked for fewer calls, and
            # the budget of the wait, not an error, is what ends a long throttle.
            self._next = min(self.throttled_cap, self._next * 2)
        else:
            self._next = min(self._next, self.cap)  # throttling is over: back to the usual rate
        base = self._next
        pause = base / 2 + base / 2 * self.jitter()
        if not throttled:
            self._next = min(self.cap, self._next * self.factor)
        return pause
