"""Scheduled: delete the wake-up queues of API containers that are gone.

A container makes its queue on its first wait and replaces it hourly, but Lambda gives a container
no word when it is retired, so its last queue outlives it (``workflow_api/adapters/wakeups.py``).
"""

import os
from typing import Any

from workflow_api.adapters.wakeups import sweep


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deleted = sweep(os.environ["WAKEUP_QUEUE_PREFIX"])
    return {"deleted": len(deleted)}
