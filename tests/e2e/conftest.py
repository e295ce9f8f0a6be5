"""Fixtures of the end-to-end tests (the local server itself is in tests/conftest.py)."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import running_local_server
from tests.e2e.sdk import WorkflowClient, workflow_client


@pytest.fixture(scope="session")
def sdk_workflow_client(local_server: Any) -> WorkflowClient:
    """Conductor's Python SDK, unmodified, pointed at the local server (no key auth)."""
    return workflow_client(local_server.api)


# Conductor key auth (tests/e2e/test_key_auth_http.py, test_sdk_auth.py): a second local server,
# started with LOCAL_CONDUCTOR_KEYS, so it runs the template's authorizer and token route.
KEY_ID, KEY_SECRET = "e2e-key", "e2e-key-secret-0123456789"
OTHER_KEY_ID, OTHER_KEY_SECRET = "e2e-other-key", "another-secret-9876543210"


@pytest.fixture(scope="session")
def keyed_server() -> Iterator[Any]:
    with running_local_server(
        {"LOCAL_CONDUCTOR_KEYS": f"{KEY_ID}:{KEY_SECRET},{OTHER_KEY_ID}:{OTHER_KEY_SECRET}"}
    ) as server:
        yield server
