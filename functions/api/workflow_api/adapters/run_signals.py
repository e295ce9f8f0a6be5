"""Runs' ends, as EventBridge reports them, kept in DynamoDB with the calls waiting on them.

Step Functions' history reads are an account-wide quota (GetExecutionHistory: refill 20/s), so a
waiter that polls history for its whole wait spends that quota in proportion to callers x poll
rate. EventBridge's "Step Functions Execution Status Change" event costs no quota: ``run_status``
(the function the event rule invokes) records the run's end here and wakes the calls registered
on the run (``wakeups.py``): a waiting call registers its wake-up queue here, then blocks on it.
Without a queue (a task reference is awaited, or SQS failed) a waiter polls this item instead,
and reads the history once it says the run ended. See ``WorkflowService._wait``.

Item: ``pk = status#<executionArn>``, the Step Functions status and the stop time (epoch ms), and
``waiters``, the wake-up queues of the calls that waited on the run. A run that is redriven ends
again later; an event delivered late never overwrites a newer end.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from botocore.exceptions import ClientError

from .aws import dynamodb_errors
from .table import TableItems

# Wake-up queues one run's item holds (~125 bytes each: about 4 KB, 4 write units a registration).
# Many calls wait on one run only when they join it by idempotency key; past the cap a call polls
# the item instead. Without it, a long run's item would grow by a queue per container and hour of
# waiting, each registration costing more write units, up to DynamoDB's 400 KB item limit.
MAX_WAITERS = 32


class WaitersFull(Exception):
    """The run's item holds MAX_WAITERS queues: this call polls for the run's end instead."""


@dataclass(frozen=True)
class RunEnded:
    status: str  # as Step Functions says it: SUCCEEDED, FAILED, TIMED_OUT, ABORTED
    stop_date: int  # epoch milliseconds


class RunSignals(TableItems):
    @staticmethod
    def _key(execution_arn: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"status#{execution_arn}"}}

    def record(self, execution_arn: str, ended: RunEnded) -> list[str] | None:
        """Keep ``ended`` unless a later end is kept already (then None); answers the wake-up
        queues of the calls waiting on the run, to be told (``wakeups.wake``), and forgets them:
        the item does not grow with every call that ever waited on a run.

        The same end again (EventBridge delivers at least once) is kept again and tells nobody.

        A PutItem of the whole item, not an UpdateItem that sets the end and removes ``waiters``:
        the same write (the item holds nothing else) at the same cost. Locally it is quicker on
        the wake-up's path, where moto spent ~3 ms evaluating the update expression: ``make
        bench``'s "end recorded" step went from 4.9 to 3.4 ms after the run's end.
        """
        try:
            with dynamodb_errors():
                old = self._client.put_item(
                    TableName=self._table,
                    Item={
                        **self._key(execution_arn),
                        "status": {"S": ended.status},
                        "stopDate": {"N": str(ended.stop_date)},
                        "expiresAt": self._expires_at(),
                    },
                    ConditionExpression="attribute_not_exists(stopDate) OR stopDate <= :stop",
                    ExpressionAttributeValues={":stop": {"N": str(ended.stop_date)}},
                    ReturnValues="ALL_OLD",
                ).get("Attributes", {})
        except ClientError:  # only a failed condition gets here: a later end is recorded
            return None
        return sorted(old.get("waiters", {}).get("SS", []))

    def register(self, execution_arn: str, wakeup_queue_url: str) -> RunEnded | None:
        """Ask for the run's end to be sent to ``wakeup_queue_url``; answers the end instead if one
        is recorded already (then nothing is registered). WaitersFull when MAX_WAITERS other
        queues are registered: the caller polls.

        One conditional update of the item ``record`` updates, so whichever of the two comes
        second sees the other: the end is recorded after this (and sent to the queue), or this
        sees it. A redriven run's earlier end is answered too: its caller reads the history, finds
        the run running again, and learns of its next end from the history, not from the queue.
        """
        try:
            with dynamodb_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key=self._key(execution_arn),
                    UpdateExpression="ADD waiters :queue SET expiresAt = if_not_exists(expiresAt, :expires)",
                    ConditionExpression="attribute_not_exists(stopDate) AND (attribute_not_exists(waiters)"
                    " OR size(waiters) < :most OR contains(waiters, :url))",
                    ExpressionAttributeValues={
                        ":queue": {"SS": [wakeup_queue_url]},
                        ":url": {"S": wakeup_queue_url},
                        ":most": {"N": str(MAX_WAITERS)},
                        ":expires": self._expires_at(),
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as failed:  # only a failed condition gets here: an end, or a full item
            item = cast("dict[str, Any]", failed.response).get("Item", {})
            ended = self._end_in(item)
            if ended is None:
                raise WaitersFull(f"{MAX_WAITERS} calls wait on this run already") from failed
            return ended
        return None

    def leave(self, execution_arn: str, wakeup_queue_url: str) -> None:
        """Take ``wakeup_queue_url`` off the run's item: its call stopped waiting on it before
        the run's end (a 206, or the queue failed and the call polls).

        Without this, a run that callers keep joining for hours fills its item with the queues of
        calls long answered, and once MAX_WAITERS are there its later callers poll. Once the run's
        end is recorded there is nothing to take off, and the write is refused (not made).

        A leave that times out here but is applied late could take off the queue after the
        container's next call on the same run registered it again: that call then learns of the
        end from its history reads (within HISTORY_FALLBACK_SECONDS), not its queue. Rare, and
        bounded.
        """
        try:
            with dynamodb_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key=self._key(execution_arn),
                    UpdateExpression="DELETE waiters :queue",
                    ConditionExpression="attribute_exists(waiters)",  # never makes an item
                    ExpressionAttributeValues={":queue": {"SS": [wakeup_queue_url]}},
                )
        except ClientError:  # only a failed condition gets here: no queue is registered any more
            return

    def ended(self, execution_arn: str) -> RunEnded | None:
        """The run's latest recorded end; None while no event about its end has arrived."""
        with dynamodb_errors():
            item = self._client.get_item(TableName=self._table, Key=self._key(execution_arn)).get("Item")
        return self._end_in(item or {})

    @staticmethod
    def _end_in(item: Mapping[str, Any]) -> RunEnded | None:
        if "stopDate" not in item:
            return None
        return RunEnded(status=item["status"]["S"], stop_date=int(item["stopDate"]["N"]))
