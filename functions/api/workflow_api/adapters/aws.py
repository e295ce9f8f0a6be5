"""boto3 clients, built once per cold start; the same code talks to AWS, moto and local mode."""

from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_stepfunctions import SFNClient

# Standard mode retries with jitter and a retry quota; few attempts, because the wait loop does
# its own backing off and a synchronous caller cannot wait through legacy mode's five tries.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
)


@cache
def stepfunctions_client() -> "SFNClient":
    return boto3.client("stepfunctions", config=CLIENT_CONFIG)


@cache
def dynamodb_client() -> "DynamoDBClient":
    return boto3.client("dynamodb", config=CLIENT_CONFIG)
