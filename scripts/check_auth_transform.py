"""`make validate`: SAM's own transform of template.yaml for each AuthType, in SAM CLI's
environment (.venv-sam), checking each yields its authorizer: AWS_IAM SigV4 on every route,
COGNITO the user pool, CONDUCTOR_KEYS the Lambda authorizer on every route but POST /api/token
(with the gateway responses that give its refusals the API's error body), NONE nothing; that the
key-auth resources exist only with CONDUCTOR_KEYS; and that SAM alone (without
AWS::LanguageExtensions) refuses the Auth rather than silently dropping it.

usage: .venv-sam/bin/python scripts/check_auth_transform.py template.yaml
"""

import json
import sys
from typing import Any

from samcli.lib.cfn_language_extensions.sam_integration import expand_language_extensions
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

POOL = sys.argv[2] if len(sys.argv) > 2 else "arn:aws:cognito-idp:us-east-1:111111111111:userpool/us-east-1_Example1"


class Policies:
    def load(self) -> dict[str, Any]:
        return {}


with open(sys.argv[1]) as stream:
    source = stream.read()
answers: dict[str, Any] = {}
KEY_AUTH_RESOURCES = {"TokenSigningSecret", "TokenFunction", "AuthorizerFunction", "TokenLogs", "AuthorizerLogs"}
for auth_type in ("AWS_IAM", "COGNITO", "CONDUCTOR_KEYS", "NONE", "raw"):
    template = yaml_parse(source)
    parameters = {"AuthType": auth_type, "CognitoUserPoolArn": POOL}
    if auth_type == "raw":  # SAM alone, without AWS::LanguageExtensions: it must refuse, not ignore
        template["Transform"] = "AWS::Serverless-2016-10-31"
        parameters["AuthType"] = "COGNITO"
    else:
        values = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
        template = expand_language_extensions(template, {**values, **parameters}, enabled=True).expanded_template
        template["Transform"] = "AWS::Serverless-2016-10-31"
    for resource in template["Resources"].values():
        for key in ("CodeUri", "DefinitionUri"):
            if isinstance(resource.get("Properties", {}).get(key), str):
                resource["Properties"][key] = "s3://bucket/" + resource["Properties"][key]
    try:
        output = transform(template, parameters, Policies())
    except Exception as exc:  # noqa: BLE001 - SAM's refusal is the answer for "raw"
        answers[auth_type] = {"error": str(exc)}
        continue
    body = output["Resources"]["WorkflowApi"]["Properties"]["Body"]
    schemes = body.get("securityDefinitions") or body.get("components", {}).get("securitySchemes") or {}
    # A route of a resource with a Condition comes wrapped in Fn::If [condition, route, NoValue].
    paths = {path: ops["Fn::If"][1] if "Fn::If" in ops else ops for path, ops in body["paths"].items()}
    operations = {
        (method, path): op["Fn::If"][1] if "Fn::If" in op else op
        for path, ops in paths.items()
        for method, op in ops.items()
    }
    conditions = {name: bool(value) for name, value in (output.get("Conditions") or {}).items()}
    answers[auth_type] = {
        "security": sorted(
            {json.dumps(op.get("security")) for key, op in operations.items() if key[1] != "/api/token"}
        ),
        "providers": [s.get("x-amazon-apigateway-authorizer", {}).get("providerARNs") for s in schemes.values()],
        "authorizer": [s.get("x-amazon-apigateway-authorizer", {}).get("identitySource") for s in schemes.values()],
        "token_route": json.dumps(operations[("post", "/api/token")].get("security"))
        if ("post", "/api/token") in operations
        else "absent",
        "gateway_responses": sorted(body.get("x-amazon-apigateway-gateway-responses") or {}),
        # Resources that exist only with CONDUCTOR_KEYS carry its condition (SAM's own included).
        "key_auth_condition": sorted(
            {r.get("Condition", "-") for lid, r in output["Resources"].items() if lid in KEY_AUTH_RESOURCES}
        ),
    }


def auth(auth_type: str) -> dict[str, Any]:
    return {key: answers[auth_type][key] for key in ("security", "providers")}


assert auth("AWS_IAM") == {"security": ['[{"AWS_IAM": []}]'], "providers": [None]}, answers
assert auth("COGNITO") == {"security": ['[{"COGNITO": []}]'], "providers": [[POOL]]}, answers
assert auth("NONE") == {"security": ["null"], "providers": []}, answers
assert answers["CONDUCTOR_KEYS"]["security"] == ['[{"ConductorKeys": []}]'], answers
assert answers["CONDUCTOR_KEYS"]["authorizer"] == ["method.request.header.X-Authorization"], answers
assert answers["CONDUCTOR_KEYS"]["token_route"] == '[{"NONE": []}]', answers  # noqa: S105 - not a password
assert answers["CONDUCTOR_KEYS"]["gateway_responses"] == [
    "ACCESS_DENIED",
    "AUTHORIZER_CONFIGURATION_ERROR",
    "AUTHORIZER_FAILURE",
    "UNAUTHORIZED",
]
for auth_type in ("AWS_IAM", "COGNITO", "NONE"):
    assert answers[auth_type]["gateway_responses"] == [], answers
    assert answers[auth_type]["key_auth_condition"] == ["UseConductorKeys"], answers
assert answers["CONDUCTOR_KEYS"]["key_auth_condition"] == ["UseConductorKeys"], answers
assert "error" in answers["raw"], "without AWS::LanguageExtensions SAM must refuse the Auth, not drop it"
print("auth transform: AWS_IAM, COGNITO, CONDUCTOR_KEYS and NONE each yield their authorizer")
