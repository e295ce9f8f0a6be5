"""Conductor key auth on moto: keys made by scripts/conductor_keys.py, tokens from the token
function's handler, and the authorizer's answers to events shaped as API Gateway sends them."""

import io
import json
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout, suppress
from pathlib import Path
from typing import Any

import authorizer
import boto3
import pytest
import token_app

from local_mode.aws import REGION, ApiRoute
from local_mode.gateway import MatchedRoute, proxy_event
from local_mode.key_auth import authorizer_event
from local_mode.lambda_runtime import LambdaContext
from workflow_api import key_auth

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import conductor_keys


@pytest.fixture
def keyed(local_aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The stack's table, a signing secret in Secrets Manager, and the functions' environment."""
    table = local_aws.environment["IDEMPOTENCY_TABLE_NAME"]
    secrets = boto3.client("secretsmanager", region_name=REGION)
    name = "test-token-signing-secret"
    with suppress(secrets.exceptions.ResourceExistsException):
        secrets.create_secret(Name=name, SecretString="a-signing-secret-for-the-tests")
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", table)
    monkeypatch.setenv("TOKEN_SIGNING_SECRET_ARN", name)
    monkeypatch.setenv("TOKEN_LIFETIME_SECONDS", "600")
    key_auth.key_auth.cache_clear()
    yield table
    key_auth.key_auth.cache_clear()


def keys_script(*args: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    with redirect_stdout(out):
        assert conductor_keys.main(list(args), dynamodb=boto3.client("dynamodb", region_name=REGION)) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def token_call(body: Any) -> dict[str, Any]:
    matched = MatchedRoute(ApiRoute("POST", "/api/token", "TokenFunction"), {})
    event = proxy_event(
        "POST", "/api/token", [("Content-Type", "application/json")], json.dumps(body).encode(), matched
    )
    answer: dict[str, Any] = token_app.lambda_handler(event, LambdaContext("TokenFunction", 10))
    return answer


def authorize(token: str | None, path: str = "/api/workflow/execute/hello_world") -> dict[str, Any]:
    matched = MatchedRoute(ApiRoute("POST", "/api/workflow/execute/{name}", "ApiFunction"), {"name": "hello_world"})
    headers = [("X-Authorization", token)] if token is not None else []
    event = authorizer_event(proxy_event("POST", path, headers, b"{}", matched))
    answer: dict[str, Any] = authorizer.handler(event, LambdaContext("AuthorizerFunction", 10))
    return answer


def test_a_key_made_by_the_script_gets_a_token_that_the_authorizer_admits_until_revoked(keyed: str) -> None:
    ((created,),) = [keys_script("--table", keyed, "create", "--description", "ci")]
    assert set(created) == {"keyId", "keySecret"}
    listed = {key["keyId"]: key for key in keys_script("--table", keyed, "list")}
    assert listed[created["keyId"]]["description"] == "ci" and listed[created["keyId"]]["revokedAt"] is None
    assert "keySecret" not in json.dumps(listed) and created["keySecret"] not in json.dumps(listed)
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=keyed, Key={"pk": {"S": f"apikey#{created['keyId']}"}}
    )["Item"]
    assert created["keySecret"].encode() not in item["digest"]["B"] and set(item) >= {"salt", "digest", "scheme"}

    answer = token_call({"keyId": created["keyId"], "keySecret": created["keySecret"]})
    assert answer["statusCode"] == 200
    token = json.loads(answer["body"])["token"]
    allowed = authorize(token)
    assert allowed["principalId"] == created["keyId"]
    (statement,) = allowed["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    # One answer for every route of the stage: API Gateway caches it per token.
    assert statement["Resource"] == "arn:aws:execute-api:us-east-1:123456789012:local/local/*/*"

    assert keys_script("--table", keyed, "revoke", created["keyId"]) == [{"keyId": created["keyId"], "revoked": True}]
    denied = authorize(token)
    assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert denied["context"] == {"message": "The token's key has been revoked", "error": "INVALID_TOKEN"}
    refused = token_call({"keyId": created["keyId"], "keySecret": created["keySecret"]})
    assert refused["statusCode"] == 401
    listed = {key["keyId"]: key for key in keys_script("--table", keyed, "list")}
    assert listed[created["keyId"]]["revokedAt"] is not None


def test_the_token_route_refuses_a_wrong_secret_or_key_with_the_error_body(keyed: str) -> None:
    ((created,),) = [keys_script("--table", keyed, "create")]
    for body in ({"keyId": created["keyId"], "keySecret": "wrong"}, {"keyId": "nobody", "keySecret": "x"}):
        answer = token_call(body)
        assert answer["statusCode"] == 401
        error = json.loads(answer["body"])
        assert error == {
            "status": 401,
            "message": "Invalid keyId or keySecret",
            "instance": error["instance"],
            "retryable": False,
        }
        assert error["instance"]
    bad = token_call({"keyId": created["keyId"]})
    assert bad["statusCode"] == 400
    assert json.loads(bad["body"])["validationErrors"][0]["path"] == "body.keySecret"


def test_the_authorizer_denies_forged_malformed_and_missing_tokens(keyed: str) -> None:
    ((created,),) = [keys_script("--table", keyed, "create")]
    token = json.loads(token_call({"keyId": created["keyId"], "keySecret": created["keySecret"]})["body"])["token"]
    payload, signature = token.split(".")
    for bad in (f"{payload}x.{signature}", f"{payload}.{signature[::-1]}", "not-a-token", "", None):
        denied = authorize(bad)
        assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny", bad
        assert denied["context"]["error"] == "INVALID_TOKEN"
    assert authorize(token)["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_the_script_refuses_to_revoke_an_unknown_key(keyed: str) -> None:
    assert (
        conductor_keys.main(["--table", keyed, "revoke", "no-such-key"], boto3.client("dynamodb", region_name=REGION))
        == 1
    )
