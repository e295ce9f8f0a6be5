"""Conductor's key-based auth in local mode: off unless ``LOCAL_CONDUCTOR_KEYS`` names keys.

``LOCAL_CONDUCTOR_KEYS="keyId:keySecret,..."`` builds the stack with ``AuthType=CONDUCTOR_KEYS``
(so the template's token function, authorizer and signing secret exist, on moto), stores those keys
hashed as ``scripts/conductor_keys.py create`` does, and makes the server run the template's Lambda
authorizer on every route that has it, with the event API Gateway sends a REQUEST authorizer. A
refusal is answered from the template's own gateway responses (UNAUTHORIZED, ACCESS_DENIED, and
AUTHORIZER_CONFIGURATION_ERROR when the authorizer function raises). Unlike API Gateway, local
mode does not cache the authorizer's answers: a revoked key's tokens stop at once here, within
``ReauthorizeEvery`` deployed.
"""

import re
import sys
import traceback
from collections.abc import Mapping
from typing import Any

from .aws import ACCOUNT, REGION, LocalAws
from .gateway import STAGE, MatchedRoute

SETTING = "LOCAL_CONDUCTOR_KEYS"
API = "WorkflowApi"
Answer = tuple[int, dict[str, str], bytes]


def configured_keys(environ: Mapping[str, str]) -> dict[str, str]:
    """keyId -> keySecret from ``LOCAL_CONDUCTOR_KEYS``; empty (auth off) when it is unset or blank."""
    keys: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in environ.get(SETTING, "").split(","))):
        key_id, colon, secret = entry.partition(":")
        if not colon or not key_id.strip() or not secret:
            raise SystemExit(f'{SETTING} wants "keyId:keySecret" pairs separated by commas; got {entry[:20]!r}')
        keys[key_id.strip()] = secret
    return keys


def stack_parameters(keys: Mapping[str, str]) -> dict[str, str]:
    return {"AuthType": "CONDUCTOR_KEYS"} if keys else {}


def store_keys(aws: LocalAws, keys: Mapping[str, str]) -> None:
    """The keys, hashed, on the stack's table: what ``scripts/conductor_keys.py create`` writes."""
    if not keys:
        return
    code_dir = str(aws.api_function.code_dir)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    from workflow_api.adapters.api_keys import ApiKeyStore
    from workflow_api.keys import hash_key

    store = ApiKeyStore(aws.environment["IDEMPOTENCY_TABLE_NAME"])
    for key_id, secret in keys.items():
        store.put(hash_key(key_id, secret), description="LOCAL_CONDUCTOR_KEYS")


class LocalAuthorizer:
    """The API's default authorizer when it is a Lambda REQUEST authorizer; else lets all through."""

    def __init__(self, aws: LocalAws) -> None:
        self._aws = aws
        resolver = aws._resolver()
        api = resolver.resolve(aws.template["Resources"][API]["Properties"])
        auth = api.get("Auth") or {}
        config = (auth.get("Authorizers") or {}).get(auth.get("DefaultAuthorizer"))
        self._function: Any = None
        self._headers: list[str] = []
        if config and config.get("FunctionPayloadType") == "REQUEST":
            arn = config["FunctionArn"]
            self._function = next(f for f in aws.functions.values() if f.arn == arn)
            self._headers = [h.lower() for h in config.get("Identity", {}).get("Headers", [])]
        self._responses: dict[str, Any] = api.get("GatewayResponses") or {}
        self._open = {
            (event["Properties"]["Method"].upper(), event["Properties"]["Path"], lid)
            for lid, resource in aws.template["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"
            for event in resource["Properties"].get("Events", {}).values()
            if event["Type"] == "Api"
            and (resolver.resolve(event["Properties"].get("Auth")) or {}).get("Authorizer") == "NONE"
        }

    @property
    def enabled(self) -> bool:
        return self._function is not None

    def refusal(self, event: dict[str, Any], matched: MatchedRoute) -> Answer | None:
        """None when the request may go on; else API Gateway's answer to it."""
        route = matched.route
        if self._function is None or (route.method, route.path, route.function) in self._open:
            return None
        headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
        if any(not headers.get(name) for name in self._headers):
            return self._gateway_response("UNAUTHORIZED", event, {})
        try:
            answer = self._function.invoke(authorizer_event(event))
            (statement,) = answer["policyDocument"]["Statement"]
        except Exception as exc:  # noqa: BLE001 - as API Gateway: an authorizer function that raises
            print(f"Authorizer failed: {''.join(traceback.format_exception(exc))}", file=sys.stderr, flush=True)
            return self._gateway_response("AUTHORIZER_CONFIGURATION_ERROR", event, {})
        context = {k: str(v) for k, v in (answer.get("context") or {}).items()}
        allowed = statement["Effect"] == "Allow" and _covers(statement["Resource"], event_method_arn(event))
        return None if allowed else self._gateway_response("ACCESS_DENIED", event, context)

    def _gateway_response(self, kind: str, event: dict[str, Any], context: Mapping[str, str]) -> Answer:
        defaults = {
            "UNAUTHORIZED": 401,
            "ACCESS_DENIED": 403,
            "AUTHORIZER_FAILURE": 500,
            "AUTHORIZER_CONFIGURATION_ERROR": 500,
        }
        response = self._responses.get(kind) or {}
        template = (response.get("ResponseTemplates") or {}).get("application/json", '{"message": "Unauthorized"}')
        request_id = event["requestContext"]["requestId"]
        body = template.replace("$context.requestId", request_id)
        body = re.sub(r"\$context\.authorizer\.(\w+)", lambda m: context.get(m.group(1), ""), body)
        headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
        for name, value in ((response.get("ResponseParameters") or {}).get("Headers") or {}).items():
            headers[name] = str(value).strip("'")
        return int(response.get("StatusCode", defaults[kind])), headers, body.encode()


def event_method_arn(event: Mapping[str, Any]) -> str:
    context = event["requestContext"]
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{context['apiId']}/{STAGE}/{event['httpMethod']}{event['path']}"


def authorizer_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """What API Gateway sends a REQUEST authorizer: the request's parts, without its body."""
    kept = (
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
    )
    return {"type": "REQUEST", "methodArn": event_method_arn(event), **{key: event.get(key) for key in kept}}


def _covers(resource: str | list[str], method_arn: str) -> bool:
    """IAM's wildcard match of a policy's Resource against the request's method ARN."""
    patterns = [resource] if isinstance(resource, str) else resource
    return any(re.fullmatch(re.escape(p).replace(r"\*", ".*").replace(r"\?", "."), method_arn) for p in patterns)
