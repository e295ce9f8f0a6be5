"""Where Conductor API keys live: their hashes on ``apikey#<keyId>`` items of the service's table,
and the tokens' signing secret in Secrets Manager (read once per cold start)."""

import time
from typing import TYPE_CHECKING, Any, cast

from ..keys import KEY_PREFIX, StoredKey
from .aws import _client, aws_errors, dynamodb_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class ApiKeyStore:
    """The ``apikey#`` items: written by scripts/conductor_keys.py, read by the token route and the
    authorizer (whose IAM policies let them GetItem these items only)."""

    def __init__(self, table_name: str, client: "DynamoDBClient | None" = None) -> None:
        self._table = table_name
        self._client = client or dynamodb_client()

    def get(self, key_id: str) -> StoredKey | None:
        with aws_errors("DynamoDB"):
            item = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": KEY_PREFIX + key_id}}, ConsistentRead=True
            ).get("Item")
        if item is None:
            return None
        return StoredKey(
            key_id=key_id,
            salt=bytes(item["salt"]["B"]),
            digest=bytes(item["digest"]["B"]),
            scheme=item["scheme"]["S"],
            revoked="revokedAt" in item,
        )

    def put(self, key: StoredKey, description: str = "") -> None:
        """A new key; never overwrites one (a keyId is never reused, even once revoked)."""
        item: dict[str, Any] = {
            "pk": {"S": KEY_PREFIX + key.key_id},
            "salt": {"B": key.salt},
            "digest": {"B": key.digest},
            "scheme": {"S": key.scheme},
            "createdAt": {"N": str(int(time.time()))},
        }
        if description:
            item["description"] = {"S": description}
        self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def revoke(self, key_id: str) -> bool:
        """Marks the key revoked; False if there is no such key."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": KEY_PREFIX + key_id}},
                UpdateExpression="SET revokedAt = if_not_exists(revokedAt, :now)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def list(self) -> list[dict[str, Any]]:
        """Every key's id, creation and revocation times and description (never a hash)."""
        keys: list[dict[str, Any]] = []
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="begins_with(pk, :prefix)",
            ExpressionAttributeValues={":prefix": {"S": KEY_PREFIX}},
            ProjectionExpression="pk, createdAt, revokedAt, description",
        )
        for page in pages:
            for item in page.get("Items", []):
                keys.append(
                    {
                        "keyId": item["pk"]["S"].removeprefix(KEY_PREFIX),
                        "createdAt": int(item["createdAt"]["N"]),
                        "revokedAt": int(item["revokedAt"]["N"]) if "revokedAt" in item else None,
                        "description": item.get("description", {}).get("S", ""),
                    }
                )
        return sorted(keys, key=lambda key: (key["createdAt"], key["keyId"]))


def signing_secret(secret_id: str, client: Any = None) -> bytes:
    """The tokens' signing secret (the stack's generated one): its text's bytes."""
    client = client or _client("secretsmanager")
    with aws_errors("Secrets Manager"):
        value = client.get_secret_value(SecretId=secret_id)
    return cast(str, value["SecretString"]).encode()
