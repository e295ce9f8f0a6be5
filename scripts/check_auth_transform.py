"""`make validate`: SAM's own transform of template.yaml for each AuthType, in SAM CLI's
environment (.venv-sam), checking each yields its authorizer: AWS_IAM SigV4 on every route,
COGNITO the user pool, NONE nothing; and that SAM alone (without AWS::LanguageExtensions)
refuses the Auth rather than silently dropping it.

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
for auth_type in ("AWS_IAM", "COGNITO", "NONE", "raw"):
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
    api = next(r for r in output["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi")
    body = api["Properties"]["Body"]
    schemes = body.get("securityDefinitions") or body.get("components", {}).get("securitySchemes") or {}
    answers[auth_type] = {
        "security": sorted({json.dumps(op.get("security")) for ops in body["paths"].values() for op in ops.values()}),
        "providers": [s.get("x-amazon-apigateway-authorizer", {}).get("providerARNs") for s in schemes.values()],
    }
assert answers["AWS_IAM"] == {"security": ['[{"AWS_IAM": []}]'], "providers": [None]}, answers
assert answers["COGNITO"] == {"security": ['[{"COGNITO": []}]'], "providers": [[POOL]]}, answers
assert answers["NONE"] == {"security": ["null"], "providers": []}, answers
assert "error" in answers["raw"], "without AWS::LanguageExtensions SAM must refuse the Auth, not drop it"
print("auth transform: AWS_IAM, COGNITO and NONE each yield their authorizer")
