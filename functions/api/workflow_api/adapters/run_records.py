"""What Step Functions cannot hold for a run (its correlationId and priority), kept in DynamoDB.

Written only when the caller gave either, so a plain call costs no DynamoDB write.
"""

from dataclasses import dataclass
from typing import Any

from .aws import dynamodb_errors
from .table import TableItems


@dataclass(frozen=True)
class RunRecord:
    correlation_id: str | None = None
    priority: int = 0


# The table's global secondary index of runs by correlationId and workflow name (template.yaml).
CORRELATED_INDEX = "correlated"


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
        if record.correlation_id:
            # The keys of the table's index CORRELATED_INDEX (template.yaml): only runs with a
            # correlationId are in it. An empty one is none: DynamoDB refuses an empty index key.
            item["correlationId"] = {"S": record.correlation_id}
            item["workflowName"] = {"S": workflow_id.split(".", 1)[0]}
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

    def correlated(self, workflow_name: str, correlation_id: str, limit: int) -> list[str]:
        """The workflowIds of ``workflow_name``'s runs started with ``correlation_id``, at most
        ``limit`` (the index is eventually consistent: a run started a moment ago may be missing)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": CORRELATED_INDEX,
            "KeyConditionExpression": "correlationId = :c AND workflowName = :n",
            "ExpressionAttributeValues": {":c": {"S": correlation_id}, ":n": {"S": workflow_name}},
            "ProjectionExpression": "pk",
        }
        found: list[str] = []
        while len(found) < limit:
            with dynamodb_errors():
                page = self._client.query(**request)
            found.extend(item["pk"]["S"].removeprefix("run#") for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        return found[:limit]
