"""What Step Functions cannot hold for a run (its correlationId and priority), kept in DynamoDB.

Written only when the caller gave either, so a plain call costs no DynamoDB write.
"""

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .aws import dynamodb_client, dynamodb_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class RunRecord:
    correlation_id: str | None = None
    priority: int = 0


class RunRecords:
    def __init__(self, table_name: str, retention_days: int, client: "DynamoDBClient | None" = None) -> None:
        self._table = table_name
        self._retention_seconds = retention_days * 86400
        self._client = client or dynamodb_client()

    @staticmethod
    def _key(workflow_id: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"run#{workflow_id}"}}

    def put(self, workflow_id: str, record: RunRecord) -> None:
        item = {
            **self._key(workflow_id),
            "priority": {"N": str(record.priority)},
            "expiresAt": {"N": str(int(time.time()) + self._retention_seconds)},
        }
        if record.correlation_id is not None:
            item["correlationId"] = {"S": record.correlation_id}
        with dynamodb_errors():
            self._client.put_item(TableName=self._table, Item=item)

    def get(self, workflow_id: str) -> RunRecord:
        with dynamodb_errors():
            item = self._client.get_item(TableName=self._table, Key=self._key(workflow_id)).get("Item")
        if not item:
            return RunRecord()
        return RunRecord(
            correlation_id=item["correlationId"]["S"] if "correlationId" in item else None,
            priority=int(item["priority"]["N"]),
        )
