"""template.yaml's AuthType CONDUCTOR_KEYS: what exists only with it, what its functions may do,
and the gateway responses that give the authorizer's refusals the API's error body."""

import json
import re
from typing import Any

from local_mode import template as cfn

TEMPLATE = cfn.load()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
KEY_AUTH = ("TokenSigningSecret", "TokenFunction", "AuthorizerFunction", "TokenLogs", "AuthorizerLogs")


def resolved(value: Any, auth_type: str) -> Any:
    refs = {**cfn.parameter_defaults(TEMPLATE), "AuthType": auth_type, "AWS::NoValue": None}
    return cfn.Resolver(TEMPLATE, refs, {("AuthorizerFunction", "Arn"): "authorizer-arn"}).resolve(value)


def test_the_key_auth_resources_exist_only_with_conductor_keys() -> None:
    assert TEMPLATE["Conditions"]["UseConductorKeys"] == {"Fn::Equals": [{"Ref": "AuthType"}, "CONDUCTOR_KEYS"]}
    for logical_id in KEY_AUTH:
        assert RESOURCES[logical_id]["Condition"] == "UseConductorKeys", logical_id
    generated = RESOURCES["TokenSigningSecret"]["Properties"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= 32
    lifetime = TEMPLATE["Parameters"]["TokenLifetimeSeconds"]
    assert lifetime["Default"] == 3600 and lifetime["MaxValue"] <= 86400


def test_the_token_route_and_the_authorizer_may_only_read_keys_and_the_signing_secret() -> None:
    for logical_id in ("TokenFunction", "AuthorizerFunction"):
        properties = RESOURCES[logical_id]["Properties"]
        assert properties["CodeUri"] == "functions/api/"
        (policy,) = properties["Policies"]
        statements = {s["Sid"]: s for s in policy["Statement"]}
        assert set(statements) == {"ReadApiKeys", "ReadSigningSecret"}, logical_id
        keys = statements["ReadApiKeys"]
        assert keys["Action"] == ["dynamodb:GetItem"] and keys["Resource"] == {
            "Fn::GetAtt": ["IdempotencyTable", "Arn"]
        }
        assert keys["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["apikey#*"]}}
        secret = statements["ReadSigningSecret"]
        assert secret["Action"] == ["secretsmanager:GetSecretValue"] and secret["Resource"] == {
            "Ref": "TokenSigningSecret"
        }
        variables = properties["Environment"]["Variables"]
        assert variables["TOKEN_SIGNING_SECRET_ARN"] == {"Ref": "TokenSigningSecret"}
        assert variables["TOKEN_LIFETIME_SECONDS"] == {"Ref": "TokenLifetimeSeconds"}
    # The API function never holds the signing secret.
    assert "TokenSigningSecret" not in json.dumps(RESOURCES["ApiFunction"])


def test_only_the_token_route_goes_without_a_token() -> None:
    (event,) = RESOURCES["TokenFunction"]["Properties"]["Events"].values()
    assert event["Properties"]["Path"] == "/api/token" and event["Properties"]["Method"] == "POST"
    assert resolved(event["Properties"]["Auth"], "CONDUCTOR_KEYS") == {"Authorizer": "NONE"}
    assert "RestApiId" in event["Properties"]
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] == "AWS::Serverless::Function" and logical_id != "TokenFunction":
            for other in resource["Properties"].get("Events", {}).values():
                assert "Auth" not in other.get("Properties", {}), logical_id


def test_the_authorizer_checks_the_x_authorization_header_and_its_answers_are_cached_briefly() -> None:
    auth = resolved(RESOURCES["WorkflowApi"]["Properties"]["Auth"], "CONDUCTOR_KEYS")
    assert auth["DefaultAuthorizer"] == "ConductorKeys"
    assert auth["Authorizers"] == {
        "ConductorKeys": {
            "FunctionPayloadType": "REQUEST",
            "FunctionArn": "authorizer-arn",
            "Identity": {"Headers": ["X-Authorization"], "ReauthorizeEvery": 300},
        }
    }


def test_refusals_answer_401_with_the_error_body_and_orkes_error_code() -> None:
    responses = resolved(RESOURCES["WorkflowApi"]["Properties"]["GatewayResponses"], "CONDUCTOR_KEYS")
    assert resolved(RESOURCES["WorkflowApi"]["Properties"]["GatewayResponses"], "AWS_IAM") is None
    for kind in ("UNAUTHORIZED", "ACCESS_DENIED"):
        assert responses[kind]["StatusCode"] == "401"
        text = responses[kind]["ResponseTemplates"]["application/json"]
        sample = json.loads(re.sub(r"\$context\.[a-zA-Z.]+", "x", text))
        assert set(sample) == {"status", "message", "instance", "retryable", "error"}
        assert sample["status"] == 401 and sample["retryable"] is False
        assert '"instance": "$context.requestId"' in text
    assert "$context.authorizer.message" in responses["ACCESS_DENIED"]["ResponseTemplates"]["application/json"]
    assert "$context.authorizer.error" in responses["ACCESS_DENIED"]["ResponseTemplates"]["application/json"]
    # An authorizer that denies wrongly (FAILURE) or whose function raises (CONFIGURATION_ERROR,
    # e.g. its DynamoDB read throttled): a retryable 503, never a bare 500.
    for kind in ("AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"):
        failure = responses[kind]
        assert failure["StatusCode"] == "503"
        assert json.loads(failure["ResponseTemplates"]["application/json"])["retryable"]
        assert failure["ResponseParameters"]["Headers"]["Retry-After"] == "'1'"


def test_the_build_packages_the_token_route_and_the_authorizer() -> None:
    makefile = (cfn.ROOT / "functions" / "api" / "Makefile").read_text()
    assert '"$(HERE)token_app.py" "$(HERE)authorizer.py"' in makefile
    assert "build-TokenFunction build-AuthorizerFunction:" in makefile
    for logical_id in ("TokenFunction", "AuthorizerFunction"):
        assert RESOURCES[logical_id]["Metadata"] == {"BuildMethod": "makefile"}
