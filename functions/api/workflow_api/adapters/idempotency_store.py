"""Idempotency records in DynamoDB: every change is one conditional write.

Each write carries its whole rule in its ``ConditionExpression`` and asks for the record as it
was when the condition failed (``ReturnValuesOnConditionCheckFailure=ALL_OLD``), so losing a
race costs no second read. Nothing here reads then writes.
"""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from ..idempotency import KeyRecord, KeyState
from .aws import AwsUnavailable, dynamodb_errors
from .table import TableItems

Item = Mapping[str, Any]


class IdempotencyStore(TableItems):
    # --- the writes; each answers None when it won, else the record that beat it -------------

    def claim_first(self, record: KeyRecord) -> KeyRecord | None:
        """Create the key's record, holding generation 1, if the key has none."""
        return self._put(record, "attribute_not_exists(pk)", {})

    def take_over(self, dead: KeyRecord, mine: KeyRecord, now: float) -> KeyRecord | None:
        """Hold a claim whose holder's lease ran out, if it is still that holder's."""
        return self._put(
            mine,
            "generation = :generation AND #state = :claimed AND #owner = :dead_owner AND leaseUntil < :now",
            {
                ":generation": {"N": str(dead.generation)},
                ":claimed": {"S": KeyState.CLAIMED.value},
                ":dead_owner": {"S": dead.owner or ""},
                ":now": {"N": repr(now)},
            },
        )

    def claim_next(self, ended: KeyRecord, mine: KeyRecord) -> KeyRecord | None:
        """Move the key to the next generation, if nobody has since the run ended."""
        return self._put(
            mine,
            "generation = :generation AND #state = :started",
            {":generation": {"N": str(ended.generation)}, ":started": {"S": KeyState.STARTED.value}},
        )

    def mark_started(self, record: KeyRecord) -> KeyRecord | None:
        """Record that the generation's run exists (whoever started it)."""
        return self._put(record.started(), "generation = :generation", {":generation": {"N": str(record.generation)}})

    def release(self, record: KeyRecord) -> None:
        """Give up a claim whose start failed, so a retry need not wait out the lease."""
        self._put(
            replace(record, lease_until=0.0),
            "generation = :generation AND #state = :claimed AND #owner = :owner",
            {
                ":generation": {"N": str(record.generation)},
                ":claimed": {"S": KeyState.CLAIMED.value},
                ":owner": {"S": record.owner or ""},
            },
        )

    # --- DynamoDB's words ----------------------------------------------------------------------

    @staticmethod
    def key_of(workflow: str, key: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"key#{workflow}#{key}"}}

    def _item(self, record: KeyRecord) -> dict[str, Any]:
        item: dict[str, Any] = {
            **self.key_of(record.workflow, record.key),
            "workflow": {"S": record.workflow},
            "idempotencyKey": {"S": record.key},
            "version": {"N": str(record.version)},
            "generation": {"N": str(record.generation)},
            "executionName": {"S": record.execution_name},
            "state": {"S": record.state.value},
            # The record outlives the run's history (retention >= 90 days), then DynamoDB drops it.
            "expiresAt": self._expires_at(),
        }
        if record.owner is not None:
            item["owner"] = {"S": record.owner}
            item["leaseUntil"] = {"N": repr(record.lease_until)}
        if record.fingerprint is not None:  # absent only on records written before keys were bound
            item["requestFingerprint"] = {"S": record.fingerprint}
        return item

    @staticmethod
    def _record(item: Item) -> KeyRecord:
        return KeyRecord(
            workflow=item["workflow"]["S"],
            key=item["idempotencyKey"]["S"],
            version=int(item["version"]["N"]),
            generation=int(item["generation"]["N"]),
            state=KeyState(item["state"]["S"]),
            owner=item["owner"]["S"] if "owner" in item else None,
            lease_until=float(item["leaseUntil"]["N"]) if "leaseUntil" in item else 0.0,
            fingerprint=item["requestFingerprint"]["S"] if "requestFingerprint" in item else None,
        )

    def _put(self, record: KeyRecord, condition: str, values: dict[str, Any]) -> KeyRecord | None:
        names = {name: attr for name, attr in (("#state", "state"), ("#owner", "owner")) if name in condition}
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": self._item(record),
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if names:
            request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            with dynamodb_errors():
                self._client.put_item(**request)
        except ClientError as exc:  # only a failed condition gets here: someone else's record won
            old: Item | None = exc.response.get("Item")  # type: ignore[assignment]
            if old is None:  # the record vanished (TTL) between the two writes: try again
                raise AwsUnavailable("The idempotency record changed under us; retry") from exc
            found = self._record(old)
            # This very write, applied by an attempt whose answer was lost (a read timeout):
            # botocore's retry then fails the condition on it. Ours, not another caller's (a
            # claim names its caller's own owner id).
            return None if found == record else found
        return None
