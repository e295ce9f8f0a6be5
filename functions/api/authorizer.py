"""The Lambda REQUEST authorizer of AuthType CONDUCTOR_KEYS: admits a request whose
``X-Authorization`` header holds a token from ``POST /api/token`` that is untampered, unexpired,
and whose key still exists and is not revoked.

A refusal is a Deny policy whose context carries our message and Orkes' error code; the
template's ACCESS_DENIED gateway response turns it into a 401 with the API's error body (the SDKs
renew their token on a 401 whose ``error`` is EXPIRED_TOKEN or INVALID_TOKEN). A request without
the header never gets here: API Gateway answers it 401 itself (UNAUTHORIZED). The answer holds for
every route of the stage, so API Gateway caches it per token (``ReauthorizeEvery``).
"""

from typing import Any

from workflow_api.key_auth import key_auth
from workflow_api.keys import TokenRejected

HEADER = "x-authorization"


def _token(event: dict[str, Any]) -> str:
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == HEADER and value:
            return str(value)
    return ""


def _stage_resources(method_arn: str) -> str:
    """``arn:...:execute-api:region:account:api/stage/METHOD/path`` -> every route of that stage."""
    prefix, _, path = method_arn.partition("/")
    return f"{prefix}/{path.split('/', 1)[0]}/*/*"


def policy(principal: str, effect: str, method_arn: str, context: dict[str, str]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": _stage_resources(method_arn)}],
        },
        "context": context,
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        claims = key_auth().check(_token(event))
    except TokenRejected as rejected:
        return policy("anonymous", "Deny", event["methodArn"], {"message": rejected.message, "error": rejected.code})
    return policy(claims.key_id, "Allow", event["methodArn"], {"keyId": claims.key_id})
