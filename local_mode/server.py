"""``make run``: the API on http://127.0.0.1:$PORT, backed by the in-process AWS of local mode.

Each HTTP request becomes the proxy event API Gateway would send and goes through the same
Lambda handler as in AWS. Listens on loopback only: there is no authentication in local mode.

Local mode alone also serves the API's OpenAPI document (GET /api/openapi.json) and Swagger UI
(GET /api/docs), whose script and style come from powertools' package: nothing is fetched from a CDN.
"""

import argparse
import base64
import ipaddress
import json
import os
import signal
import sys
import time
import traceback
from functools import cached_property
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from types import FrameType
from typing import Any

from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

from . import limits
from . import template as cfn
from .aws import LocalAws
from .gateway import Router, proxy_event
from .key_auth import LocalAuthorizer, configured_keys, stack_parameters, store_keys

# API Gateway's own limit on a request payload; larger requests never reach the Lambda.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
SWAGGER_JS = f"{DOCS_PATH}/swagger-ui-bundle.min.js"
SWAGGER_CSS = f"{DOCS_PATH}/swagger-ui.min.css"
SWAGGER_ASSETS = {SWAGGER_JS: "text/javascript; charset=utf-8", SWAGGER_CSS: "text/css; charset=utf-8"}


# What API Gateway answers when Lambda refuses the invocation (a throttle): "If the Lambda API
# rejects the invocation request, API Gateway returns a 500 error code ... {"message": "Internal
# server error"}" (AWS Lambda Developer Guide, "Handling Lambda errors with an API Gateway API").
LAMBDA_REFUSED = (500, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}')


def _gateway_error(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    body = {"status": status, "message": message, "instance": "", "retryable": False}
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many callers wait at once (each for up to MaxWaitSeconds): let them queue, not be refused.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], aws: LocalAws) -> None:
        super().__init__(address, _Handler)
        self.aws = aws
        self.router = Router(aws.routes)
        # The template's Lambda authorizer (AuthType CONDUCTOR_KEYS, LOCAL_CONDUCTOR_KEYS); else none.
        self.authorizer = LocalAuthorizer(aws)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @cached_property
    def openapi_json(self) -> bytes:
        """The API function's own document (``openapi_document`` next to its handler)."""
        module = self.aws.api_function.load_module("_local_openapi")
        return json.dumps(module.openapi_document(), indent=2).encode()

    def docs(self, target: str) -> tuple[int, dict[str, str], bytes] | None:
        """The document and Swagger UI, or None for any other path."""
        path, _, query = target.partition("?")
        if path == OPENAPI_PATH or (path == DOCS_PATH and query == "format=json"):
            return 200, {"Content-Type": "application/json"}, self.openapi_json
        if path == DOCS_PATH:
            spec = self.openapi_json.decode().replace("</", "<\\/")  # no "</script>" inside the page's script
            page = generate_swagger_html(spec, SWAGGER_JS, SWAGGER_CSS, DOCS_PATH, None)
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()
        if path in SWAGGER_ASSETS:
            asset = Path(swagger_ui.__file__).parent / path.rsplit("/", 1)[-1]
            return 200, {"Content-Type": SWAGGER_ASSETS[path], "Cache-Control": "max-age=3600"}, asset.read_bytes()
        return None


class _Handler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"
    # An answer leaves in one write, at once (the stdlib flushes after each request). Unbuffered,
    # its headers and body went in two small writes, and on a kept connection the second waited
    # for the client's delayed ACK of the first (Nagle): ~40 ms an answer (make bench saw 44 ms
    # for a 404 that takes 1 ms on a new connection).
    wbufsize = -1
    disable_nagle_algorithm = True

    def _handle(self) -> None:
        began = time.monotonic()
        status, headers, body = self._answer()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        elapsed = (time.monotonic() - began) * 1000
        print(f"{self.command} {self.path} -> {status} in {elapsed:.0f} ms", flush=True)

    def _read_body(self) -> bytes | tuple[int, dict[str, str], bytes]:
        """The request body, or the gateway's refusal (the connection then closes: the rest of
        the body is never read). API Gateway takes chunked bodies too (fetch in Node streams them)."""
        coding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if coding:
            # With a Transfer-Encoding, Content-Length is ignored (RFC 9112 6.3) and, if both came,
            # the connection is not reused: a body framed two ways is never read as two requests.
            self.close_connection = "Content-Length" in self.headers
            if coding != "chunked":
                self.close_connection = True
                return _gateway_error(501, f"Transfer-Encoding not supported: {coding[:40]} (send chunked or none)")
            try:
                return read_chunked(self.rfile, MAX_REQUEST_BYTES)
            except BodyTooLarge:
                self.close_connection = True
                return _gateway_error(413, "Request Too Long")
            except ValueError as exc:
                self.close_connection = True
                return _gateway_error(400, f"Bad chunked body: {exc}")
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not (declared.isascii() and declared.isdigit()):
            self.close_connection = True
            return _gateway_error(400, f"Bad Content-Length: {declared[:40]}")
        length = int(declared)
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True
            return _gateway_error(413, "Request Too Long")
        return self.rfile.read(length) if length else b""

    def _answer(self) -> tuple[int, dict[str, str], bytes]:
        body = self._read_body()
        if isinstance(body, tuple):
            return body
        path = self.path.split("?", 1)[0]
        if self.command == "GET" and (docs := self.server.docs(self.path)) is not None:
            return docs
        matched = self.server.router.match(self.command, path)
        if matched is None:
            if methods := self.server.router.methods(path):
                status, headers, answer = _gateway_error(405, f"Method {self.command} not allowed on {path}")
                return status, {**headers, "Allow": ", ".join(methods)}, answer
            return _gateway_error(404, f"No route for {self.command} {path}")
        event = proxy_event(self.command, self.path, list(self.headers.items()), body, matched, self.client_address[0])
        try:
            if (refused := self.server.authorizer.refusal(event, matched)) is not None:
                return refused
            result = self.server.aws.invoke_api(event, matched.route.function)
        except limits.LambdaThrottled as exc:
            print(f"Lambda throttled the API function: {exc.reason}", file=sys.stderr, flush=True)
            return LAMBDA_REFUSED
        except Exception as exc:  # noqa: BLE001 - as API Gateway: a crashed Lambda is a 502
            # The whole trace, as CloudWatch would hold it: the caller sees only the 502.
            print(f"Lambda failed: {''.join(traceback.format_exception(exc))}", file=sys.stderr, flush=True)
            return _gateway_error(502, "Internal server error")
        return _lambda_response(result)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815 - the stdlib's names

    def handle_expect_100(self) -> bool:
        """The stdlib writes "100 Continue" and goes on to read the body, which a client that
        asked (curl does, for a body over 1 MB) sends only once it has the 100: sent now, since
        the answer's writes are buffered (above). curl waited 1 s for it, then sent the body anyway."""
        answered = super().handle_expect_100()
        self.wfile.flush()
        return answered

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (request line or header too long, too many headers, a bad
        request line) in the gateway's JSON error body rather than an HTML page."""
        status, headers, body = _gateway_error(code, message or HTTPStatus(code).phrase)
        self.close_connection = True
        self.send_response(status, message)
        for name, value in {**headers, "Connection": "close", "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def __getattr__(self, name: str) -> Any:
        """Any other method (HEAD, OPTIONS, TRACE, QUERY...) reaches the router too, which answers
        405 with the error body, as the gateway does; the stdlib would answer 501 with an HTML page."""
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        """One line per request is printed by _handle; silence the stdlib's own."""


class BodyTooLarge(Exception):
    """A request body over the gateway's limit: refused before more of it is read."""


CHUNK_LINE_BYTES = 4096  # a chunk-size line (with any extensions) or one trailer line
MAX_TRAILER_LINES = 100


def read_chunked(stream: BufferedIOBase, limit: int) -> bytes:
    """A ``Transfer-Encoding: chunked`` body (RFC 9112 7.1): sizes in hex, extensions and trailers
    read and dropped. Raises ``BodyTooLarge`` as soon as a chunk would take the body over ``limit``
    (nothing of that chunk is read) and ``ValueError`` for a malformed or cut-off body."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(CHUNK_LINE_BYTES + 1)
        if len(line) > CHUNK_LINE_BYTES or not line.endswith(b"\n"):
            raise ValueError("a chunk-size line is too long or cut off")
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise ValueError(f"bad chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > limit:
            raise BodyTooLarge
        data = stream.read(size)
        if len(data) != size or stream.read(2) != b"\r\n":
            raise ValueError("a chunk is cut off or not followed by CRLF")
        parts.append(data)
    for _ in range(MAX_TRAILER_LINES):  # trailer fields, then the empty line that ends the body
        line = stream.readline(CHUNK_LINE_BYTES + 1)
        if len(line) > CHUNK_LINE_BYTES or not line.endswith(b"\n"):
            raise ValueError("a trailer line is too long or cut off")
        if line in (b"\r\n", b"\n"):
            return b"".join(parts)
    raise ValueError(f"more than {MAX_TRAILER_LINES} trailer lines")


def _lambda_response(result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(str(v) for v in values)
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return int(result.get("statusCode", 502)), headers, body


def _loopback(host: str) -> str:
    if host == "localhost" or ipaddress.ip_address(host).is_loopback:
        return host
    raise SystemExit(f"local mode listens on loopback only (127.0.0.0/8 or ::1), not {host}")


def serve(host: str, port: int, template: Path = cfn.TEMPLATE) -> None:
    keys = configured_keys(os.environ)
    aws = LocalAws(template, parameters=stack_parameters(keys)).start()
    store_keys(aws, keys)
    server = LocalApiServer((_loopback(host), port), aws)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"Local mode: the workflow API is listening on {server.url}/api (no Docker, no AWS account)")
    print(f"  {limits.describe()} (docs/LOCAL_LIMITS.md)")
    for name, versions in aws.workflows.items():
        print(f"  workflow {name}: versions {', '.join(map(str, versions))}")
    if keys:
        print(f"  key auth on (LOCAL_CONDUCTOR_KEYS, {len(keys)} keys): POST {server.url}/api/token first")
    print(
        f"  try: curl -s -X POST {server.url}/api/workflow/execute/hello_world"
        """ -H 'Content-Type: application/json' -d '{"name": "Ada"}'""",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        aws.stop()
        print("Local mode stopped.", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--template", type=Path, default=cfn.TEMPLATE, help="the SAM template to run (template.yaml)")
    args = parser.parse_args()
    serve(args.host, args.port, args.template.resolve())


if __name__ == "__main__":
    main()
