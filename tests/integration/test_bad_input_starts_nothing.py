"""The bad inputs of ``tests/e2e/bad_inputs.py`` through the API handler, in-process on the
template's stack in moto: each gets its answer and leaves nothing behind, no execution in any
state machine and no idempotency record.

The events are built by local mode's own gateway code from the bytes the HTTP test sends, so the
handler sees what it sees behind the local server (and behind API Gateway).
"""

import json
from typing import Any

import boto3
import pytest

from local_mode.aws import REGION
from local_mode.gateway import Router, proxy_event
from tests.e2e.bad_inputs import LAMBDA_CASES, BadInput

REFUSED = [case for case in LAMBDA_CASES if not case.starts]


def executions(local_aws: Any) -> int:
    client = boto3.client("stepfunctions", region_name=REGION)
    paginator = client.get_paginator("list_executions")
    machines = {name: {v: local_aws.state_machine_arn(name, v) for v in vs} for name, vs in local_aws.workflows.items()}
    return sum(
        len(page["executions"])
        for versions in machines.values()
        for arn in versions.values()
        for page in paginator.paginate(stateMachineArn=arn)
    )


def idempotency_records(local_aws: Any) -> int:
    """The table's items but runs' ends (``status#``): run_status writes those whenever an earlier
    test's run ends, and a run that was never started has none."""
    client = boto3.client("dynamodb", region_name=REGION)
    table = local_aws.environment["IDEMPOTENCY_TABLE_NAME"]
    pages = client.get_paginator("scan").paginate(
        TableName=table,
        Select="COUNT",
        FilterExpression="NOT begins_with(pk, :end)",
        ExpressionAttributeValues={":end": {"S": "status#"}},
    )
    return sum(page["Count"] for page in pages)


def invoke(local_aws: Any, case: BadInput) -> dict[str, Any]:
    matched = Router(local_aws.routes).match(case.method, case.path)
    assert matched is not None, f"{case.method} {case.path} is not a route of template.yaml"
    event = proxy_event(case.method, case.target, case.wire_headers(), case.body, matched)
    response: dict[str, Any] = local_aws.invoke_api(event)
    return response


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: case.id)
def test_a_refused_call_starts_nothing(local_aws: Any, case: BadInput) -> None:
    before = executions(local_aws), idempotency_records(local_aws)
    response = invoke(local_aws, case)
    assert response["statusCode"] == case.status, response["body"][:2000]
    assert json.loads(response["body"])["status"] == case.status
    assert (executions(local_aws), idempotency_records(local_aws)) == before


def test_the_count_sees_a_start(local_aws: Any) -> None:
    """The check above can fail: a call that is answered 200 shows up in the counts."""
    control = next(case for case in LAMBDA_CASES if case.id == "json-with-charset")
    before = executions(local_aws)
    assert invoke(local_aws, control)["statusCode"] == 200
    assert executions(local_aws) == before + 1
