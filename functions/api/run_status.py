"""The EventBridge target: Step Functions "Execution Status Change" -> the run's end in DynamoDB,
and a wake-up to each call waiting on the run (``workflow_api/adapters/wakeups.py``).

Deployed as its own function (RunStatusFunction) from the API's code, so the item's format has one
home (``workflow_api/adapters/run_signals.py``). The rule in template.yaml sends only ends (SUCCEEDED,
FAILED, TIMED_OUT, ABORTED) of this stack's state machines. EventBridge invokes the function
asynchronously, so an error here makes Lambda retry the event (twice, by default). The retry records
the end again but wakes no registered waiter: the first try took them off the item (a run named for
a queue is told again, which its waiter, filtering by run, ignores once answered). Waiters never
depend on the event alone (they read the history now and then too).

A run named for a wake-up queue (``wakeups.run_name``: a run without an idempotency key, whose one
waiter is its starter) is told there at once, and its end is not recorded: nobody registers on,
or reads, the item of such a run.
"""

import os
from functools import cache
from typing import Any

from workflow_api.adapters.run_signals import RunEnded, RunSignals
from workflow_api.adapters.wakeups import queue_named_by, wake


@cache
def run_signals() -> RunSignals:
    """Once per cold start, from the function's environment."""
    return RunSignals(os.environ["IDEMPOTENCY_TABLE_NAME"], int(os.environ["IDEMPOTENCY_RETENTION_DAYS"]))


@cache
def wakeup_url_prefix() -> str | None:
    return os.environ.get("WAKEUP_QUEUE_URL_PREFIX") or None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event["detail"]
    arn, ended = detail["executionArn"], RunEnded(detail["status"], int(detail["stopDate"]))
    prefix = wakeup_url_prefix()
    starter = queue_named_by(arn.rpartition(":")[2], prefix) if prefix else None
    if starter is not None:
        return {"executionArn": arn, "status": ended.status, "kept": False, "woken": wake([starter], arn, ended)}
    waiters = run_signals().record(arn, ended)
    woken = wake(waiters, arn, ended) if waiters else 0
    return {"executionArn": arn, "status": ended.status, "kept": waiters is not None, "woken": woken}
