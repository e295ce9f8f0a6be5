"""Conductor's official Python SDK (conductor-python, pinned in requirements-dev.txt), unmodified,
pointed at a server of this API: how the SDK tests reach it.

``workflow_client(api_url)`` is the client a Conductor user builds; ``key_id``/``key_secret`` are the
SDK's own key-based auth settings (it trades them for a token at ``POST /api/token``).
"""

from conductor.client.configuration.configuration import Configuration
from conductor.client.configuration.settings.authentication_settings import AuthenticationSettings
from conductor.client.http.models.start_workflow_request import StartWorkflowRequest
from conductor.client.http.rest import ApiException
from conductor.client.orkes_clients import OrkesClients
from conductor.client.workflow_client import WorkflowClient

__all__ = ["ApiException", "StartWorkflowRequest", "WorkflowClient", "sdk_configuration", "workflow_client"]


def sdk_configuration(api_url: str, key_id: str | None = None, key_secret: str | None = None) -> Configuration:
    """The SDK's ``Configuration`` for ``api_url`` (``.../api``), with key auth when a key is given."""
    auth = AuthenticationSettings(key_id=key_id, key_secret=key_secret) if key_id is not None else None
    return Configuration(server_api_url=api_url, authentication_settings=auth)


def workflow_client(api_url: str, key_id: str | None = None, key_secret: str | None = None) -> WorkflowClient:
    """The SDK's ``WorkflowClient``, built the documented way (``OrkesClients``)."""
    return OrkesClients(configuration=sdk_configuration(api_url, key_id, key_secret)).get_workflow_client()
