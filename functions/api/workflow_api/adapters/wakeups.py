"""Wake-up queues: a waiting call blocks on SQS until its run ends, instead of polling for the end.

Polling anything (the history, or run_status's item) puts a floor under the answer's lag: a run
that ends between two looks waits for the next one, and looking often costs calls. SQS's long
poll (``ReceiveMessage`` with ``WaitTimeSeconds``) is the one call at hand that blocks until
something happens. So a waiting call registers its queue on the run's item (``RunSignals.register``)
and long-polls it; ``run_status`` sends the run's end to every queue registered there (``wake``),
and the call answers as soon as the message arrives.

A queue serves one waiting call at a time and is kept for the next (``lease``): a Lambda container
serves one call at a time, so it has one queue, made on its first wait. Messages are never
deleted: a received one stays hidden for 12 h (SQS's longest) and the queue keeps messages for
60 s (its shortest), so a wait costs its receives only. A message about another run (sent after
an earlier call had already answered) is passed over. A queue is replaced once it is an hour old;
``sweep`` (a scheduled function) deletes the queues of containers that are gone.

SQS asks for a second between creating a queue and using it. A container's first wait may find
its queue not there yet (the call then polls, and the queue is kept for the next call) or miss its
wake-up (the call learns of the end from the history reads of its first seconds).

A run without an idempotency key has one waiter only, the call that started it (nobody else can
name it to wait on it), so that call names the run for its queue (``run_name``) and does not
register on the run's item: ``run_status`` reads the queue from the run's name (``queue_named_by``)
and sends the end there at once, without the item's write before it. A run with a key is named
for the key (any caller may join it), so its waiters register as above.
"""

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from ..errors import ServiceUnavailable
from .aws import LONGEST_POLL_SECONDS, aws_errors, sqs_client, sqs_long_poll_client, sqs_waiting_client
from .run_signals import RunEnded

if TYPE_CHECKING:
    from collections import Counter

    from mypy_boto3_sqs import SQSClient

# A container replaces its queue after this long; ``sweep`` deletes queues this much older
# (a call waits under 30 s, so no live call still uses them).
QUEUE_MAX_AGE_SECONDS = 3600
SWEEP_AFTER_SECONDS = QUEUE_MAX_AGE_SECONDS + 300
# SQS asks for a second between creating a queue and using it: a queue this young that SQS says
# does not exist is not yet visible, not gone.
NEW_QUEUE_SECONDS = 5
_GONE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
# "<run id>-q<the queue's id>": the name of a run whose one waiter waits on the queue (the ids are
# uuid hex; 66 of Step Functions' 80 characters). A name derived from an idempotency key starts
# with "k" and never matches.
_NAMED_FOR_QUEUE = re.compile(r"[0-9a-f]{32}-q(?P<queue>[0-9a-f]{32})")


class WakeupQueueGone(ServiceUnavailable):
    """The queue was deleted (by ``sweep``, or by hand): the call goes on without it."""


@dataclass
class WakeupQueue:
    """One queue, leased to one waiting call at a time."""

    url: str
    created_at: float
    _receiver: "Callable[[int], SQSClient]"  # the client for a receive that waits so many seconds
    _clock: Callable[[], float]
    gone: bool = False
    # The queue's id, when run_status can find the queue from it (``run_name``); None: it cannot.
    id: str | None = None

    def wait(self, execution_arn: str, seconds: int, calls: "Counter[str]") -> bool:
        """Block for up to ``seconds`` whole seconds (SQS waits in whole seconds) until the end of
        ``execution_arn`` arrives: whether it did."""
        until, left = self._clock() + seconds, seconds
        while left >= 1:
            calls["ReceiveMessage"] += 1
            seconds = min(left, LONGEST_POLL_SECONDS)
            try:
                with aws_errors("SQS", _GONE):
                    messages = (
                        self._receiver(seconds)
                        .receive_message(QueueUrl=self.url, WaitTimeSeconds=seconds, MaxNumberOfMessages=10)
                        .get("Messages", [])
                    )
            except ClientError as exc:
                self.gone = self._clock() - self.created_at > NEW_QUEUE_SECONDS
                raise WakeupQueueGone("The wake-up queue is gone, or not visible yet") from exc
            if any(_about(message.get("Body", ""), execution_arn) for message in messages):
                return True
            left = int(until - self._clock())  # after a message about another run: what is left of the wait
        return False


def run_name(run_id: str, queue: WakeupQueue | None) -> str:
    """The name of a run whose one waiter is the call starting it: for the queue it waits on,
    when run_status can find that queue from the name (``queue_named_by``)."""
    return f"{run_id}-q{queue.id}" if queue is not None and queue.id is not None else run_id


def is_named_for(execution_name: str, queue: WakeupQueue) -> bool:
    """Whether run_status sends this run's end to ``queue`` without looking at the run's item."""
    found = _NAMED_FOR_QUEUE.fullmatch(execution_name)
    return found is not None and found["queue"] == queue.id


def queue_named_by(execution_name: str, url_prefix: str) -> str | None:
    """The URL of the queue a run is named for (``run_name``), or None: a run named for its
    idempotency key, whose waiters register on its item instead."""
    found = _NAMED_FOR_QUEUE.fullmatch(execution_name)
    return None if found is None else url_prefix + found["queue"]


def _about(body: str, execution_arn: str) -> bool:
    try:
        return bool(json.loads(body).get("executionArn") == execution_arn)
    except (ValueError, AttributeError):
        return False  # not ours to read: only run_status writes to these queues


class WakeupQueues:
    """The queues of this process's waiting calls: one per call waiting at once."""

    def __init__(
        self,
        name_prefix: str,
        client: "SQSClient | None" = None,
        clock: Callable[[], float] = time.time,
        long_poll_clients: "Callable[[int], SQSClient] | None" = None,
        url_prefix: str | None = None,
    ) -> None:
        """``long_poll_clients``: the client for a receive of so many seconds (``client`` for all,
        when only it is given). ``url_prefix``: the URL of a queue up to its id, as run_status
        builds it (``queue_named_by``); a queue whose URL SQS gives otherwise gets no id."""
        self._prefix = name_prefix
        self._url_prefix = url_prefix
        self._client = client or sqs_waiting_client()
        self._long_poll_clients = long_poll_clients or ((lambda _seconds: client) if client else sqs_long_poll_client)
        self._clock = clock
        self._idle: list[WakeupQueue] = []
        self._lock = threading.Lock()

    @contextmanager
    def lease(self, calls: "Counter[str]") -> Iterator[WakeupQueue]:
        """A queue for one waiting call, made when none is idle; ServiceUnavailable if SQS refuses."""
        with self._lock:
            queue = self._idle.pop() if self._idle else None
        if queue is not None and self._clock() - queue.created_at >= QUEUE_MAX_AGE_SECONDS:
            self._delete(queue, calls)
            queue = None
        if queue is None:
            queue = self._create(calls)
        try:
            yield queue
        finally:
            if not queue.gone:
                with self._lock:
                    self._idle.append(queue)

    def _create(self, calls: "Counter[str]") -> WakeupQueue:
        calls["CreateQueue"] += 1
        queue_id = uuid.uuid4().hex
        with aws_errors("SQS"):
            url = self._client.create_queue(
                QueueName=self._prefix + queue_id,
                # Messages are kept 60 s and a received one stays hidden for 12 h: never deleted.
                Attributes={"MessageRetentionPeriod": "60", "VisibilityTimeout": "43200"},
            )["QueueUrl"]
        found = self._url_prefix is not None and url == self._url_prefix + queue_id
        return WakeupQueue(url, self._clock(), self._long_poll_clients, self._clock, id=queue_id if found else None)

    def _delete(self, queue: WakeupQueue, calls: "Counter[str]") -> None:
        calls["DeleteQueue"] += 1
        with suppress(ServiceUnavailable, ClientError), aws_errors("SQS", _GONE):
            self._client.delete_queue(QueueUrl=queue.url)  # else ``sweep`` deletes it later


def wake(queue_urls: Iterable[str], execution_arn: str, ended: RunEnded, client: "SQSClient | None" = None) -> int:
    """Tell the calls waiting on ``execution_arn`` that it ended; answers how many queues were told.

    A queue that is gone (its container was) is passed over. Every queue is tried; then the first
    other failure is raised, so the function's error shows (a call not told learns of the end from
    its next history read, within HISTORY_FALLBACK_SECONDS).
    """
    client = client or sqs_client()
    body = json.dumps({"executionArn": execution_arn, "status": ended.status, "stopDate": ended.stop_date})
    told, failures = 0, []
    for url in queue_urls:
        try:
            with aws_errors("SQS", _GONE):
                client.send_message(QueueUrl=url, MessageBody=body)
            told += 1
        except ClientError:
            continue
        except ServiceUnavailable as failure:
            failures.append(failure)
    if failures:
        raise failures[0]
    return told


def sweep(name_prefix: str, client: "SQSClient | None" = None, now: float | None = None) -> list[str]:
    """Delete the wake-up queues made more than SWEEP_AFTER_SECONDS ago; answers their URLs."""
    client = client or sqs_client()
    now = time.time() if now is None else now
    deleted = []
    for url in _queue_urls(client, name_prefix):
        try:
            with aws_errors("SQS", _GONE):
                created = client.get_queue_attributes(QueueUrl=url, AttributeNames=["CreatedTimestamp"])
                if now - float(created["Attributes"]["CreatedTimestamp"]) < SWEEP_AFTER_SECONDS:
                    continue
                client.delete_queue(QueueUrl=url)
            deleted.append(url)
        except ClientError:
            continue  # deleted meanwhile
    return deleted


def _queue_urls(client: "SQSClient", name_prefix: str) -> Iterator[str]:
    token: dict[str, str] = {}
    while True:
        with aws_errors("SQS"):
            page = client.list_queues(QueueNamePrefix=name_prefix, MaxResults=1000, **token)
        yield from page.get("QueueUrls", [])
        if "NextToken" not in page:
            return
        token = {"NextToken": page["NextToken"]}
