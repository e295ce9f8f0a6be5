"""A tiny HTTP client for the end-to-end tests: real sockets, no test doubles."""

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


def call(
    base_url: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    raw_body: bytes | None = None,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    query: dict[str, str] | list[tuple[str, str]] | None = None,
    timeout: float = 60,
) -> Answer:
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    target = path + ("?" + urlencode(query) if query else "")
    body = raw_body if raw_body is not None else (json.dumps(json_body).encode() if json_body is not None else None)
    try:
        connection.putrequest(method, target)
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if body is not None and not any(k.lower() == "content-type" for k, _ in pairs):
            pairs.append(("Content-Type", "application/json"))
        for name, value in pairs:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()
