"""Conductor key auth over real HTTP: a local server started with LOCAL_CONDUCTOR_KEYS runs the
template's token route and Lambda authorizer, and answers refusals as API Gateway would."""

import base64
import json
import subprocess
import sys
from typing import Any

import pytest

from local_mode.template import ROOT
from tests.e2e.conftest import KEY_ID, KEY_SECRET, OTHER_KEY_ID, OTHER_KEY_SECRET
from tests.e2e.http_client import Answer, call

pytestmark = pytest.mark.e2e
EXECUTE = "/api/workflow/execute/hello_world"


def token_of(server: Any, key_id: str = KEY_ID, key_secret: str = KEY_SECRET) -> str:
    answer = call(server.url, "POST", "/api/token", json_body={"keyId": key_id, "keySecret": key_secret})
    assert answer.status == 200, answer.raw
    assert answer.headers["cache-control"] == "no-store"
    token: str = answer.body["token"]
    return token


def assert_refused(answer: Answer, error: str, message: str) -> None:
    assert answer.status == 401, answer.raw
    body = answer.body
    assert body == {"status": 401, "message": message, "instance": body["instance"], "retryable": False, "error": error}
    assert body["instance"] and answer.headers["x-request-id"] == body["instance"]


def test_a_token_from_the_key_lets_calls_through(keyed_server: Any) -> None:
    token = token_of(keyed_server)
    answer = call(keyed_server.url, "POST", EXECUTE, json_body={"name": "Ada"}, headers={"X-Authorization": token})
    assert answer.status == 200, answer.raw
    assert answer.body["output"]["greeting"] == "Hello, Ada!"
    run = call(
        keyed_server.url, "GET", f"/api/workflow/{answer.body['workflowId']}", headers={"x-authorization": token}
    )
    assert run.status == 200 and run.body["status"] == "COMPLETED"
    other = token_of(keyed_server, OTHER_KEY_ID, OTHER_KEY_SECRET)
    assert call(keyed_server.url, "POST", EXECUTE, json_body={}, headers={"X-Authorization": other}).status == 200


def test_calls_without_a_good_token_are_refused_with_the_error_body(keyed_server: Any) -> None:
    missing = call(keyed_server.url, "POST", EXECUTE, json_body={"name": "Ada"})
    assert_refused(missing, "INVALID_TOKEN", "Missing X-Authorization token: get one from POST /api/token")
    garbage = call(keyed_server.url, "POST", EXECUTE, json_body={}, headers={"X-Authorization": "garbage"})
    assert_refused(garbage, "INVALID_TOKEN", "The token is malformed")
    payload, signature = token_of(keyed_server).split(".")
    forged = call(
        keyed_server.url, "GET", "/api/workflow/x", headers={"X-Authorization": f"{payload}.A{signature[1:]}"}
    )
    assert_refused(forged, "INVALID_TOKEN", "The token's signature is not valid")
    # Every route but /api/token is behind the authorizer: an unknown run is not even looked up.
    assert call(keyed_server.url, "GET", "/api/workflow/no-such-run").status == 401


def test_the_token_route_refuses_a_wrong_key_and_a_bad_body(keyed_server: Any) -> None:
    for key_id, secret in ((KEY_ID, "wrong"), ("nobody", KEY_SECRET), (KEY_ID, OTHER_KEY_SECRET)):
        answer = call(keyed_server.url, "POST", "/api/token", json_body={"keyId": key_id, "keySecret": secret})
        assert answer.status == 401
        body = answer.body
        assert body == {
            "status": 401,
            "message": "Invalid keyId or keySecret",
            "instance": body["instance"],
            "retryable": False,
        }
    bad = call(keyed_server.url, "POST", "/api/token", json_body={"keyId": KEY_ID})
    assert bad.status == 400 and bad.body["validationErrors"][0]["path"] == "body.keySecret"
    assert call(keyed_server.url, "POST", "/api/token", raw_body=b"not json").status == 400


def test_a_token_lives_the_templates_lifetime(keyed_server: Any) -> None:
    """TokenLifetimeSeconds' default; expiry itself is checked in tests/unit/test_keys.py."""
    payload = token_of(keyed_server).split(".")[0]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["keyId"] == KEY_ID and claims["exp"] - claims["iat"] == 3600


def test_the_keys_script_answers_its_help() -> None:
    usage = subprocess.run(
        [sys.executable, "scripts/conductor_keys.py", "--help"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 0 and "create" in usage.stdout and "revoke" in usage.stdout
