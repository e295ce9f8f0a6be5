"""Local mode's AWS limits (local_mode/limits.py) on real moto and real botocore clients."""

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_mode import limits
from local_mode.aws import REGION
from local_mode.server import LocalApiServer
from tests.conftest import wait_until

ONE_ATTEMPT = Config(retries={"total_max_attempts": 1})  # each call is one API call: no retry hides a throttle


def _botocore_client() -> Any:
    return botocore.session.get_session().create_client("stepfunctions", region_name=REGION, config=ONE_ATTEMPT)


def _machine(local_aws: Any, name: str = "hello_world", version: int = 1) -> str:
    arn: str = local_aws.state_machine_arn(name, version)
    return arn


def _finished(client: Any, arn: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        described: dict[str, Any] = client.describe_execution(executionArn=arn)
        return None if described["status"] == "RUNNING" else described

    result: dict[str, Any] = wait_until(ended, 5)
    return result


def _run(local_aws: Any, name: str = "hello_world") -> str:
    client = boto3.client("stepfunctions", region_name=REGION)
    arn: str = client.start_execution(
        stateMachineArn=_machine(local_aws, name), name=f"conductor-limits-{uuid.uuid4().hex}", input='{"name": "Ada"}'
    )["executionArn"]
    return arn


# --- Step Functions quotas ---------------------------------------------------------------------------


def test_a_burst_past_get_execution_history_bucket_is_throttled_then_refills_at_the_rate(
    local_aws: Any, aws_limits: Callable[..., None]
) -> None:
    aws_limits(LOCAL_SFN_QUOTAS="aws")
    arn = _run(local_aws)
    client = _botocore_client()
    began, served = time.monotonic(), 0
    with pytest.raises(ClientError) as throttled:
        while True:
            client.get_execution_history(executionArn=arn, maxResults=1)
            served += 1
    elapsed = time.monotonic() - began
    error = throttled.value.response
    assert error["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert 400 <= served <= 400 + 20 * elapsed + 1  # the bucket, plus what refilled meanwhile
    assert limits.throttled() == {"GetExecutionHistory": 1}

    # An empty bucket serves 20 calls a second, however hard it is asked; throttled calls take no token.
    window_end, refilled = time.monotonic() + 0.5, 0
    while time.monotonic() < window_end:
        try:
            client.get_execution_history(executionArn=arn, maxResults=1)
            refilled += 1
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ThrottlingException"
    # 10 in the half second; fewer only if this machine is too slow to ask 20 times a second.
    assert 5 <= refilled <= 20 * (time.monotonic() - window_end + 0.5) + 1
    assert limits.throttled()["GetExecutionHistory"] > 10

    limits.reset()  # a full bucket again, and no throttles counted
    client.get_execution_history(executionArn=arn, maxResults=1)
    assert limits.throttled() == {}


def test_off_throttles_nothing(local_aws: Any, aws_limits: Callable[..., None]) -> None:
    aws_limits(LOCAL_SFN_QUOTAS="off")
    arn = _run(local_aws)
    client = _botocore_client()
    for _ in range(330):  # past DescribeExecution's bucket of 300 (and its 15 a second)
        client.describe_execution(executionArn=arn)
    assert limits.throttled() == {}
    assert limits.describe().startswith("AWS limits: Step Functions quotas off")


def test_a_custom_spec_applies_to_every_client_and_keeps_aws_figures_for_the_rest(
    local_aws: Any, aws_limits: Callable[..., None]
) -> None:
    aws_limits(LOCAL_SFN_QUOTAS="DescribeExecution=3/0.5")
    assert limits.quotas.quotas == {**limits.AWS_QUOTAS, "DescribeExecution": limits.Quota(3, 0.5)}
    arn = _run(local_aws)  # StartExecution keeps AWS's bucket
    boto3_client = boto3.client("stepfunctions", region_name=REGION, config=ONE_ATTEMPT)
    plain_client = _botocore_client()
    boto3_client.describe_execution(executionArn=arn)
    plain_client.describe_execution(executionArn=arn)
    boto3_client.describe_execution(executionArn=arn)
    for client in (boto3_client, plain_client):  # one account: both callers share the 3
        with pytest.raises(ClientError, match="ThrottlingException"):
            client.describe_execution(executionArn=arn)
    assert limits.throttled() == {"DescribeExecution": 2}


def test_a_bad_setting_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="LOCAL_SFN_QUOTAS"):
        limits.parse_quotas("ListExecutions=1/1")
    with pytest.raises(ValueError, match="LOCAL_SFN_QUOTAS"):
        limits.parse_quotas("StartExecution=fast")
    assert limits.parse_quotas(None) == limits.AWS_QUOTAS
    assert limits.parse_quotas("OFF") is None


# --- Lambda concurrency ---------------------------------------------------------------------------------


def test_a_task_throttled_by_lambda_concurrency_is_retried_per_its_asl_retry(
    local_aws: Any, aws_limits: Callable[..., None]
) -> None:
    aws_limits(LOCAL_LAMBDA_CONCURRENCY="1", LOCAL_EVENTBRIDGE_DELAY_MS="0")
    greet = local_aws.functions["GreetFunction"].name
    client = boto3.client("stepfunctions", region_name=REGION)
    with limits.lambdas.invocation(local_aws.api_function.name):  # the API function holds the one slot
        arn = _run(local_aws)
        wait_until(lambda: limits.lambda_throttles().get(greet), 5)
    described = _finished(client, arn)  # hello_world retries after 1 s, when the slot is free
    assert described["status"] == "SUCCEEDED"
    events = client.get_execution_history(executionArn=arn)["events"]
    kinds = [event["type"] for event in events]
    failed = next(event for event in events if event["type"] == "LambdaFunctionFailed")
    assert failed["lambdaFunctionFailedEventDetails"]["error"] == "Lambda.TooManyRequestsException"
    assert kinds.index("LambdaFunctionFailed") < kinds.index("LambdaFunctionSucceeded")
    # Each throttle is one more attempt (an earlier test's EventBridge delivery may take the slot once more).
    assert kinds.count("LambdaFunctionScheduled") == 1 + limits.lambda_throttles()[greet]


def test_reserved_concurrency_caps_a_function_and_is_taken_from_the_others(
    local_aws: Any, aws_limits: Callable[..., None]
) -> None:
    aws_limits(LOCAL_LAMBDA_CONCURRENCY="3")
    lambdas = limits.lambdas
    lambdas.reserve("reserved-fn", 1)
    try:
        with lambdas.invocation("reserved-fn"):
            with pytest.raises(limits.LambdaThrottled, match="ReservedFunctionConcurrentInvocationLimitExceeded"):
                lambdas.invocation("reserved-fn").__enter__()
            shared_full = pytest.raises(limits.LambdaThrottled, match="ConcurrentInvocationLimitExceeded")
            with lambdas.invocation("a"), lambdas.invocation("b"), shared_full:  # 3 - 1 reserved = 2 shared
                lambdas.invocation("c").__enter__()
        assert limits.lambda_throttles() == {"reserved-fn": 1, "c": 1}
    finally:
        lambdas.forget("reserved-fn")


def test_a_reservation_comes_from_the_template_and_an_fn_if_to_novalue_reserves_nothing(local_aws: Any) -> None:
    from local_mode.aws import LocalAws

    api = local_aws.routes[0].function
    reserved = local_aws.template["Resources"][api]["Properties"].get("ReservedConcurrentExecutions")
    if reserved is None:
        pytest.skip("the template reserves no concurrency for the API function")
    assert local_aws.api_function.name not in limits.lambdas.reserved()  # the default resolves to AWS::NoValue
    parameter = next(iter(reserved["Fn::If"][1].values()))  # {"Ref": <the parameter>}
    assert LocalAws(parameters={parameter: 7})._resolver().resolve(reserved) == 7


def test_the_api_function_over_its_limit_gets_api_gateway_answer_over_http(
    local_aws: Any, aws_limits: Callable[..., None]
) -> None:
    aws_limits(LOCAL_LAMBDA_CONCURRENCY="1")
    server = LocalApiServer(("127.0.0.1", 0), local_aws)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"{server.url}/api/workflow/{uuid.uuid4().hex}"
        # Another request holds the one slot.
        with limits.lambdas.invocation(local_aws.api_function.name), pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(url, timeout=5)
        assert answer.value.code == 500
        assert json.loads(answer.value.read()) == {"message": "Internal server error"}
        assert limits.lambda_throttles() == {local_aws.api_function.name: 1}
    finally:
        server.shutdown()
        server.server_close()


# --- EventBridge ----------------------------------------------------------------------------------------


@pytest.fixture
def run_status_calls(local_aws: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """executionArn -> when (epoch seconds) RunStatusFunction was invoked with its event."""
    function = local_aws.functions["RunStatusFunction"]
    calls: dict[str, float] = {}
    real = function.invoke

    def invoke(event: Any) -> Any:
        calls[event["detail"]["executionArn"]] = time.time()
        return real(event)

    monkeypatch.setattr(function, "invoke", invoke)
    return calls


def test_the_status_change_reaches_its_target_no_sooner_than_the_delay(
    local_aws: Any, aws_limits: Callable[..., None], run_status_calls: dict[str, float]
) -> None:
    aws_limits(LOCAL_EVENTBRIDGE_DELAY_MS="300")
    client = boto3.client("stepfunctions", region_name=REGION)
    arn = _run(local_aws)
    stopped = _finished(client, arn)["stopDate"].timestamp()
    invoked = wait_until(lambda: run_status_calls.get(arn), 5)
    assert invoked - stopped >= 0.3 - 0.002  # stopDate is kept to the millisecond
    assert invoked - stopped < 2.0
    assert limits.eventbridge.delivered() == 1


def test_lose_next_drops_one_event(
    local_aws: Any, aws_limits: Callable[..., None], run_status_calls: dict[str, float]
) -> None:
    aws_limits(LOCAL_EVENTBRIDGE_DELAY_MS="0")
    client = boto3.client("stepfunctions", region_name=REGION)
    limits.eventbridge.lose_next(1)
    lost = _run(local_aws)
    _finished(client, lost)
    wait_until(lambda: limits.eventbridge.dropped() == 1, 5)
    kept = _run(local_aws)  # ends after the lost one: once its event is in, the lost one never comes
    wait_until(lambda: run_status_calls.get(kept), 5)
    assert lost not in run_status_calls
    assert (limits.eventbridge.delivered(), limits.eventbridge.dropped()) == (1, 1)


def test_loss_is_a_seeded_fraction(local_aws: Any, aws_limits: Callable[..., None]) -> None:
    aws_limits(LOCAL_EVENTBRIDGE_LOSS="0.5", LOCAL_EVENTBRIDGE_SEED="7", LOCAL_EVENTBRIDGE_DELAY_MS="0")
    for _ in range(200):
        limits.eventbridge.publish([])
    first = limits.eventbridge.dropped()
    limits.reset()  # the same seed: the same events lost
    for _ in range(200):
        limits.eventbridge.publish([])
    assert limits.eventbridge.dropped() == first
    assert 70 <= first <= 130
    assert "EventBridge loss 50% (seed 7)" in limits.describe()


def test_defaults_are_aws_figures(aws_limits: Callable[..., None]) -> None:
    aws_limits()
    assert limits.describe() == (
        "AWS limits: Step Functions quotas (us-east-1), Lambda concurrency 1000, EventBridge delay 129 ms"
    )
