"""Record the runs' ends that wait in a stack's dead-letter queue (docs/OPERATIONS.md).

RunStatusFunction could not record them. A message is either the "Step Functions Execution Status
Change" event itself (EventBridge could not deliver it: its attributes ERROR_CODE and ERROR_MESSAGE
say why) or Lambda's invocation record (the function failed on it after Lambda's retries: the event
is its requestPayload, the error its responsePayload). Each is given to RunStatusFunction again,
synchronously. A message is deleted once the function has taken it; one it fails on again stays in
the queue (visible again a minute later) and is reported. Run it after fixing the cause; it is safe
to run at any time and more than once: an end is never recorded over a later one of the same run.

usage: python scripts/redrive_run_ends.py --stack NAME [--region R] [--dry-run] [--max N]
(``--dry-run`` lists the messages and why each failed, and leaves them in the queue.)
"""

import argparse
import json
import sys
from collections import Counter
from typing import Any

import boto3

STATUS_CHANGE = "Step Functions Execution Status Change"
# template.yaml's logical ids.
QUEUE, FUNCTION = "RunEndsDeadLetterQueue", "RunStatusFunction"
# Long enough for a batch's invocations; a message the function fails on is visible again after it.
VISIBILITY_SECONDS = 60


def event_of(body: str) -> dict[str, Any] | None:
    """The status-change event a message holds (either shape), or None if it holds none."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if isinstance(message, dict) and "requestContext" in message:  # Lambda's invocation record
        message = message.get("requestPayload")
    if isinstance(message, dict) and message.get("detail-type") == STATUS_CHANGE:
        return message
    return None


def why(message: dict[str, Any]) -> str:
    """Why the end was not recorded, as the message says."""
    attributes = {name: value.get("StringValue", "") for name, value in message.get("MessageAttributes", {}).items()}
    if "ERROR_CODE" in attributes:  # EventBridge's dead letter
        return f"EventBridge: {attributes['ERROR_CODE']} {attributes.get('ERROR_MESSAGE', '')}".strip()
    record = json.loads(message["Body"])
    payload = record.get("responsePayload") or {}
    condition = record.get("requestContext", {}).get("condition", "")
    return f"Lambda ({condition}): {payload.get('errorType', '')} {payload.get('errorMessage', '')}".strip()


def stack_resources(stack: str, region: str | None) -> tuple[str, str]:
    """The stack's dead-letter queue URL and RunStatusFunction's name."""
    cloudformation = boto3.client("cloudformation", region_name=region)

    def physical_id(logical_id: str) -> str:
        found = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
        return str(found["StackResourceDetail"]["PhysicalResourceId"])

    return physical_id(QUEUE), physical_id(FUNCTION)


def redrive(
    sqs: Any,
    lambda_client: Any,
    queue_url: str,
    function_name: str,
    *,
    dry_run: bool = False,
    limit: int = 1000,
    visibility_seconds: int = VISIBILITY_SECONDS,
) -> Counter[str]:
    """Hand each message's end to ``function_name``; answers how many were recorded, found a
    later end already recorded, failed again, or held no run's end (the last two stay queued)."""
    counts: Counter[str] = Counter()
    seen: list[dict[str, Any]] = []
    while sum(counts.values()) < limit:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - sum(counts.values())),
            MessageAttributeNames=["All"],
            VisibilityTimeout=visibility_seconds,
            WaitTimeSeconds=1,
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            event = event_of(message["Body"])
            if event is None:
                counts["not a run's end"] += 1
                print(f"{message['MessageId']}: not a run's end, left in the queue", file=sys.stderr)
                continue
            detail = event["detail"]
            if dry_run:
                seen.append(message)
                counts["listed"] += 1
                print(
                    json.dumps(
                        {"executionArn": detail["executionArn"], "status": detail["status"], "why": why(message)}
                    )
                )
                continue
            answer = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
            result = json.loads(answer["Payload"].read() or b"null")
            if answer.get("FunctionError"):
                counts["failed again"] += 1
                print(f"{detail['executionArn']}: failed again, left in the queue: {result}", file=sys.stderr)
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            counts["recorded" if result.get("kept") else "a later end was recorded already"] += 1
    for message in seen:  # a dry run leaves the queue as it found it
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return counts


def main(argv: list[str] | None = None, sqs: Any = None, lambda_client: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, help="the CloudFormation stack (sam deploy's stack name)")
    parser.add_argument("--region", default=None)
    parser.add_argument("--dry-run", action="store_true", help="list the messages and why; change nothing")
    parser.add_argument("--max", type=int, default=1000, help="at most this many messages (default 1000)")
    args = parser.parse_args(argv)

    queue_url, function_name = stack_resources(args.stack, args.region)
    counts = redrive(
        sqs or boto3.client("sqs", region_name=args.region),
        lambda_client or boto3.client("lambda", region_name=args.region),
        queue_url,
        function_name,
        dry_run=args.dry_run,
        limit=args.max,
    )
    print(json.dumps(dict(counts)), file=sys.stderr)
    return 1 if counts["failed again"] or counts["not a run's end"] else 0


if __name__ == "__main__":
    sys.exit(main())
