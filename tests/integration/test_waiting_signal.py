"""How a call waits, on the template's stack in local mode with AWS's limits on: it learns of its
run's end from the item run_status writes (EventBridge's event), spends one Step Functions read
for the tasks (none without them), asks DescribeExecution when the event is lost, and never
answers RUNNING for a run that has ended, even while AWS refuses its history reads."""

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_mode import limits
from tests.integration.test_run_signals import signals
from workflow_api.config import Settings
from workflow_api.parameters import RunOptions
from workflow_api.service import RunAnswer, StartCommand, WorkflowService
from workflow_api.wiring import build_service

SLOW_STEPS = ["start_step", "pause", "final_step"]
# A GetExecutionHistory bucket of one token that never refills within a test.
NO_HISTORY_READS = "GetExecutionHistory=1/0.001"


def service(**settings: str) -> WorkflowService:
    """The service as the Lambda builds it, from the environment local mode set (plus ``settings``)."""
    return build_service(Settings.from_environment({**os.environ, **settings}))


def execute(
    workflow_service: WorkflowService,
    workflow: str,
    workflow_input: dict[str, Any],
    *,
    wait: int = 10,
    include_tasks: bool = True,
    task_refs: tuple[str, ...] = (),
) -> RunAnswer:
    options = RunOptions(wait_for_seconds=wait, wait_until_task_ref=task_refs, request_id=f"wait-{uuid.uuid4()}")
    command = StartCommand(workflow, None, workflow_input, options, include_tasks=include_tasks)
    return workflow_service.execute(command, lambda: 30.0)


def step_functions_reads(answer: RunAnswer) -> int:
    return answer.aws_calls["DescribeExecution"] + answer.aws_calls["GetExecutionHistory"]


def execution_arn(workflow_service: WorkflowService, answer: RunAnswer) -> str:
    workflow, execution_name = workflow_service._catalog.parse_workflow_id(answer.run.workflow_id)
    return workflow.execution_arn(execution_name)


def stopped_at(arn: str) -> float:
    """When Step Functions says the run ended, epoch seconds."""
    return float(boto3.client("stepfunctions").describe_execution(executionArn=arn)["stopDate"].timestamp())


def refuse_history_reads(aws_limits: Callable[..., None], **settings: str) -> None:
    """Every GetExecutionHistory from now on is throttled, as by an account over its quota
    (with other limits ``settings`` too: setting limits refills the buckets)."""
    aws_limits(LOCAL_SFN_QUOTAS=NO_HISTORY_READS, **settings)
    client = boto3.client("stepfunctions", config=Config(retries={"total_max_attempts": 1}))
    arn = f"arn:aws:states:us-east-1:123456789012:execution:none:{uuid.uuid4().hex}"
    for _ in range(3):  # the bucket's one token goes to the first call
        try:
            client.get_execution_history(executionArn=arn)
        except ClientError as refused:
            if refused.response["Error"]["Code"] == "ThrottlingException":
                return
    raise AssertionError("GetExecutionHistory is not throttled")


def test_a_run_of_a_second_is_answered_with_its_tasks_after_one_step_functions_read(aws_limits: Any) -> None:
    aws_limits()
    workflow_service = service()

    answer = execute(workflow_service, "slow_steps", {"delaySeconds": 1})
    answered = time.time()

    assert (answer.http_status, answer.run.status, answer.run.signal_timeout) == (200, "COMPLETED", False)
    assert answer.run.output == {"finished": True, "delaySeconds": 1}
    assert answer.run.tasks is not None
    assert [(t.reference_task_name, t.status) for t in answer.run.tasks] == [(n, "COMPLETED") for n in SLOW_STEPS]
    assert step_functions_reads(answer) == 1, answer.aws_calls  # the history, once, for the tasks
    assert answer.aws_calls["GetItem"] >= 1, answer.aws_calls  # the end came from the run's item
    # EventBridge's delay (~130 ms) and one look at the item (at most every 200 ms) after the end.
    assert answered - stopped_at(execution_arn(workflow_service, answer)) < 1.0
    assert limits.throttled() == {}


def test_without_tasks_the_answer_reads_nothing_of_step_functions(aws_limits: Any) -> None:
    aws_limits()

    answer = execute(service(), "slow_steps", {"delaySeconds": 1}, include_tasks=False)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.output == {"finished": True, "delaySeconds": 1}
    assert answer.run.input == {"delaySeconds": 1}
    assert answer.run.tasks is None and "tasks" not in answer.run.to_body()
    assert step_functions_reads(answer) == 0, answer.aws_calls


def test_a_failed_run_without_tasks_has_its_reason_from_the_event(aws_limits: Any) -> None:
    aws_limits()

    answer = execute(service(), "always_fails", {}, include_tasks=False)

    assert (answer.http_status, answer.run.status) == (200, "FAILED")
    assert "WorkflowExploded" in (answer.run.reason_for_incompletion or "")
    assert step_functions_reads(answer) == 0, answer.aws_calls


def test_a_lost_event_is_made_up_for_within_end_check_seconds(aws_limits: Any) -> None:
    """EventBridge delivers best effort. With every event lost, the call still answers the run's
    end, from DescribeExecution, about END_CHECK_SECONDS after it (1 s here; 10 s deployed)."""
    aws_limits(LOCAL_EVENTBRIDGE_LOSS="1")
    workflow_service = service(END_CHECK_SECONDS="1")

    answer = execute(workflow_service, "slow_steps", {"delaySeconds": 1})
    answered = time.time()

    arn = execution_arn(workflow_service, answer)
    assert (answer.http_status, answer.run.status) == (200, "COMPLETED")
    assert answer.run.output == {"finished": True, "delaySeconds": 1}
    assert signals().ended(arn) is None and limits.eventbridge.dropped() >= 1  # the event was lost
    assert 1 <= answer.aws_calls["DescribeExecution"] <= 3, answer.aws_calls  # once a second of the wait
    lag = answered - stopped_at(arn)
    assert 0 <= lag < 1.0 + 0.6, lag  # end_check_seconds, and a little for a busy machine


@pytest.mark.parametrize("include_tasks", [True, False], ids=["with tasks", "without tasks"])
def test_a_206_answers_running_after_at_most_two_step_functions_reads(aws_limits: Any, include_tasks: bool) -> None:
    aws_limits()

    answer = execute(service(), "slow_steps", {"delaySeconds": 3}, wait=1, include_tasks=include_tasks)

    assert (answer.http_status, answer.run.status, answer.run.signal_timeout) == (206, "RUNNING", True)
    assert answer.run.output == {}
    assert 1 <= step_functions_reads(answer) <= 2, answer.aws_calls  # the run asked before a 206
    if include_tasks:
        assert answer.run.tasks is not None
        assert [t.reference_task_name for t in answer.run.tasks if t.status == "COMPLETED"] == ["start_step"]


def test_an_ended_run_is_never_answered_206_while_history_reads_are_throttled(aws_limits: Any) -> None:
    refuse_history_reads(aws_limits)

    answer = execute(service(), "slow_steps", {"delaySeconds": 1})

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED"), answer.aws_calls
    assert answer.run.output == {"finished": True, "delaySeconds": 1}
    assert answer.run.input == {"delaySeconds": 1}
    assert answer.aws_calls["GetExecutionHistory"] >= 1 and limits.throttled()["GetExecutionHistory"] >= 2


def test_a_lost_event_and_throttled_history_still_answer_the_end_before_a_206(aws_limits: Any) -> None:
    """The wait runs out before end_check_seconds: the item knows nothing, the history read is
    refused, and DescribeExecution, asked before the 206, tells the end."""
    refuse_history_reads(aws_limits, LOCAL_EVENTBRIDGE_LOSS="1")

    answer = execute(service(), "hello_world", {"name": "Ada"}, wait=2)

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED"), answer.aws_calls
    assert answer.run.output == {"greeting": "Hello, Ada!", "version": 2}
    assert answer.aws_calls["DescribeExecution"] >= 1


def test_a_wait_for_a_task_whose_history_is_throttled_never_answers_an_ended_run_running(aws_limits: Any) -> None:
    """waitUntilTaskRef reads the history; while AWS refuses it, the call cannot see the task, and
    the run ends meanwhile (its event lost, or late). The answer is the run's end, not RUNNING."""
    refuse_history_reads(aws_limits, LOCAL_EVENTBRIDGE_LOSS="1")

    answer = execute(service(), "hello_world", {"name": "Ada"}, wait=2, task_refs=("greet",))

    assert (answer.http_status, answer.run.status) == (200, "COMPLETED"), (answer.run.status, answer.aws_calls)
    assert answer.run.output == {"greeting": "Hello, Ada!", "version": 2}
