"""Runs' ends, as EventBridge reports them, kept in DynamoDB for waiting calls to read.

Step Functions' history reads are an account-wide quota (GetExecutionHistory: refill 20/s), so a
waiter that polls history for its whole wait spends that quota in proportion to callers x poll
rate. EventBridge's "Step Functions Execution Status Change" event costs no quota: ``run_status``
(the function the event rule invokes) writes the run's end here. After its first seconds, a waiter
reads this item on its looks (on-demand DynamoDB, no shared bucket), and the history only when this
item says the run ended, when a task reference is awaited, for its last look, or now and then in
case an event is late or lost (EventBridge delivery is best effort). See ``WorkflowService._wait``.

Item: ``pk = status#<executionArn>``, the Step Functions status and the stop time (epoch ms).
A run that is redriven ends again later; an event delivered late never overwrites a newer end.
"""

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from .aws import dynamodb_client, dynamodb_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class RunEnded:
    status: str  # as Step Functions says it: SUCCEEDED, FAILED, TIMED_OUT, ABORTED
    stop_date: int  # epoch milliseconds


class RunSignals:
    def __init__(self, table_name: str, retention_days: int, client: "DynamoDBClient | None" = None) -> None:
        self._table = table_name
        self._retention_seconds = retention_days * 86400
        self._client = client or dynamodb_client()

    @staticmethod
    def _key(execution_arn: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"status#{execution_arn}"}}

    def record(self, execution_arn: str, ended: RunEnded) -> bool:
        """Keep ``ended`` unless a later end is kept already; answers whether it was kept."""
        item = {
            **self._key(execution_arn),
            "status": {"S": ended.status},
            "stopDate": {"N": str(ended.stop_date)},
            "expiresAt": {"N": str(int(time.time()) + self._retention_seconds)},
        }
        try:
            with dynamodb_errors():
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk) OR stopDate < :stop",
                    ExpressionAttributeValues={":stop": {"N": str(ended.stop_date)}},
                )
        except ClientError:  # only a failed condition gets here: a later end is recorded
            return False
        return True

    def ended(self, execution_arn: str) -> RunEnded | None:
        """The run's latest recorded end; None while no event about its end has arrived."""
        with dynamodb_errors():
            item = self._client.get_item(TableName=self._table, Key=self._key(execution_arn)).get("Item")
        if not item:
            return None
        return RunEnded(status=item["status"]["S"], stop_date=int(item["stopDate"]["N"]))
