"""The answer is due before API Gateway's 29 s even when the start's own calls hang.

Each call of the start path (the run's record, the key's claim, StartExecution, the key marked
started) is made to stall to its worst (both timeouts on both attempts, CALL_WORST_SECONDS) on
the fake clock of test_service_wait, and the time left shrinks with it as API Gateway's would.
"""

from collections.abc import Callable
from typing import Any

import pytest
from test_service_wait import Harness, _hello

from workflow_api.adapters.aws import CALL_WORST_SECONDS
from workflow_api.errors import ServiceUnavailable
from workflow_api.idempotency import KeyRecord
from workflow_api.parameters import RunOptions
from workflow_api.run_wait import ANSWER_SECONDS
from workflow_api.service import StartCommand

GATEWAY_SECONDS = 29.0


class StallingKeyStore:
    """A new key: the claim wins. Each write stalls for ``stall`` seconds of the fake clock."""

    def __init__(self, harness: Harness, stall: float) -> None:
        self.harness, self.stall = harness, stall
        self.writes: list[str] = []

    def _write(self, name: str) -> None:
        self.writes.append(name)
        self.harness.clock.now += self.stall

    def claim_first(self, record: KeyRecord) -> None:
        self._write("claim")

    def mark_started(self, record: KeyRecord) -> None:
        self._write("started")

    def release(self, record: KeyRecord) -> None:
        self._write("release")


def _stalling(harness: Harness, method: str, target: Any, stall: float) -> None:
    """``target.method`` takes ``stall`` seconds longer, as a call that times out and is retried."""
    real: Callable[..., Any] = getattr(target, method)

    def slow(*args: Any, **kwargs: Any) -> Any:
        harness.clock.now += stall
        return real(*args, **kwargs)

    setattr(target, method, slow)


def _execute(harness: Harness, arrived_ago: float = 0.0, **options: Any):
    """A call that arrived ``arrived_ago`` seconds before the handler began: its time left falls
    with the clock, from API Gateway's 29 s."""
    due = harness.clock.now - arrived_ago + GATEWAY_SECONDS
    command = StartCommand(
        "hello_world", None, {"name": "Ada"}, RunOptions(wait_for_seconds=25, **options), correlation_id="order-42"
    )
    began = harness.clock.now
    try:
        return harness.service.execute(command, lambda: due - harness.clock.now), due, began
    except ServiceUnavailable as refused:
        return refused, due, began


def test_a_stalled_record_and_start_still_answer_before_the_gateway_gives_up():
    harness = Harness(_hello(step_ms=4000))  # a run of 28 s: the wait runs out
    _stalling(harness, "put", harness.records, CALL_WORST_SECONDS)
    _stalling(harness, "start_or_find", harness.sfn, CALL_WORST_SECONDS)

    answer, due, began = _execute(harness)

    assert answer.http_status == 206  # started, waited what was left, answered
    assert len(harness.sfn.starts) == 1
    assert harness.clock.now + ANSWER_SECONDS <= due
    assert harness.clock.now - began > 2 * CALL_WORST_SECONDS  # both calls did stall


@pytest.mark.parametrize("arrived_ago", [0.0, 5.0, 9.0])
def test_a_start_that_would_not_fit_is_a_503_and_starts_nothing(arrived_ago):
    """The record's write stalls; what is left then cannot hold a start that stalls too."""
    harness = Harness(_hello())
    _stalling(harness, "put", harness.records, CALL_WORST_SECONDS + 9.0 - arrived_ago)

    refused, due, _ = _execute(harness, arrived_ago)

    assert isinstance(refused, ServiceUnavailable)
    assert refused.retry_after_seconds >= 1
    assert harness.sfn.starts == []
    assert harness.clock.now + ANSWER_SECONDS <= due


def test_a_keyed_start_whose_calls_stall_answers_in_time_and_leaves_the_key_to_a_takeover():
    """Claim and start stall: no time is left for the "started" write, which a later call's
    takeover makes instead (it finds the run); the answer is in time."""
    harness = Harness(_hello(step_ms=4000))
    keys = StallingKeyStore(harness, CALL_WORST_SECONDS)
    harness.service._keys = keys  # the one key store of this harness's service
    _stalling(harness, "start_or_find", harness.sfn, CALL_WORST_SECONDS)

    answer, due, _ = _execute(harness, idempotency_key="order-42", on_conflict="RETURN_EXISTING")

    assert answer.http_status == 206
    assert keys.writes == ["claim"]
    assert len(harness.sfn.starts) == 1
    assert harness.clock.now + ANSWER_SECONDS <= due


def test_a_keyed_start_that_would_not_fit_releases_nothing_it_has_no_time_for_and_starts_nothing():
    harness = Harness(_hello())
    keys = StallingKeyStore(harness, CALL_WORST_SECONDS + 9.0)  # the claim ends at 19 s
    harness.service._keys = keys

    refused, due, _ = _execute(harness, idempotency_key="order-42", on_conflict="RETURN_EXISTING")

    assert isinstance(refused, ServiceUnavailable)
    assert harness.sfn.starts == []
    assert keys.writes == ["claim"]  # the lease runs out; a retry takes the key over then
    assert harness.clock.now + ANSWER_SECONDS <= due


def test_with_time_to_spare_a_refused_start_releases_the_key_at_once():
    harness = Harness(_hello())
    keys = StallingKeyStore(harness, 0.0)
    harness.service._keys = keys

    def refused_start(*args: Any, **kwargs: Any) -> Any:
        raise ServiceUnavailable("Step Functions is throttling requests; retry shortly")

    harness.sfn.start_or_find = refused_start

    refused, _, _ = _execute(harness, idempotency_key="order-42", on_conflict="RETURN_EXISTING")

    assert isinstance(refused, ServiceUnavailable)
    assert keys.writes == ["claim", "release"]
