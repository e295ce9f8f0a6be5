"""Lambda's on-failure destination in local mode: an event a function failed on, after Lambda's
retries (``limits.eventbridge``), goes to the SQS queue template.yaml names for it (its
``AWS::Lambda::EventInvokeConfig``), in moto, as Lambda's invocation record. For RunStatusFunction
that is the end-of-run rule's dead-letter queue: a run's end that could not be recorded is kept
there, not lost, and ``scripts/redrive_run_ends.py`` can record it later.

On AWS the queue also gets what EventBridge could not hand to Lambda at all (the rule's
``DeadLetterConfig``); local mode's Lambda always accepts an event, so only this path exists here.
The queue is created, with the template's properties, when the first message goes to it. Written
to moto's SQS backend directly, never through a client: a retry that outlives its stack must not
reach out to AWS.
"""

import json
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

from moto.sqs.models import sqs_backends

from . import template as cfn

# Properties of an AWS::SQS::Queue that are also the queue's SQS attributes.
_QUEUE_ATTRIBUTES = ("MessageRetentionPeriod", "SqsManagedSseEnabled", "VisibilityTimeout")


@cache
def _destinations() -> dict[str, tuple[str, dict[str, Any]]]:
    """Function logical id -> (its on-failure queue's logical id, the queue's SQS attributes)."""
    resources = cfn.load()["Resources"]
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::Lambda::EventInvokeConfig":
            continue
        props = resource["Properties"]
        target = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        queue = str(target.get("Fn::GetAtt", [""])[0]) if isinstance(target, dict) else ""
        if queue in resources and resources[queue]["Type"] == "AWS::SQS::Queue":
            given = resources[queue].get("Properties", {})
            found[props["FunctionName"]["Ref"]] = (
                queue,
                {
                    k: str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in given.items()
                    if k in _QUEUE_ATTRIBUTES
                },
            )
    return found


def destination(function_name: str) -> tuple[str, dict[str, Any]] | None:
    """The name local mode gives ``function_name``'s on-failure queue (the queue's logical id with
    the function's stack prefix, as local mode names what it has no type for) and its attributes;
    None if the function has none."""
    for logical_id, (queue, attributes) in _destinations().items():
        if function_name == logical_id or function_name.endswith(f"-{logical_id}"):
            return function_name.removesuffix(logical_id) + queue, attributes
    return None


def invocation_record(
    function_arn: str, event: Mapping[str, Any], error: BaseException, attempts: int
) -> dict[str, Any]:
    """What Lambda sends an on-failure destination for an event its function failed on (AWS Lambda
    Developer Guide, "Capturing records of Lambda asynchronous invocations")."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": dict(event),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": type(error).__name__, "errorMessage": str(error)},
    }


def keep(function_name: str, function_arn: str, event: Mapping[str, Any], error: BaseException, attempts: int) -> None:
    """Lambda gives up on ``event``: to the function's on-failure queue, or dropped, as Lambda
    drops it when the function has no destination."""
    found = destination(function_name)
    if found is None:
        print(f"Lambda gave up on an event for {function_name}: no on-failure destination", file=sys.stderr, flush=True)
        return
    name, attributes = found
    region, account = function_arn.split(":")[3:5]
    backend = sqs_backends[account][region]
    if name not in backend.queues:
        backend.create_queue(name, None, **attributes)
    backend.send_message(name, json.dumps(invocation_record(function_arn, event, error, attempts)))
