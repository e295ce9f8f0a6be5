"""Fixtures of the integration tests that change the local stack's AWS limits."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local_mode import limits


@pytest.fixture
def aws_limits(local_aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Sets local mode's AWS limits (local_mode/limits.py) for one test, by their environment
    settings (``aws_limits(LOCAL_SFN_QUOTAS="GetExecutionHistory=1/0.001")``); a fresh account
    with the session's own settings after it."""

    def configure(**settings: str) -> None:
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        limits.configure()
        limits.reset()

    limits.reset()
    yield configure
    monkeypatch.undo()
    limits.configure()
    limits.reset()
