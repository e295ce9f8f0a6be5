"""What Step Functions cannot hold for a run (its correlationId and priority), kept in DynamoDB.

Written only when the caller gave either, so a plain call costs no DynamoDB write.
"""

from dataclasses import dataclass

from .aws import dynamodb_errors
from .table import TableItems


@dataclass(frozen=True)
class RunRecord:
    correlation_id: str | None = None
    priority: int = 0


class RunRecords(TableItems):
    @staticmethod
    def _key(workflow_id: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"run#{workflow_id}"}}

    def put(self, workflow_id: str, record: RunRecord) -> None:
        item = {
            **self._key(workflow_id),
            "priority": {"N": str(record.priority)},
            "expiresAt": self._expires_at(),
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
