"""Conductor's Python SDK, unmodified, with its key-based auth (``AuthenticationSettings``)
against local servers with key auth on (LOCAL_CONDUCTOR_KEYS) and off (the default)."""

from typing import Any

import pytest

from tests.e2e.conftest import KEY_ID, KEY_SECRET
from tests.e2e.sdk import ApiException, StartWorkflowRequest, sdk_configuration, workflow_client

pytestmark = pytest.mark.e2e


def hello(name: str) -> StartWorkflowRequest:
    return StartWorkflowRequest(name="hello_world", version=2, input={"name": name})


def test_the_sdk_with_its_key_executes_a_workflow_and_reads_the_run(keyed_server: Any) -> None:
    client = workflow_client(keyed_server.api, KEY_ID, KEY_SECRET)
    run = client.execute_workflow(hello("Ada"), wait_for_seconds=10)
    assert run.status == "COMPLETED"
    assert run.output == {"greeting": "Hello, Ada!", "version": 2}
    assert client.get_workflow(run.workflow_id, include_tasks=False).status == "COMPLETED"


def test_the_sdk_with_a_wrong_secret_fails_with_a_401(keyed_server: Any) -> None:
    client = workflow_client(keyed_server.api, KEY_ID, "not-the-secret")
    with pytest.raises(ApiException) as refused:
        client.execute_workflow(hello("Ada"), wait_for_seconds=10)
    assert refused.value.status == 401


def test_the_sdk_renews_a_token_the_server_refuses(keyed_server: Any) -> None:
    """The SDK renews its token on a 401 whose body says INVALID_TOKEN (or EXPIRED_TOKEN), then
    retries the call once: a revoked or expired token costs the caller nothing."""
    client = workflow_client(keyed_server.api, KEY_ID, KEY_SECRET)
    configuration = client.api_client.configuration
    configuration.AUTH_TOKEN = "a-token-the-server-never-issued"
    run = client.execute_workflow(hello("Grace"), wait_for_seconds=10)
    assert run.status == "COMPLETED" and run.output["greeting"] == "Hello, Grace!"
    assert configuration.AUTH_TOKEN != "a-token-the-server-never-issued"


def test_the_sdk_without_credentials_works_when_key_auth_is_off(local_server: Any) -> None:
    run = workflow_client(local_server.api).execute_workflow(hello("Lin"), wait_for_seconds=10)
    assert run.status == "COMPLETED" and run.output["greeting"] == "Hello, Lin!"


def test_the_sdk_with_credentials_runs_open_when_key_auth_is_off(local_server: Any) -> None:
    """No /api/token (404): the SDK takes the server for an open one and sends no token."""
    configuration = sdk_configuration(local_server.api, KEY_ID, KEY_SECRET)
    client = workflow_client(local_server.api, KEY_ID, KEY_SECRET)
    run = client.execute_workflow(hello("Kay"), wait_for_seconds=10)
    assert run.status == "COMPLETED"
    assert configuration.authentication_settings is not None
    assert client.api_client.configuration.authentication_settings is None
