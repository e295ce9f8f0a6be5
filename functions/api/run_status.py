"""The EventBridge target: Step Functions "Execution Status Change" -> the run's end in DynamoDB.

Deployed as its own function (RunStatusFunction) from the API's code, so the item's format has one
home (``workflow_api/adapters/run_signals.py``). The rule in template.yaml sends only ends
(SUCCEEDED, FAILED, TIMED_OUT, ABORTED) of this stack's state machines. EventBridge invokes the
function asynchronously, so an error here makes Lambda retry the event (twice, by default); a
repeated end is written again, harmlessly. Waiters never depend on the event alone: a waiting call
asks Step Functions itself every ``END_CHECK_SECONDS`` and before it answers 206.
"""

import os
from functools import cache
from typing import Any

from workflow_api.adapters.run_signals import RunSignals, end_of


@cache
def run_signals() -> RunSignals:
    """Once per cold start, from the function's environment."""
    return RunSignals(os.environ["IDEMPOTENCY_TABLE_NAME"], int(os.environ["IDEMPOTENCY_RETENTION_DAYS"]))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event["detail"]
    end = end_of(detail)
    kept = run_signals().record(detail["executionArn"], end)
    return {"executionArn": detail["executionArn"], "status": end.status, "kept": kept}
