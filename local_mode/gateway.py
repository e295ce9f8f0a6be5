"""An HTTP request as the API Gateway REST proxy event that AWS would hand the Lambda."""

import base64
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .aws import ACCOUNT, ApiRoute

STAGE = "local"


@dataclass(frozen=True)
class MatchedRoute:
    route: ApiRoute
    path_parameters: dict[str, str]


def _pattern(path: str) -> re.Pattern[str]:
    # A {param} matches one path segment, as in API Gateway; {param+} would match the rest.
    regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(f"^{regex}$")


class Router:
    def __init__(self, routes: Sequence[ApiRoute]) -> None:
        self._routes = [(route, _pattern(route.path)) for route in routes]

    def match(self, method: str, path: str) -> MatchedRoute | None:
        for route, pattern in self._routes:
            found = pattern.match(path)
            if found and route.method == method:
                return MatchedRoute(route, {k: unquote(v) for k, v in found.groupdict().items()})
        return None

    def methods(self, path: str) -> list[str]:
        """The methods the template declares on ``path``; none if no route has that path."""
        return sorted({route.method for route, pattern in self._routes if pattern.match(path)})


def proxy_event(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    matched: MatchedRoute,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The REST (v1) proxy event: ``headers`` keeps the last value of a name, ``multiValueHeaders``
    all of them, names in the client's case; a body that is not UTF-8 arrives base64-encoded."""
    url = urlsplit(target)
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        multi_query.setdefault(name, []).append(value)
    try:
        text, encoded = (body.decode("utf-8"), False) if body else (None, False)
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    request_id = str(uuid.uuid4())
    now = time.time()
    return {
        "resource": matched.route.path,
        "path": url.path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": matched.path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "stage": STAGE,
            "resourcePath": matched.route.path,
            "httpMethod": method,
            "path": f"/{STAGE}{url.path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": multi_headers.get("User-Agent", [None])[-1]},
        },
        "body": text,
        "isBase64Encoded": encoded,
    }
