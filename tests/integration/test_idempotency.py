"""Idempotency on the template's stack in moto: the matrix, crashes at each point, throttling,
a property test of the whole decision path against a model of SPEC's matrix, and a key bound to
the request it was made for (422 for any other, nothing started; the race of different inputs)."""

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.aws_faults import ThrottlingClient
from tests.conftest import load_event
from workflow_api.adapters.idempotency_store import IdempotencyStore
from workflow_api.adapters.stepfunctions import StepFunctionsGateway
from workflow_api.config import Settings
from workflow_api.errors import IdempotencyConflict, IdempotencyKeyReused, ServiceUnavailable
from workflow_api.idempotency import KeyRecord, KeyState
from workflow_api.parameters import RunOptions
from workflow_api.service import StartCommand, WorkflowService
from workflow_api.wiring import build_service

STRATEGIES = ("RETURN_EXISTING", "FAIL", "FAIL_ON_RUNNING")


class Crash(BaseException):
    """Stands for the process dying at that point: nothing in the service catches it."""


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> Clock:
    return Clock()


@pytest.fixture
def make_service(local_aws: Any, wall: Clock) -> Iterator[Callable[..., WorkflowService]]:
    config = Settings.from_environment()

    def make(
        stepfunctions: StepFunctionsGateway | None = None, keys: IdempotencyStore | None = None
    ) -> WorkflowService:
        return build_service(
            config,
            stepfunctions=stepfunctions or StepFunctionsGateway(boto3.client("stepfunctions")),
            idempotency_keys=keys,
            dynamodb_client=boto3.client("dynamodb"),
            answer_margin_seconds=0,
            lease_seconds=40,
            wall_clock=wall,
        )

    yield make


def executions(local_aws: Any, workflow: str, version: int) -> list[str]:
    arn = local_aws.state_machine_arn(workflow, version)
    listed = boto3.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]
    return [e["name"] for e in listed]


def command(key: str, strategy: str, workflow: str = "hello_world", wait: int = 5, **body: Any) -> StartCommand:
    options = RunOptions(idempotency_key=key, on_conflict=strategy, wait_for_seconds=wait)  # type: ignore[arg-type]
    return StartCommand(workflow=workflow, version=None, input=body, options=options)


def run(service: WorkflowService, cmd: StartCommand) -> Any:
    return service.execute(cmd, lambda: 30.0)


def mine(local_aws: Any, key: str) -> list[str]:
    from workflow_api.idempotency import execution_name

    prefix = execution_name("hello_world", key, 1).rsplit("-", 1)[0]
    return [n for n in executions(local_aws, "hello_world", 2) if n.startswith(prefix)]


# --- the matrix, strategy by state of the existing run ------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "existing", "expected"),
    [
        ("RETURN_EXISTING", None, "started"),
        ("FAIL", None, "started"),
        ("FAIL_ON_RUNNING", None, "started"),
        ("RETURN_EXISTING", "running", "replayed-206"),
        ("FAIL", "running", 409),
        ("FAIL_ON_RUNNING", "running", 409),
        ("RETURN_EXISTING", "ended", "replayed-200"),
        ("FAIL", "ended", 409),
        ("FAIL_ON_RUNNING", "ended", "started-new"),
    ],
)
def test_matrix(
    make_service: Callable[..., WorkflowService], strategy: str, existing: str | None, expected: Any
) -> None:
    service = make_service()
    key = f"matrix-{uuid.uuid4()}"
    delay = 3 if existing == "running" else 0  # one request throughout: the key is bound to it
    first = None
    if existing == "running":
        first = service.execute(command(key, "FAIL", "slow_steps", wait=0, delaySeconds=delay), lambda: 30.0)
        assert first.http_status == 206
    elif existing == "ended":
        first = run(service, command(key, "FAIL", "slow_steps", delaySeconds=delay))
        assert first.run.status == "COMPLETED"
    try:
        answer = service.execute(command(key, strategy, "slow_steps", wait=1, delaySeconds=delay), lambda: 30.0)
    except IdempotencyConflict as conflict:
        assert expected == 409
        assert first is not None and conflict.workflow_id == first.run.workflow_id
        return
    if expected == "started":
        assert not answer.replayed and answer.run.status == "COMPLETED"
    elif expected == "started-new":
        assert first is not None and answer.run.workflow_id != first.run.workflow_id
        assert not answer.replayed and answer.run.workflow_id.endswith("-2")
    else:
        assert first is not None and answer.replayed and answer.run.workflow_id == first.run.workflow_id
        assert answer.http_status == (206 if expected == "replayed-206" else 200)


def test_key_is_scoped_per_workflow(make_service: Callable[..., WorkflowService]) -> None:
    service = make_service()
    key = f"scope-{uuid.uuid4()}"
    hello = run(service, command(key, "FAIL", "hello_world"))
    fails = run(service, command(key, "FAIL", "always_fails"))
    assert hello.run.status == "COMPLETED" and fails.run.status == "FAILED"


# --- crashes ---------------------------------------------------------------------------------------


def test_crash_after_claim_before_start_leaves_the_key_usable(
    local_aws: Any, make_service: Callable[..., WorkflowService], wall: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"crash-claim-{uuid.uuid4()}"

    def die(*_: Any, **__: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(StepFunctionsGateway, "start_or_find", die)
        with pytest.raises(Crash):
            run(make_service(), command(key, "FAIL", name="Ada"))
    assert mine(local_aws, key) == []
    # While the claim's lease is live, FAIL says "being started"; once it runs out, a retry starts it.
    with pytest.raises(IdempotencyConflict):
        run(make_service(), command(key, "FAIL", name="Ada"))
    wall.now += 41
    answer = run(make_service(), command(key, "FAIL", name="Ada"))
    assert answer.run.status == "COMPLETED" and not answer.replayed
    assert len(mine(local_aws, key)) == 1


def test_crash_after_claim_return_existing_retry_starts_it_at_once(
    local_aws: Any, make_service: Callable[..., WorkflowService], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"crash-claim-re-{uuid.uuid4()}"
    with monkeypatch.context() as patch:
        patch.setattr(StepFunctionsGateway, "start_or_find", lambda *a, **k: (_ for _ in ()).throw(Crash()))
        with pytest.raises(Crash):
            run(make_service(), command(key, "RETURN_EXISTING", name="Ada"))
    answer = run(make_service(), command(key, "RETURN_EXISTING", name="Ada"))
    assert answer.run.output == {"greeting": "Hello, Ada!", "version": 2}
    assert len(mine(local_aws, key)) == 1


def test_crash_after_start_before_record_never_starts_a_second_run(
    local_aws: Any, make_service: Callable[..., WorkflowService], wall: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"crash-start-{uuid.uuid4()}"

    def die(*_: Any, **__: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(IdempotencyStore, "mark_started", die)
        with pytest.raises(Crash):
            run(make_service(), command(key, "FAIL", name="Ada"))
    assert len(mine(local_aws, key)) == 1
    wall.now += 41
    with pytest.raises(IdempotencyConflict) as conflict:
        run(make_service(), command(key, "FAIL", name="Ada"))
    assert conflict.value.workflow_id.endswith(mine(local_aws, key)[0])
    replay = run(make_service(), command(key, "RETURN_EXISTING", name="Ada"))
    assert replay.replayed and replay.run.output == {"greeting": "Hello, Ada!", "version": 2}
    with pytest.raises(IdempotencyKeyReused):  # the key is Ada's: another input is no replay
        run(make_service(), command(key, "RETURN_EXISTING", name="Someone else"))
    assert len(mine(local_aws, key)) == 1


# --- throttling and outages during the start ----------------------------------------------------------


def test_throttled_start_is_503_and_the_retry_starts_exactly_once(
    local_aws: Any, make_service: Callable[..., WorkflowService]
) -> None:
    key = f"throttle-start-{uuid.uuid4()}"
    throttled = StepFunctionsGateway(ThrottlingClient(boto3.client("stepfunctions"), "start_execution", 1))  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable) as refused:
        run(make_service(stepfunctions=throttled), command(key, "FAIL", name="Ada"))
    assert refused.value.status == 503 and refused.value.retryable
    assert mine(local_aws, key) == []
    # The claim was released: the caller's retry is not told "being started", it starts the run.
    answer = run(make_service(stepfunctions=throttled), command(key, "FAIL", name="Ada"))
    assert answer.run.status == "COMPLETED" and not answer.replayed
    assert len(mine(local_aws, key)) == 1


def test_throttled_dynamodb_is_503_and_nothing_starts(
    local_aws: Any, make_service: Callable[..., WorkflowService]
) -> None:
    key = f"throttle-ddb-{uuid.uuid4()}"
    config = Settings.from_environment()
    keys = IdempotencyStore(
        config.idempotency_table_name,
        90,
        ThrottlingClient(boto3.client("dynamodb"), "put_item", 1),  # type: ignore[arg-type]
    )
    with pytest.raises(ServiceUnavailable):
        run(make_service(keys=keys), command(key, "FAIL", name="Ada"))
    assert mine(local_aws, key) == []
    assert run(make_service(keys=keys), command(key, "FAIL", name="Ada")).run.status == "COMPLETED"


def test_waiting_through_throttled_history_reads_never_fails(make_service: Callable[..., WorkflowService]) -> None:
    """The wait learns of the end from the run's item; the one history read (for tasks) is
    refused, and the answer keeps the end's status and output, without tasks."""
    throttled = ThrottlingClient(boto3.client("stepfunctions"), "get_execution_history", 4)
    answer = run(make_service(stepfunctions=StepFunctionsGateway(throttled)), command(f"t-{uuid.uuid4()}", "FAIL"))  # type: ignore[arg-type]
    assert answer.http_status == 200 and answer.run.status == "COMPLETED"
    assert answer.run.output == {"greeting": "Hello, World!", "version": 2}
    assert len(throttled.calls) == answer.aws_calls["GetExecutionHistory"] >= 1
    assert throttled.left == 4 - len(throttled.calls)  # every read of the wait was refused


def test_a_replay_whose_history_read_is_refused_answers_the_run_not_a_made_up_one(
    make_service: Callable[..., WorkflowService],
) -> None:
    """A replay that waits not at all knows nothing of the run it joins (not even its input).
    When AWS refuses the history read, the caller is not told the ended run is RUNNING with no
    input: DescribeExecution tells its end, input and output."""
    key = f"replay-refused-{uuid.uuid4()}"
    first = run(make_service(), command(key, "RETURN_EXISTING", name="Ada"))
    assert first.run.status == "COMPLETED"
    refused = ThrottlingClient(boto3.client("stepfunctions"), "get_execution_history", 1)
    replaying = make_service(stepfunctions=StepFunctionsGateway(refused))  # type: ignore[arg-type]

    again = run(replaying, command(key, "RETURN_EXISTING", wait=0, name="Ada"))

    assert len(refused.calls) == 1 and refused.left == 0  # the history read was made, and refused
    assert again.replayed and again.http_status == 200
    assert (again.run.status, again.run.input) == ("COMPLETED", {"name": "Ada"})
    assert again.run.output == {"greeting": "Hello, Ada!", "version": 2}
    assert again.run.workflow_id == first.run.workflow_id


def test_a_replay_whose_step_functions_reads_are_all_refused_is_never_answered_running(
    make_service: Callable[..., WorkflowService],
) -> None:
    """SPEC: throttling is backed off, never a wrong status. The run has ended and run_status has
    recorded its end; a replay with waitForSeconds=0 whose history read and DescribeExecution are
    both refused must answer that end (the item holds it) or 503, not 206 RUNNING."""
    key = f"replay-all-refused-{uuid.uuid4()}"
    first = run(make_service(), command(key, "RETURN_EXISTING", name="Ada"))
    assert first.run.status == "COMPLETED"
    client = boto3.client("stepfunctions")
    refused = ThrottlingClient(ThrottlingClient(client, "get_execution_history", 5), "describe_execution", 5)
    replaying = make_service(stepfunctions=StepFunctionsGateway(refused))  # type: ignore[arg-type]

    try:
        again = run(replaying, command(key, "RETURN_EXISTING", wait=0, name="Ada"))
    except ServiceUnavailable as told:
        assert told.retryable  # "retry", not a made-up run
        return
    assert (again.http_status, again.run.status) == (200, "COMPLETED"), (again.run, again.aws_calls)
    assert again.run.output == {"greeting": "Hello, Ada!", "version": 2}


# --- concurrency: N callers with one new key at the same moment start one run -------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_sixteen_concurrent_calls_start_one_run(local_aws: Any, strategy: str) -> None:
    key = f"race-{strategy}-{uuid.uuid4()}"
    # A run that outlasts the race, so FAIL_ON_RUNNING sees it running throughout.
    event = load_event("execute_hello_world.json")
    event["path"] = event["path"].replace("hello_world", "slow_steps")
    event["pathParameters"] = {"name": "slow_steps"}
    event["body"] = json.dumps({"delaySeconds": 5})
    event["headers"] = {**event["headers"], "X-Idempotency-key": key, "X-on-conflict": strategy, "waitForSeconds": "0"}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: local_aws.invoke_api(json.loads(json.dumps(event))), range(16)))
    statuses = [a["statusCode"] for a in answers]
    bodies = [json.loads(a["body"]) for a in answers]
    assert len([n for n in executions(local_aws, "slow_steps", 1) if n.startswith(_prefix("slow_steps", key))]) == 1
    ids = {b.get("workflowId") for b in bodies}
    assert len(ids) == 1, ids
    if strategy == "RETURN_EXISTING":
        assert set(statuses) <= {200, 206}
    else:
        assert statuses.count(409) >= 1 and set(statuses) <= {200, 206, 409}
        assert len([s for s in statuses if s != 409]) == 1


# --- the whole decision path against a model of SPEC's matrix ---------------------------------------

steps = st.lists(
    st.one_of(st.sampled_from(STRATEGIES), st.just("END")),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_service_follows_the_matrix_model(
    local_aws: Any, make_service: Callable[..., WorkflowService], plan: list[str]
) -> None:
    """Model: a key has no run, a running run, or an ended run; each call's outcome is the
    matrix's cell, and the number of runs started equals the model's."""
    service = make_service()
    key = f"model-{uuid.uuid4()}"
    sfn = boto3.client("stepfunctions")
    model_state, model_runs, current_id = "none", 0, None
    for step in plan:
        if step == "END":
            if current_id is not None and model_state == "running":
                stop(sfn, _arn(local_aws, "slow_steps", current_id.rsplit(".", 1)[1]))
                model_state = "ended"
            continue
        cmd = command(key, step, "slow_steps", wait=0, delaySeconds=30)
        expected = {
            "none": "start",
            "running": "join" if step == "RETURN_EXISTING" else "conflict",
            "ended": {"RETURN_EXISTING": "join", "FAIL": "conflict", "FAIL_ON_RUNNING": "start"}[step],
        }[model_state]
        try:
            answer = service.execute(cmd, lambda: 30.0)
            outcome = "join" if answer.replayed else "start"
            workflow_id = answer.run.workflow_id
        except IdempotencyConflict as conflict:
            outcome, workflow_id = "conflict", conflict.workflow_id
        assert outcome == expected, (plan, step, model_state)
        if outcome == "start":
            model_runs += 1
            model_state, current_id = "running", workflow_id
        else:
            assert workflow_id == current_id
    started = [n for n in executions(local_aws, "slow_steps", 1) if key and n.startswith(_prefix("slow_steps", key))]
    assert len(started) == model_runs
    for name in started:
        stop(sfn, _arn(local_aws, "slow_steps", name))


def stop(sfn: Any, execution_arn: str) -> None:
    """Abort a run and wait until it reads as ended, as StopExecution does in AWS (moto fails
    a stop that comes before its executor has set the run up, and ends the run a moment later:
    after the task state it is in, whose Lambda may be a cold container on a busy machine)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
            return
        if len(sfn.get_execution_history(executionArn=execution_arn)["events"]) >= 2:
            with contextlib.suppress(AttributeError):  # already stopping
                sfn.stop_execution(executionArn=execution_arn)
        time.sleep(0.01)  # moto's executor has not set the run up, or not yet seen the stop
    raise AssertionError(f"{execution_arn} did not end within 30 s of being stopped")


def _prefix(workflow: str, key: str) -> str:
    from workflow_api.idempotency import execution_name

    return execution_name(workflow, key, 1).rsplit("-", 1)[0]


def _arn(local_aws: Any, workflow: str, name: str) -> str:
    machine = local_aws.state_machine_arn(workflow, 1)
    return machine.replace(":stateMachine:", ":execution:") + ":" + name


def test_sixteen_fail_on_running_calls_after_the_run_ended_start_one_new_run(
    local_aws: Any, make_service: Callable[..., WorkflowService]
) -> None:
    key = f"race-after-end-{uuid.uuid4()}"
    # One request throughout (the key is bound to it): a run that outlasts the race, ended by a stop.
    first = run(make_service(), command(key, "FAIL_ON_RUNNING", "slow_steps", wait=0, delaySeconds=5))
    stop(boto3.client("stepfunctions"), _arn(local_aws, "slow_steps", first.run.workflow_id.rsplit(".", 1)[1]))

    def again(_: int) -> str:
        try:
            answer = make_service().execute(
                command(key, "FAIL_ON_RUNNING", "slow_steps", wait=0, delaySeconds=5), lambda: 30.0
            )
            return f"started {answer.run.workflow_id}"
        except IdempotencyConflict as conflict:
            return f"409 {conflict.workflow_id}"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(again, range(16)))
    started = [o for o in outcomes if o.startswith("started")]
    assert len(started) == 1, outcomes
    new_id = started[0].split()[1]
    assert new_id.endswith("-2") and new_id != first.run.workflow_id
    assert outcomes.count(f"409 {new_id}") == 15
    names = [n for n in executions(local_aws, "slow_steps", 1) if n.startswith(_prefix("slow_steps", key))]
    assert sorted(names) == sorted([first.run.workflow_id.rsplit(".", 1)[1], new_id.rsplit(".", 1)[1]])


# --- a key is bound to the request it was made for (docs/IDEMPOTENCY.md) ------------------------------


def started_input(local_aws: Any, workflow: str, version: int, key: str) -> list[dict[str, Any]]:
    """The input of each run Step Functions holds for ``key``: what the runs were started with."""
    sfn = boto3.client("stepfunctions")
    machine = local_aws.state_machine_arn(workflow, version)
    prefix = _prefix(workflow, key)
    return [
        json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
        for e in sfn.list_executions(stateMachineArn=machine)["executions"]
        if e["name"].startswith(prefix)
    ]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("existing", ["running", "ended"])
def test_the_key_with_another_input_is_422_for_every_strategy_and_starts_nothing(
    local_aws: Any, make_service: Callable[..., WorkflowService], strategy: str, existing: str
) -> None:
    """FAIL_ON_RUNNING after the end included: the key's next run is for its own request only."""
    service = make_service()
    key = f"bound-{uuid.uuid4()}"
    delay = 5 if existing == "running" else 0
    first = service.execute(
        command(key, strategy, "slow_steps", wait=0 if delay else 5, delaySeconds=delay), lambda: 30.0
    )
    assert first.run.status == ("RUNNING" if delay else "COMPLETED")

    with pytest.raises(IdempotencyKeyReused) as refused:
        service.execute(command(key, strategy, "slow_steps", wait=1, delaySeconds=delay, note="another"), lambda: 30.0)

    assert (refused.value.status, refused.value.retryable) == (422, False)
    assert refused.value.workflow_id == first.run.workflow_id
    assert f"'{key}'" in refused.value.message and "input" in refused.value.message
    assert started_input(local_aws, "slow_steps", 1, key) == [{"delaySeconds": delay}]


def test_the_key_with_another_explicit_version_is_422_and_the_latest_matches(
    local_aws: Any, make_service: Callable[..., WorkflowService]
) -> None:
    """hello_world has versions 1 and 2. A key made for v1 replays for v1 and for "the latest"
    (absent, or 0 as Conductor's clients send it: an identical retry after v2 was deployed), and is
    a 422 for v2; made for the latest (v2), it is a 422 for v1."""
    service = make_service()

    def call(key: str, version: int | None) -> Any:
        cmd = command(key, "RETURN_EXISTING", name="Ada")
        return service.execute(StartCommand(cmd.workflow, version, cmd.input, cmd.options), lambda: 30.0)

    on_v1, on_latest = f"v1-{uuid.uuid4()}", f"latest-{uuid.uuid4()}"
    first = call(on_v1, 1)
    assert first.run.output == {"greeting": "Hello, Ada!", "version": 1}
    for latest in (None, 0):
        again = call(on_v1, latest)
        assert again.replayed and again.run.workflow_id == first.run.workflow_id
        assert again.run.output == {"greeting": "Hello, Ada!", "version": 1}
    with pytest.raises(IdempotencyKeyReused) as refused:
        call(on_v1, 2)
    assert refused.value.workflow_id == first.run.workflow_id and "version 2" in refused.value.message

    made = call(on_latest, None)
    assert made.run.workflow_id.startswith("hello_world.2.")
    assert call(on_latest, 2).replayed
    with pytest.raises(IdempotencyKeyReused):
        call(on_latest, 1)

    assert started_input(local_aws, "hello_world", 1, on_v1) == [{"name": "Ada"}]
    assert started_input(local_aws, "hello_world", 2, on_v1) == []
    assert started_input(local_aws, "hello_world", 1, on_latest) == []
    assert started_input(local_aws, "hello_world", 2, on_latest) == [{"name": "Ada"}]


def test_correlation_id_and_priority_do_not_make_another_request(make_service: Callable[..., WorkflowService]) -> None:
    service = make_service()
    key = f"metadata-{uuid.uuid4()}"
    cmd = command(key, "RETURN_EXISTING", name="Ada")
    first = service.execute(cmd, lambda: 30.0)
    again = service.execute(
        StartCommand(cmd.workflow, None, {"name": "Ada"}, cmd.options, correlation_id="order-9", priority=7),
        lambda: 30.0,
    )
    assert again.replayed and again.run.workflow_id == first.run.workflow_id


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_joining_a_claimed_key_with_another_input_is_422_and_starts_nothing(
    local_aws: Any, make_service: Callable[..., WorkflowService], monkeypatch: pytest.MonkeyPatch, strategy: str
) -> None:
    """The issue's case: Ada's call holds the key and dies before its start reaches Step
    Functions. Bob's call with the key must not start the run with his input; Ada's retry (the
    same request) does start it, with Ada's input."""
    key = f"claimed-{uuid.uuid4()}"
    with monkeypatch.context() as patch:
        patch.setattr(StepFunctionsGateway, "start_or_find", lambda *a, **k: (_ for _ in ()).throw(Crash()))
        with pytest.raises(Crash):
            run(make_service(), command(key, "RETURN_EXISTING", name="Ada"))

    with pytest.raises(IdempotencyKeyReused) as refused:
        run(make_service(), command(key, strategy, name="Bob"))
    assert refused.value.workflow_id.endswith(_prefix("hello_world", key) + "-1")
    assert mine(local_aws, key) == []

    answer = run(make_service(), command(key, "RETURN_EXISTING", name="Ada"))
    assert answer.replayed and answer.run.output == {"greeting": "Hello, Ada!", "version": 2}
    assert started_input(local_aws, "hello_world", 2, key) == [{"name": "Ada"}]


def _legacy(config: Settings, record: KeyRecord) -> None:
    """Write ``record`` as the code before keys were bound to requests did: no fingerprint."""
    assert record.fingerprint is None
    keys = IdempotencyStore(config.idempotency_table_name, 90, boto3.client("dynamodb"))
    assert keys.claim_first(record) is None


def test_a_legacy_claim_is_only_waited_on_then_taken_over_by_one_request(
    local_aws: Any, make_service: Callable[..., WorkflowService], wall: Clock
) -> None:
    """A claim written before this change does not say its input: a joiner starts nothing (it
    waits on the run, which does not exist yet). Once the claimant's lease runs out, the next call
    takes the key over, starts its own request's run, and the key is bound to that request."""
    key = f"legacy-claim-{uuid.uuid4()}"
    _legacy(
        Settings.from_environment(),
        KeyRecord("hello_world", key, 2, 1, KeyState.CLAIMED, "a-dead-claimant", wall.now + 40),
    )

    joined = run(make_service(), command(key, "RETURN_EXISTING", wait=0, name="Bob"))
    assert joined.replayed and joined.http_status == 206
    assert mine(local_aws, key) == []

    wall.now += 41
    taken = run(make_service(), command(key, "RETURN_EXISTING", name="Cy"))
    assert not taken.replayed and taken.run.output == {"greeting": "Hello, Cy!", "version": 2}
    with pytest.raises(IdempotencyKeyReused):
        run(make_service(), command(key, "RETURN_EXISTING", name="Bob"))
    assert started_input(local_aws, "hello_world", 2, key) == [{"name": "Cy"}]


def test_a_legacy_started_key_replays_as_before(local_aws: Any, make_service: Callable[..., WorkflowService]) -> None:
    """A started record written before this change: its run's input cannot be told from the key,
    so any input replays it, as it did (only a version it does not run is refused)."""
    key = f"legacy-started-{uuid.uuid4()}"
    first = run(make_service(), command(key, "RETURN_EXISTING", name="Ada"))
    config = Settings.from_environment()
    boto3.client("dynamodb").put_item(  # the record as the old code left it
        TableName=config.idempotency_table_name,
        Item={
            **IdempotencyStore.key_of("hello_world", key),
            "workflow": {"S": "hello_world"},
            "idempotencyKey": {"S": key},
            "version": {"N": "2"},
            "generation": {"N": "1"},
            "executionName": {"S": _prefix("hello_world", key) + "-1"},
            "state": {"S": "STARTED"},
        },
    )
    again = run(make_service(), command(key, "RETURN_EXISTING", name="Bob"))
    assert again.replayed and again.run.workflow_id == first.run.workflow_id
    assert again.run.output == {"greeting": "Hello, Ada!", "version": 2}
    cmd = command(key, "RETURN_EXISTING", name="Ada")
    with pytest.raises(IdempotencyKeyReused):
        make_service().execute(StartCommand(cmd.workflow, 1, cmd.input, cmd.options), lambda: 30.0)
    assert started_input(local_aws, "hello_world", 2, key) == [{"name": "Ada"}]


# --- the race of the issue: N callers, one key, different inputs, at the same moment -----------------------

RACERS = 8


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_racing_callers_with_different_inputs_start_one_run_of_one_callers_input(
    local_aws: Any, make_service: Callable[..., WorkflowService], strategy: str
) -> None:
    """Eight callers, two inputs (four each), one new key, released together by a barrier. One run
    exists, with one caller's input; every caller of that input is answered that run (a replay,
    the start, or a 409 for FAIL/FAIL_ON_RUNNING), every caller of the other input a 422 naming it."""
    key = f"race-inputs-{strategy}-{uuid.uuid4()}"
    services = [make_service() for _ in range(RACERS)]  # clients built before the race, not in it
    barrier = threading.Barrier(RACERS)

    def caller(i: int) -> tuple[dict[str, Any], str, str]:
        body = {"delaySeconds": 5, "caller": i % 2}  # outlasts the race: FAIL_ON_RUNNING sees it run
        cmd = command(key, strategy, "slow_steps", wait=0, **body)
        barrier.wait()
        try:
            answer = services[i].execute(cmd, lambda: 30.0)
            return body, ("replay" if answer.replayed else "start"), answer.run.workflow_id
        except IdempotencyConflict as conflict:
            return body, "409", conflict.workflow_id
        except IdempotencyKeyReused as reused:
            return body, "422", reused.workflow_id

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        outcomes = list(pool.map(caller, range(RACERS)))

    (winner_input,) = started_input(local_aws, "slow_steps", 1, key)  # exactly one run
    assert {workflow_id for _, _, workflow_id in outcomes} == {_workflow_id(local_aws, key)}
    for body, outcome, _ in outcomes:
        if body != winner_input:
            assert outcome == "422", outcomes
        elif strategy == "RETURN_EXISTING":
            assert outcome in ("start", "replay"), outcomes
        else:
            assert outcome in ("start", "409"), outcomes
    assert [o for _, o, _ in outcomes].count("422") == RACERS // 2
    if strategy != "RETURN_EXISTING":
        assert [o for _, o, _ in outcomes].count("start") == 1
    for name in [n for n in executions(local_aws, "slow_steps", 1) if n.startswith(_prefix("slow_steps", key))]:
        stop(boto3.client("stepfunctions"), _arn(local_aws, "slow_steps", name))


def _workflow_id(local_aws: Any, key: str) -> str:
    (name,) = [n for n in executions(local_aws, "slow_steps", 1) if n.startswith(_prefix("slow_steps", key))]
    return f"slow_steps.1.{name}"
