"""Many callers waiting while AWS throttles the history reads: nobody fails, and the reads of the
process stay within its configured budget."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from tests.aws_faults import ThrottlingClient
from workflow_api.adapters.stepfunctions import StepFunctionsGateway
from workflow_api.config import Settings
from workflow_api.parameters import RunOptions
from workflow_api.service import StartCommand
from workflow_api.waiting import CallBudget
from workflow_api.wiring import build_service

RATE, BURST, CALLERS = 8.0, 8.0, 24


def test_throttled_reads_fail_nobody_and_stay_within_budget(local_aws: Any) -> None:
    config = Settings.from_environment()
    # Every third history read is throttled, as an account over its quota would see.
    client = ThrottlingClient(boto3.client("stepfunctions"), "get_execution_history", 0, every=3)
    sfn = StepFunctionsGateway(client)  # type: ignore[arg-type]
    service = build_service(
        config,
        stepfunctions=sfn,
        dynamodb_client=boto3.client("dynamodb"),
        answer_margin_seconds=0,
        read_budget=CallBudget(RATE, BURST),
    )

    def caller(i: int) -> Any:
        options = RunOptions(wait_for_seconds=20, request_id=f"budget-{i}-{uuid.uuid4()}")
        return service.execute(StartCommand("slow_steps", None, {"delaySeconds": 1}, options), lambda: 30.0)

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        answers = list(pool.map(caller, range(CALLERS)))

    # Nobody fails: each caller gets its run, ended (200) or, when the budget ran out, as last seen (206).
    outcomes = [(a.http_status, a.run.status) for a in answers]
    assert set(outcomes) <= {(200, "COMPLETED"), (206, "RUNNING")}, outcomes
    assert outcomes.count((200, "COMPLETED")) >= CALLERS // 2, outcomes  # measured: 18 of 24
    assert any(i % 3 == 2 for i in range(len(client.calls)))  # some reads really were throttled
    calls = sorted(client.calls)
    # Token bucket: in any window of T seconds, at most BURST + RATE * T reads (a little slack
    # for the clock being read on both sides of the lock).
    for i, start in enumerate(calls):
        for j in range(i, len(calls)):
            window = calls[j] - start
            assert j - i + 1 <= BURST + RATE * window + 1, (j - i + 1, window)


def test_as_deployed_a_waiting_calls_own_calls_are_tried_once(local_aws: Any) -> None:
    """The service as the handler builds it: the wait loop's history reads, its item's
    registration and reads, and the making of its queue go to clients botocore tries once (the
    loop backs off itself and knows the deadline); the start and a GET's reads go to the retrying
    ones."""
    service = build_service(Settings.from_environment())

    def attempts(client: Any) -> Any:
        return client.meta.config.retries.get("total_max_attempts")

    assert attempts(service._sfn._waiting_client) == 1
    assert attempts(service._signals._client) == 1
    assert service._wakeups is not None and attempts(service._wakeups._client) == 1  # its queue, made before the start
    assert attempts(service._sfn._client) == attempts(service._keys._client) == 4  # "max_attempts": 3 retries
