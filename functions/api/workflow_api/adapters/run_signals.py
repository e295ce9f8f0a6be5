"""Runs' ends, as EventBridge reports them, kept in DynamoDB: the one signal a waiting call reads.

Step Functions' reads are account-wide quotas (GetExecutionHistory: refill 20/s for the whole
account), so a call cannot poll the run itself. EventBridge's "Step Functions Execution Status
Change" event costs no quota and carries the end whole: status, output (when it fits the event),
error, cause, start and stop dates. ``run_status`` (the function the event rule invokes) writes it
here; a waiting call polls this item with strongly consistent reads (DynamoDB has no account-wide
read bucket) until it holds the end. See ``run_wait.py``.

Item: ``pk = status#<executionArn>``, the Step Functions status, ``stopDate`` and ``startDate``
(epoch ms), and the output, error, cause and input as the event gave them. A run that is redriven
ends again later; an event delivered late or twice never overwrites a newer end.
"""

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from ..history import RunEnd
from .aws import dynamodb_errors
from .table import TableItems

# DynamoDB holds 400 KB an item. The output (at most 256 KiB, as Step Functions caps it) is always
# kept when the event has it; the input only while both fit, with room for the rest of the item.
MAX_KEPT_TEXT_BYTES = 380 * 1024


def end_of(detail: Mapping[str, Any]) -> RunEnd:
    """The end an "Execution Status Change" event's ``detail`` reports. ``output``/``input`` are
    left out by Step Functions when too large for the event (``outputDetails.included`` false)."""

    def text(name: str) -> str | None:
        value = detail.get(name)
        included = (detail.get(f"{name}Details") or {}).get("included", True)
        return value if isinstance(value, str) and included else None

    output, workflow_input = text("output"), text("input")
    if workflow_input is not None and len((output or "").encode()) + len(workflow_input.encode()) > MAX_KEPT_TEXT_BYTES:
        workflow_input = None  # the caller that started the run knows it; a joiner reads the history
    return RunEnd(
        status=str(detail["status"]),
        stop_date=int(detail["stopDate"]),
        start_date=int(detail.get("startDate") or 0),
        output=output,
        error=detail.get("error"),
        cause=detail.get("cause"),
        input=workflow_input,
    )


class RunSignals(TableItems):
    @staticmethod
    def _key(execution_arn: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"status#{execution_arn}"}}

    def record(self, execution_arn: str, end: RunEnd) -> bool:
        """Keep ``end`` unless a later end is kept already; answers whether it was kept. The same
        end again (EventBridge delivers at least once) is simply written again."""
        item: dict[str, Any] = {
            **self._key(execution_arn),
            "status": {"S": end.status},
            "stopDate": {"N": str(end.stop_date)},
            "startDate": {"N": str(end.start_date)},
            "expiresAt": self._expires_at(),
        }
        for name in ("output", "error", "cause", "input"):
            value = getattr(end, name)
            if value is not None:
                item[name] = {"S": value}
        try:
            with dynamodb_errors():
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(stopDate) OR stopDate <= :stop",
                    ExpressionAttributeValues={":stop": {"N": str(end.stop_date)}},
                )
        except ClientError:  # only a failed condition gets here: a later end is recorded
            return False
        return True

    def ended(self, execution_arn: str) -> RunEnd | None:
        """The run's latest recorded end; None while no event about its end has arrived.
        Strongly consistent: a waiter polling right after run_status's write sees it."""
        with dynamodb_errors():
            item = self._client.get_item(TableName=self._table, Key=self._key(execution_arn), ConsistentRead=True).get(
                "Item"
            )
        return self._end_in(item or {})

    @staticmethod
    def _end_in(item: Mapping[str, Any]) -> RunEnd | None:
        if "stopDate" not in item:
            return None

        def text(name: str) -> str | None:
            return item[name]["S"] if name in item else None

        return RunEnd(
            status=item["status"]["S"],
            stop_date=int(item["stopDate"]["N"]),
            start_date=int(item.get("startDate", {}).get("N", 0)),
            output=text("output"),
            error=text("error"),
            cause=text("cause"),
            input=text("input"),
        )
