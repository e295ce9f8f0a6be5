"""Workflows are the state machines tagged ``workflow:name`` and ``workflow:version``, found in
moto's Tagging API as the API finds them in AWS: a state machine created while the stack runs,
as another team's stack would, is callable through the API without a restart, and stops being
callable once untagged or deleted."""

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from local_mode.aws import REGION
from tests.conftest import load_event
from workflow_api.adapters.stepfunctions import StepFunctionsGateway
from workflow_api.adapters.workflow_tags import WorkflowTags
from workflow_api.catalog import WorkflowCatalog
from workflow_api.config import Settings
from workflow_api.errors import RunNotFound, ServiceUnavailable, WorkflowAmbiguous, WorkflowNotFound
from workflow_api.parameters import RunOptions
from workflow_api.service import StartCommand, WorkflowService
from workflow_api.wiring import build_catalog, build_service

# Echoes its input with the version it is, as a team's own workflow would answer something.
ECHO = {
    "StartAt": "echo",
    "States": {"echo": {"Type": "Pass", "Parameters": {"echo.$": "$", "version.$": "$.v"}, "End": True}},
}


@pytest.fixture
def workflow_name() -> str:
    return f"team_workflow_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def create(local_aws: Any) -> Iterator[Callable[..., str]]:
    """Create a state machine as another stack would: its own name, tagged (or not) by its owner."""
    made: list[str] = []

    def create(name: str, version: int | str | None = None, tags: dict[str, str] | None = None) -> str:
        if tags is None and version is not None:
            tags = {"workflow:name": name, "workflow:version": str(version)}
        arn: str = local_aws.add_state_machine(f"other-stack-{uuid.uuid4().hex[:12]}", ECHO, tags)
        made.append(arn)
        return arn

    yield create
    sfn = boto3.client("stepfunctions", region_name=REGION)
    for arn in made:
        sfn.untag_resource(resourceArn=arn, tagKeys=["workflow:name", "workflow:version"])


def service(**settings: str) -> WorkflowService:
    """The API's service as a cold start builds it, with these settings."""
    return build_service(Settings.from_environment({**os.environ, **settings}))


def execute(workflow_service: WorkflowService, name: str, version: int | None, data: dict[str, Any]) -> Any:
    command = StartCommand(workflow=name, version=version, input=data, options=RunOptions(wait_for_seconds=10))
    return workflow_service.execute(command, lambda: 30.0)


def test_a_state_machine_tagged_at_run_time_is_callable_through_the_api_without_a_restart(
    local_aws: Any, create: Callable[..., str], workflow_name: str
) -> None:
    create(workflow_name, 1)
    create(workflow_name, 2)
    event = load_event("execute_hello_world.json")
    event["pathParameters"] = {"name": workflow_name}
    event["path"] = f"/api/workflow/execute/{workflow_name}"
    event["body"] = json.dumps({"v": "?"})

    # The API function was warmed by earlier calls: its catalog reads the tags again at once for a
    # name it lacks, no more often than every 5 s (WORKFLOW_REFRESH_FLOOR_SECONDS), so this call
    # may come too soon after the last reading: it is answered within that floor.
    deadline = time.monotonic() + 10
    response = local_aws.invoke_api(event)
    while response["statusCode"] == 404 and time.monotonic() < deadline:
        time.sleep(0.2)
        response = local_aws.invoke_api(event)

    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    assert body["workflowId"].startswith(f"{workflow_name}.2.conductor-")  # latest: the highest tagged
    assert body["output"] == {"echo": {"v": "?"}, "version": "?"}
    assert body["status"] == "COMPLETED"


def test_latest_and_pinned_versions_run_the_state_machine_tagged_so(
    local_aws: Any, create: Callable[..., str], workflow_name: str
) -> None:
    first, second = create(workflow_name, 1), create(workflow_name, 2)
    workflow_service = service()

    latest = execute(workflow_service, workflow_name, None, {"v": 2})
    pinned = execute(workflow_service, workflow_name, 1, {"v": 1})

    assert (latest.http_status, latest.run.status, latest.run.output) == (
        200,
        "COMPLETED",
        {"echo": {"v": 2}, "version": 2},
    )
    assert pinned.run.workflow_id.startswith(f"{workflow_name}.1.")
    sfn = boto3.client("stepfunctions", region_name=REGION)
    assert len(sfn.list_executions(stateMachineArn=second)["executions"]) == 1
    assert len(sfn.list_executions(stateMachineArn=first)["executions"]) == 1
    # Its runs are readable by their workflowId like the template's own.
    assert workflow_service.get(pinned.run.workflow_id, "r").run.output == {"echo": {"v": 1}, "version": 1}


def test_an_untagged_state_machine_is_not_a_workflow_even_by_its_exact_name(
    local_aws: Any, create: Callable[..., str]
) -> None:
    arn = create("ignored", tags={})
    exact_name = arn.rsplit(":", 1)[1]
    other_tags = create("ignored", tags={"team": "payments", "workflow": exact_name})
    workflow_service = service(WORKFLOW_REFRESH_FLOOR_SECONDS="0")

    for name in (exact_name, other_tags.rsplit(":", 1)[1], "ignored"):
        with pytest.raises(WorkflowNotFound):
            execute(workflow_service, name, None, {})
    assert boto3.client("stepfunctions", region_name=REGION).list_executions(stateMachineArn=arn)["executions"] == []


@pytest.mark.parametrize("removal", ["untagged", "deleted"])
def test_an_untagged_or_deleted_state_machine_is_a_404_once_the_cache_time_has_passed(
    local_aws: Any, create: Callable[..., str], workflow_name: str, removal: str
) -> None:
    arn = create(workflow_name, 1)
    now = [0.0]
    config = Settings.from_environment({**os.environ, "WORKFLOW_CACHE_SECONDS": "30"})
    catalog = build_catalog(config, StepFunctionsGateway(), clock=lambda: now[0])
    workflow_service = build_service(config, catalog=catalog)
    answer = execute(workflow_service, workflow_name, None, {"v": 1})
    assert answer.http_status == 200

    sfn = boto3.client("stepfunctions", region_name=REGION)
    if removal == "untagged":
        sfn.untag_resource(resourceArn=arn, tagKeys=["workflow:name"])
    else:
        sfn.delete_state_machine(stateMachineArn=arn)

    now[0] += 29  # within the cache time the catalog still names it
    assert workflow_service.catalog.resolve(workflow_name, 1).state_machine_arn == arn
    now[0] += 1
    with pytest.raises(WorkflowNotFound):
        execute(workflow_service, workflow_name, None, {"v": 2})
    with pytest.raises(RunNotFound):
        workflow_service.get(answer.run.workflow_id, "r")


def test_two_state_machines_claiming_one_name_and_version_are_a_clear_error(
    local_aws: Any, create: Callable[..., str], workflow_name: str
) -> None:
    first, second = create(workflow_name, 1), create(workflow_name, 1)
    workflow_service = service()

    with pytest.raises(WorkflowAmbiguous) as caught:
        execute(workflow_service, workflow_name, 1, {})

    assert caught.value.status == 409
    assert first in caught.value.message and second in caught.value.message
    sfn = boto3.client("stepfunctions", region_name=REGION)
    assert [sfn.list_executions(stateMachineArn=arn)["executions"] for arn in (first, second)] == [[], []]


def test_the_template_state_machines_are_found_by_their_tags(local_aws: Any) -> None:
    assert {"hello_world": [1, 2], "slow_steps": [1], "always_fails": [1]}.items() <= local_aws.workflows.items()
    assert service().catalog.names.items() >= {"hello_world": [1, 2], "slow_steps": [1]}.items()


class RefusingTagging:
    """The Tagging API's client, refusing every call as AWS may: throttled, or unreachable."""

    def __init__(self, error: Exception) -> None:
        self.error, self.calls = error, 0

    def get_resources(self, **_: Any) -> Any:
        self.calls += 1
        raise self.error


REFUSALS = {
    "throttled": ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetResources"),
    "5xx": ClientError({"Error": {"Code": "InternalServiceException", "Message": "boom"}}, "GetResources"),
    "unreachable": EndpointConnectionError(endpoint_url="https://tagging.us-east-1.amazonaws.com"),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_a_refused_reading_of_the_tags_is_a_503_at_cold_start_and_the_last_reading_after(
    local_aws: Any, refusal: str
) -> None:
    now = [0.0]
    config = Settings.from_environment()
    tagging = RefusingTagging(REFUSALS[refusal])
    catalog = WorkflowCatalog(
        WorkflowTags(tagging).state_machines, StepFunctionsGateway().task_refs, clock=lambda: now[0]
    )
    workflow_service = build_service(config, catalog=catalog)

    with pytest.raises(ServiceUnavailable) as caught:  # http_errors: 503 with Retry-After
        execute(workflow_service, "hello_world", None, {"name": "Ada"})
    assert (caught.value.status, caught.value.retry_after_seconds) == (503, 1)

    # Once a reading exists, a refused refresh keeps it: calls are answered, not refused.
    readers = [WorkflowTags().state_machines]  # moto's Tagging API answers the first reading
    good = WorkflowCatalog(lambda: readers[-1](), StepFunctionsGateway().task_refs, clock=lambda: now[0])  # noqa: PLW0108 - the reader of the moment
    good.resolve("hello_world", None)
    readers.append(WorkflowTags(tagging).state_machines)  # and refuses from now on
    now[0] += 61
    answer = execute(build_service(config, catalog=good), "hello_world", None, {"name": "Ada"})
    assert (answer.http_status, answer.run.output) == (200, {"greeting": "Hello, Ada!", "version": 2})
    assert tagging.calls == 2  # one at the cold start, one refresh; neither retried within the floor
