"""AWS clients, built once per cold start; the same code talks to AWS, moto and local mode.

botocore, not boto3: boto3 adds only resources and S3 transfers, which this service does not
use, and importing it costs about 80 ms of every cold start (s3transfer, mostly).
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ServiceUnavailable

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


# A botocore session is not thread-safe, its clients are; local mode builds them on threads.
_SESSION_LOCK = threading.Lock()


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def _client(service: str) -> Any:
    with _SESSION_LOCK:
        return _session().create_client(service, config=CLIENT_CONFIG)


def stepfunctions_client() -> "SFNClient":
    return cast("SFNClient", _client("stepfunctions"))


def dynamodb_client() -> "DynamoDBClient":
    return cast("DynamoDBClient", _client("dynamodb"))


THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
    }
)


class AwsThrottled(ServiceUnavailable):
    """AWS said slow down; a waiting caller backs off, a starting caller may get a 503."""


class AwsUnavailable(ServiceUnavailable):
    """AWS could not be reached or failed on its side."""


@contextmanager
def dynamodb_errors() -> Iterator[None]:
    """DynamoDB's failures as ours; a failed condition is left to the caller, who expects it."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            raise
        if code in THROTTLING_CODES:
            raise AwsThrottled("DynamoDB is throttling requests; retry shortly") from exc
        raise AwsUnavailable("DynamoDB is unavailable; retry shortly") from exc
    except BotoCoreError as exc:
        raise AwsUnavailable("DynamoDB could not be reached; retry shortly") from exc
