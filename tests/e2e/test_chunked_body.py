"""Chunked request bodies over real HTTP: what Node's fetch (the JavaScript SDK's transport) sends.

API Gateway reads them; so does the local server, with the same 10 MiB limit, refused with 413 as
soon as the chunk sizes pass it and without reading past it.
"""

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from local_mode.server import MAX_REQUEST_BYTES

pytestmark = pytest.mark.e2e
EXECUTE = "/api/workflow/execute/hello_world"
MIB = 1024 * 1024


def _chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def _raw(base_url: str, head: str, body: bytes) -> tuple[int, dict[str, str], Any]:
    url = urlsplit(base_url)
    assert url.hostname is not None and url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())


def _head(path: str = EXECUTE) -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )


def test_execute_with_a_chunked_body_as_http_client_sends_it(local_server: Any) -> None:
    url = urlsplit(local_server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        body = iter([b'{"name": ', b'"Chunk', b'ed Ada"}'])
        connection.request(
            "POST", EXECUTE, body=body, headers={"Content-Type": "application/json"}, encode_chunked=True
        )
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 200, answer
    assert answer["status"] == "COMPLETED"
    assert answer["output"]["greeting"] == "Hello, Chunked Ada!"


def test_chunk_extensions_and_trailers_are_read_and_dropped(local_server: Any) -> None:
    body = b'5;ext=1\r\n{"nam\r\n9\r\ne": "Bo"}\r\n0\r\nX-Checksum: abc\r\n\r\n'

    status, _, answer = _raw(local_server.url, _head(), body)

    assert status == 200, answer
    assert answer["output"]["greeting"] == "Hello, Bo!"


def test_a_kept_connection_serves_chunked_requests_one_after_another(local_server: Any) -> None:
    url = urlsplit(local_server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        for name in ("One", "Two"):
            body = iter([json.dumps({"name": name}).encode()])
            connection.request(
                "POST", EXECUTE, body=body, headers={"Content-Type": "application/json"}, encode_chunked=True
            )
            response = connection.getresponse()
            answer = json.loads(response.read())
            assert response.status == 200, answer
            assert answer["output"]["greeting"] == f"Hello, {name}!"
    finally:
        connection.close()


def test_a_chunk_declared_over_the_limit_is_refused_unread(local_server: Any) -> None:
    # Only the size line is sent: the server must answer without waiting for the 10 MiB.
    status, headers, answer = _raw(local_server.url, _head(), b"%x\r\n" % (MAX_REQUEST_BYTES + 1))

    assert status == 413
    assert headers["content-type"].startswith("application/json")
    assert answer == {"status": 413, "message": "Request Too Long", "instance": "", "retryable": False}


def test_chunks_that_add_up_to_over_the_limit_are_refused_at_the_chunk_that_passes_it(local_server: Any) -> None:
    assert MAX_REQUEST_BYTES == 10 * MIB
    chunks = b"".join(b"%x\r\n%s\r\n" % (MIB, b" " * MIB) for _ in range(10))  # exactly the limit
    # The next chunk's size line, and none of its data: refused before it is read.
    status, _, answer = _raw(local_server.url, _head(), chunks + b"1\r\n")

    assert status == 413
    assert answer["message"] == "Request Too Long"


def test_a_chunked_body_at_the_limit_reaches_the_lambda(local_server: Any) -> None:
    """The control of the two above: 10 MiB exactly passes the gateway; the Lambda then refuses an
    input over Step Functions' 256 KiB (413 with the Lambda's requestId as the instance)."""
    padding = b" " * (MAX_REQUEST_BYTES - len(b'{"name": "x"}'))
    body = b'{"name": "x"}' + padding
    status, _, answer = _raw(local_server.url, _head(), _chunked(body[:MIB], body[MIB:]))

    assert status == 200, answer  # whitespace is not input: the parsed input is small
    assert answer["output"]["greeting"] == "Hello, x!"
