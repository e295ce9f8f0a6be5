"""Faults injected at the boto3 client, the edge where AWS would produce them."""

import threading
import time
from typing import Any

from botocore.exceptions import ClientError


class ThrottlingClient:
    """A boto3 client whose named operation is throttled for its first ``times`` calls, and
    then on every ``every``-th call (0: never again)."""

    def __init__(self, client: Any, operation: str, times: int, every: int = 0) -> None:
        self._client, self._operation, self.left, self.every = client, operation, times, every
        self.calls: list[float] = []  # when each call of the operation was made, throttled or not
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name != self._operation:
            return real

        def throttled(**kwargs: Any) -> Any:
            with self._lock:
                self.calls.append(time.monotonic())
                throttle = self.left > 0 or (self.every > 0 and len(self.calls) % self.every == 0)
                self.left = max(0, self.left - 1)
            if throttle:
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, name)
            return real(**kwargs)

        return throttled
