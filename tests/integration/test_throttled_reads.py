"""Many callers waiting while AWS throttles the account's history reads: nobody fails, nobody
whose run ended is answered 206 or RUNNING, and a waiting call's own reads are tried once (its
wait backs off), while the start's calls are retried as the service's time budget assumes."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local_mode import limits
from tests.integration.test_waiting_signal import execute, service
from workflow_api.adapters.aws import CALL_WORST_SECONDS
from workflow_api.config import Settings
from workflow_api.service import RunAnswer
from workflow_api.wiring import build_service

CALLERS = 24


def test_many_callers_while_history_reads_are_throttled(aws_limits: Any) -> None:
    """24 calls at once against a GetExecutionHistory bucket of 2 that refills one a second (the
    account's is 400 / 20 a second, shared by every caller): most history reads are refused, and
    still each call answers its own run's end."""
    aws_limits(LOCAL_SFN_QUOTAS="GetExecutionHistory=2/1")
    workflow_service = service()

    def caller(i: int) -> RunAnswer:
        return execute(workflow_service, "slow_steps", {"delaySeconds": 1, "caller": i})

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        answers = list(pool.map(caller, range(CALLERS)))

    outcomes = Counter((a.http_status, a.run.status) for a in answers)
    assert outcomes == {(200, "COMPLETED"): CALLERS}, outcomes
    for i, answer in enumerate(answers):
        assert answer.run.output == {"finished": True, "delaySeconds": 1}
        assert answer.run.input == {"delaySeconds": 1, "caller": i}
        assert not answer.run.signal_timeout
    assert limits.throttled().get("GetExecutionHistory", 0) >= CALLERS // 2  # most reads really were refused
    # A refused read is not retried: the answer keeps the end the run's item gave it.
    assert sum(a.aws_calls["GetExecutionHistory"] for a in answers) <= 2 * CALLERS


def test_as_deployed_a_waiting_calls_own_calls_are_tried_once(local_aws: Any) -> None:
    """The service as the handler builds it: the wait's reads (the run's item, its history,
    DescribeExecution) go to clients botocore tries once (the wait backs off itself and knows the
    deadline); the start's calls go to the retrying ones, tried as often as CALL_WORST_SECONDS
    (two attempts of 1 s to connect and 3 s to read, and the backoff between them) counts."""
    workflow_service = build_service(Settings.from_environment())
    waiter = workflow_service._waiter

    def attempts(client: Any) -> Any:
        return client.meta.config.retries.get("total_max_attempts")

    assert attempts(waiter._sfn._waiting_client) == attempts(waiter._signals._client) == 1
    start_path: tuple[Any, ...] = (
        workflow_service._sfn._client,
        workflow_service._keys._client,
        workflow_service._records._client,
    )
    # botocore's ``max_attempts`` counts retries, ``total_max_attempts`` the first try too.
    assert [attempts(client) for client in start_path] == [2, 2, 2]
    for client in start_path:
        timeouts = client.meta.config.connect_timeout + client.meta.config.read_timeout
        assert attempts(client) * timeouts + 2 <= CALL_WORST_SECONDS
