"""Fixtures of the integration tests that change the local stack's AWS limits."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local_mode import limits

# Local mode's AWS limits (docs/LOCAL_LIMITS.md), by their environment settings.
SETTINGS = (
    "LOCAL_SFN_QUOTAS",
    "LOCAL_LAMBDA_CONCURRENCY",
    "LOCAL_EVENTBRIDGE_DELAY_MS",
    "LOCAL_EVENTBRIDGE_LOSS",
    "LOCAL_EVENTBRIDGE_SEED",
)


@pytest.fixture
def aws_limits(local_aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Sets local mode's AWS limits (local_mode/limits.py) for one test, by their environment
    settings (``aws_limits(LOCAL_SFN_QUOTAS="GetExecutionHistory=1/0.001")``); a fresh account
    with the session's own settings after it."""

    def configure(**settings: str) -> None:
        for name in SETTINGS:  # the shell's own settings do not leak in: only ``settings`` differ from AWS's
            monkeypatch.delenv(name, raising=False)
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        limits.configure()
        limits.reset()

    limits.reset()
    yield configure
    monkeypatch.undo()
    limits.configure()
    limits.reset()
