"""Bad input over real HTTP: each case in ``bad_inputs`` gets its documented answer with
Conductor's error body, never a 500 or a 502, and never a stack trace, an ARN or an account id.

Requests are written byte for byte on a socket, so repeated headers, non-ASCII header bytes,
broken lengths and oversized lines reach the server exactly as a hostile client sends them.
"""

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from local_mode.aws import ACCOUNT
from tests.e2e.bad_inputs import GATEWAY_CASES, LAMBDA_CASES, BadInput

pytestmark = pytest.mark.e2e

# Twelve digits on their own, not the tail of a UUID or any other token.
# The stack's own account (moto's, in local mode): an answer must never name it. Any other
# 12 digits may be the caller's own input echoed back.
ACCOUNT_ID = ACCOUNT


def send(base_url: str, case: BadInput) -> tuple[int, dict[str, str], bytes]:
    url = urlsplit(base_url)
    assert url.hostname is not None and url.port is not None
    head = f"{case.method} {case.target} HTTP/1.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in case.wire_headers())
    head += "Connection: close\r\n\r\n"
    body = b"" if case.id == "request-over-10MiB" else case.body  # declared, never sent: it is refused unread
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        sock.sendall(head.encode("latin-1") + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def assert_conductor_error(status: int, raw: bytes, *, from_lambda: bool) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(raw)
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["instance"], str)
    assert isinstance(body["retryable"], bool)
    if from_lambda:
        assert body["instance"], "the instance is the call's requestId"
        if status == 400:
            assert isinstance(body["validationErrors"], list) and body["validationErrors"]
    for leak in (b"Traceback", b'File "', b"arn:aws"):
        assert leak not in raw
    assert ACCOUNT_ID.encode() not in raw, "the account id in an error"
    return body


@pytest.mark.parametrize("case", LAMBDA_CASES + GATEWAY_CASES, ids=lambda case: case.id)
def test_bad_input_gets_its_documented_answer(local_server: Any, case: BadInput) -> None:
    status, headers, raw = send(local_server.url, case)
    assert status == case.status, raw[:2000]
    assert headers["content-type"].startswith("application/json")
    if case.starts:
        assert json.loads(raw)["status"] == "COMPLETED"
        return
    body = assert_conductor_error(status, raw, from_lambda=not case.gateway)
    if case.error_path:
        assert case.error_path in [error["path"] for error in body["validationErrors"]], body
    if status == 405:
        assert headers["allow"] == "POST"


def test_unknown_task_refs_error_names_the_valid_ones(local_server: Any) -> None:
    case = next(c for c in LAMBDA_CASES if c.id == "task-refs-100-unknown")
    _, _, raw = send(local_server.url, case)
    assert "greet" in json.loads(raw)["validationErrors"][0]["message"]


def test_an_error_does_not_echo_a_huge_value(local_server: Any) -> None:
    case = next(c for c in LAMBDA_CASES if c.id == "request-id-10KiB")
    _, _, raw = send(local_server.url, case)
    assert len(raw) < 2000
