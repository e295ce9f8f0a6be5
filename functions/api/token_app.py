"""``POST /api/token``: Conductor's key-based auth, the route a caller reaches without a token.

Deployed as its own function (TokenFunction, AuthType CONDUCTOR_KEYS only) from the API's code, so
that its errors have the API's one error body (``workflow_api.http_errors``) while the function
that anyone may call holds no right beyond reading the keys' hashes and the signing secret.
"""

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from workflow_api import http_errors
from workflow_api.key_auth import GenerateTokenRequest, TokenAnswer, key_auth
from workflow_api.models import ErrorBody
from workflow_api.observability import logger

# The route, also included in app.py's resolver so that the API's OpenAPI document has it;
# API Gateway sends /api/token to TokenFunction only.
router = Router()  # type: ignore[no-untyped-call]
TOKEN_RESPONSES: dict[int, Any] = {
    200: {
        "description": "A signed token: send it as `X-Authorization` on every other call.",
        "content": {content_types.APPLICATION_JSON: {"model": TokenAnswer}},
    },
    400: {
        "description": "The body is not a {keyId, keySecret} object",
        "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
    },
    401: {
        "description": "Unknown keyId, wrong keySecret, or a revoked key.",
        "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
    },
    404: {
        "description": "Key auth is off (AuthType is not CONDUCTOR_KEYS; local mode without LOCAL_CONDUCTOR_KEYS):"
        " no such route. Conductor's SDKs then take the server for an open one and send no token.",
        "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
    },
}


@router.post(
    "/api/token",
    summary="Generate a token from an API key (Conductor's key-based auth)",
    description="Trades a `keyId` and `keySecret` for a short-lived token (1 h by default). Every other"
    " route then wants it in the `X-Authorization` header (AuthType CONDUCTOR_KEYS).",
    operation_id="generateToken",
    tags=["token"],
    responses=TOKEN_RESPONSES,
)
def generate_token(request: Annotated[GenerateTokenRequest, Body(embed=False)]) -> Response[str]:
    token = key_auth().issue_token(request.key_id, request.key_secret)
    logger.info("token issued", extra={"key_id": request.key_id})
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(TokenAnswer(token=token).model_dump(by_alias=True)),
        headers={"Cache-Control": "no-store"},
    )


app = APIGatewayRestResolver(enable_validation=True)
app.include_router(router)
http_errors.register(app)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
