"""The one DynamoDB table the service keeps its items in (idempotency keys, run records, runs' ends)."""

import time
from typing import TYPE_CHECKING

from .aws import dynamodb_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class TableItems:
    """What every adapter of the table shares: its name, its client, and when an item expires."""

    def __init__(self, table_name: str, retention_days: int, client: "DynamoDBClient | None" = None) -> None:
        self._table = table_name
        self._retention_seconds = retention_days * 86400
        self._client = client or dynamodb_client()

    def _expires_at(self) -> dict[str, str]:
        """The TTL attribute of an item written now: DynamoDB drops it ``retention_days`` later
        (at least 90 by the template, as long as a run's history is kept)."""
        return {"N": str(int(time.time()) + self._retention_seconds)}
