"""AWS clients, built once per cold start; the same code talks to AWS, moto and local mode.

botocore, not boto3: boto3 adds only resources and S3 transfers, which this service does not
use, and importing it costs about 80 ms of every cold start (s3transfer, mostly).
"""

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import parse_timestamp

from ..errors import ServiceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_stepfunctions import SFNClient

# Standard mode retries with jitter and a retry quota; two attempts with short timeouts, because
# a synchronous caller cannot wait through legacy mode's five tries: a start makes up to three
# such calls (claim the key, start, mark it started) inside API Gateway's 29 s.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 2},
    connect_timeout=1,
    read_timeout=3,
    tcp_keepalive=True,
)
# The longest one such call takes when every attempt stalls to both timeouts, with the backoff
# between them (standard mode: at most 2 s before the second attempt). The service makes one only
# while this much time is left before the answer is due (service.py, _TimeLeft).
CALL_WORST_SECONDS = 2 * (1 + 3) + 2
# The calls a waiting call makes (reads of the run's item and history, DescribeExecution) are
# tried once, with short timeouts: the wait loop backs off on its own and knows the caller's
# deadline, while botocore's retries would spend up to ~7 s of backoff (1, 2, 4 s) and each
# attempt's timeouts unseen, on calls the answer's aws_calls would not count. The wait makes a
# call only while one stalling to both timeouts still leaves the answer its time (run_wait.py).
WAITING_CONNECT_SECONDS, WAITING_READ_SECONDS = 1, 2
WAITING_CONFIG = CLIENT_CONFIG.merge(
    Config(
        connect_timeout=WAITING_CONNECT_SECONDS,
        read_timeout=WAITING_READ_SECONDS,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
)
# The longest one such call takes when it stalls to both timeouts. Not a hard bound: the read
# timeout is per socket read, and name resolution is outside both; ANSWER_MARGIN_SECONDS rests on
# the same assumption.
WAITING_CALL_WORST_SECONDS = WAITING_CONNECT_SECONDS + WAITING_READ_SECONDS


# A botocore session is not thread-safe, its clients are; local mode builds them on threads.
_SESSION_LOCK = threading.Lock()


def utc_timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, quicker for the epoch seconds the JSON protocols send: botocore
    builds a ``dateutil`` local zone for each timestamp it parses (7.4 us each, against 0.4 us),
    and a history page holds one an event: botocore parsed a 14-event page in 0.26 ms, 0.15 ms with
    this. The instant is the same; the datetime is in UTC (the zone Lambda runs in anyway)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass  # out of the platform's range: botocore's own fallback copes
    parsed: datetime = parse_timestamp(value)
    return parsed.astimezone(UTC)  # numeric text comes back in the local zone


@cache
def _session() -> botocore.session.Session:
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=utc_timestamp)
    return session


@cache
def _client(service: str, config: Config = CLIENT_CONFIG) -> Any:
    with _SESSION_LOCK:
        return _session().create_client(service, config=config)


def botocore_session() -> botocore.session.Session:
    """The one session every client here is built from: a handler registered on it (the fault
    tests' hooks, tests/aws_faults.py) is in every client built after."""
    return _session()


def forget_clients() -> None:
    """The next client asked for is built anew, as on a cold start (the fault tests' new process)."""
    _client.cache_clear()


def stepfunctions_client() -> "SFNClient":
    return cast("SFNClient", _client("stepfunctions"))


def stepfunctions_waiting_client() -> "SFNClient":
    return cast("SFNClient", _client("stepfunctions", WAITING_CONFIG))


def tagging_client() -> Any:
    """The Resource Groups Tagging API: which state machines are tagged as workflows."""
    return _client("resourcegroupstaggingapi")


def dynamodb_client() -> "DynamoDBClient":
    return cast("DynamoDBClient", _client("dynamodb"))


def dynamodb_waiting_client() -> "DynamoDBClient":
    return cast("DynamoDBClient", _client("dynamodb", WAITING_CONFIG))


THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "KmsThrottlingException",  # a state machine encrypted with a customer-managed key
    }
)


class AwsThrottled(ServiceUnavailable):
    """AWS said slow down; a waiting caller backs off, a starting caller may get a 503."""


class AwsUnavailable(ServiceUnavailable):
    """AWS could not be reached or failed on its side."""


@contextmanager
def aws_errors(service: str, expected: frozenset[str] = frozenset()) -> Iterator[None]:
    """``service``'s failures as ours; the error codes in ``expected`` are left to the caller."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in expected:
            raise
        if code in THROTTLING_CODES:
            raise AwsThrottled(f"{service} is throttling requests; retry shortly") from exc
        raise AwsUnavailable(f"{service} is unavailable; retry shortly") from exc
    except BotoCoreError as exc:
        raise AwsUnavailable(f"{service} could not be reached; retry shortly") from exc


def dynamodb_errors() -> AbstractContextManager[None]:
    """DynamoDB's failures as ours; a failed condition is left to the caller, who expects it."""
    return aws_errors("DynamoDB", frozenset({"ConditionalCheckFailedException"}))
