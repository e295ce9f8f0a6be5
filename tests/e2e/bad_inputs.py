"""Bad inputs and the answer each one gets (SPEC.md "Errors"), shared by the HTTP test and the
in-process test that checks nothing was started.

A case is the request as it goes on the wire. ``gateway`` cases are refused by the local gateway
(as API Gateway refuses them) and never reach the Lambda; ``starts`` cases are controls that show
the limit is where it is documented, so they do start a run.
"""

import json
from dataclasses import dataclass
from urllib.parse import quote, urlencode

EXECUTE = "/api/workflow/execute/hello_world"
EXECUTE_V1 = "/api/workflow/execute/hello_world/1"
JSON = "application/json"


@dataclass(frozen=True)
class BadInput:
    id: str
    path: str
    status: int
    body: bytes = b"{}"
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    method: str = "POST"
    content_type: str | None = JSON
    error_path: str | None = None  # a validationErrors path the answer must name
    gateway: bool = False
    starts: bool = False

    @property
    def target(self) -> str:
        return self.path + ("?" + urlencode(self.query) if self.query else "")

    def wire_headers(self) -> list[tuple[str, str]]:
        """Every header the request carries, Content-Type and Content-Length included."""
        headers = [("Host", "127.0.0.1")]
        if self.content_type is not None:
            headers.append(("Content-Type", self.content_type))
        headers.extend(self.headers)
        if not any(name.lower() in {"content-length", "transfer-encoding"} for name, _ in self.headers):
            headers.append(("Content-Length", str(len(self.body))))
        return headers


def _nested(levels: int, leaf: str = "{}") -> str:
    """``levels`` objects one inside the other (the innermost is ``leaf``)."""
    return '{"a":' * (levels - 1) + leaf + "}" * (levels - 1)


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


_BLOB = "x" * (256 * 1024)
_MULTIPART = b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nAda\r\n--xyz--\r\n'
_KEY = ("X-on-conflict", "FAIL")

LAMBDA_CASES = [
    # Sizes: Step Functions takes at most 256 KiB of input.
    BadInput("input-over-256KiB", EXECUTE, 413, _json({"blob": _BLOB})),
    BadInput("start-request-input-over-256KiB", EXECUTE_V1, 413, _json({"input": {"blob": _BLOB}})),
    # Nesting: deeper than json.loads goes, and deeper than the answer can echo.
    BadInput("nested-arrays-10000", EXECUTE, 400, ("[" * 10_000 + "]" * 10_000).encode(), error_path="body"),
    BadInput("nested-objects-10000", EXECUTE, 400, _nested(10_000).encode(), error_path="body"),
    BadInput("input-nested-101", EXECUTE, 400, _nested(101).encode(), error_path="input"),
    BadInput(
        "start-request-input-nested-10000",
        EXECUTE_V1,
        400,
        ('{"input":' + _nested(10_000) + "}").encode(),
        error_path="body",
    ),
    BadInput(
        "start-request-input-nested-101",
        EXECUTE_V1,
        400,
        ('{"input":' + _nested(101) + "}").encode(),
        error_path="input",
    ),
    BadInput("input-nested-100", EXECUTE, 200, _nested(100).encode(), starts=True),
    # Not JSON that Step Functions reads, or not JSON at all.
    BadInput("nan", EXECUTE, 400, b'{"a": NaN}', error_path="input"),
    BadInput("infinity", EXECUTE, 400, b'{"a": [-Infinity]}', error_path="input"),
    BadInput("lone-surrogate-value", EXECUTE, 400, b'{"a": "\\ud800"}', error_path="input"),
    BadInput("lone-surrogate-key", EXECUTE, 400, b'{"\\udfff": 1}', error_path="input"),
    BadInput("lone-surrogate-correlation-id", EXECUTE_V1, 400, b'{"correlationId": "\\ud800"}'),
    BadInput("not-utf8", EXECUTE, 400, b'{"name": "\xff\xfe"}', error_path="body"),
    BadInput("latin1-declared", EXECUTE, 400, b'{"name": "caf\xe9"}', content_type=f"{JSON}; charset=latin-1"),
    BadInput("utf8-bom", EXECUTE, 400, b'\xef\xbb\xbf{"name": "Ada"}', error_path="body"),
    BadInput("truncated", EXECUTE, 400, b'{"name": ', error_path="body"),
    BadInput("json-string", EXECUTE, 400, b'"Ada"', error_path="body"),
    BadInput("json-number", EXECUTE, 400, b"42", error_path="body"),
    BadInput("start-request-not-object", EXECUTE_V1, 400, b"[]", error_path="body"),
    # Content types: JSON only.
    BadInput("text-plain", EXECUTE, 400, b'{"name": "Ada"}', content_type="text/plain", error_path="Content-Type"),
    BadInput(
        "form", EXECUTE, 400, b"name=Ada", content_type="application/x-www-form-urlencoded", error_path="Content-Type"
    ),
    BadInput(
        "multipart-without-boundary",
        EXECUTE,
        400,
        _MULTIPART,
        content_type="multipart/form-data",
        error_path="Content-Type",
    ),
    BadInput(
        "multipart",
        EXECUTE_V1,
        400,
        _MULTIPART,
        content_type="multipart/form-data; boundary=xyz",
        error_path="Content-Type",
    ),
    BadInput("xml", EXECUTE, 400, b"<name>Ada</name>", content_type="application/xml", error_path="Content-Type"),
    BadInput("json-with-charset", EXECUTE, 200, b'{"name": "Ada"}', content_type=f"{JSON}; charset=utf-8", starts=True),
    # Headers: repeated, huge, odd bytes, and header/query disagreements.
    BadInput(
        "idempotency-key-twice",
        EXECUTE,
        400,
        headers=(("X-Idempotency-key", "a"), ("X-Idempotency-key", "b"), _KEY),
        error_path="X-Idempotency-key",
    ),
    BadInput(
        "idempotency-key-twice-other-case",
        EXECUTE,
        400,
        headers=(("x-idempotency-key", "a"), ("X-IDEMPOTENCY-KEY", "b"), _KEY),
        error_path="X-Idempotency-key",
    ),
    BadInput(
        "idempotency-key-header-and-query",
        EXECUTE,
        400,
        headers=(("X-Idempotency-key", "a"), _KEY),
        query=(("X-Idempotency-key", "b"),),
        error_path="X-Idempotency-key",
    ),
    BadInput(
        "idempotency-key-header-and-body",
        EXECUTE_V1,
        400,
        _json({"idempotencyKey": "a", "idempotencyStrategy": "FAIL"}),
        headers=(("X-Idempotency-key", "b"),),
        error_path="X-Idempotency-key",
    ),
    BadInput(
        "idempotency-key-257",
        EXECUTE,
        400,
        headers=(("X-Idempotency-key", "k" * 257), _KEY),
        error_path="X-Idempotency-key",
    ),
    BadInput(
        "idempotency-key-tab",
        EXECUTE,
        400,
        headers=(("X-Idempotency-key", "a\tb"), _KEY),
        error_path="X-Idempotency-key",
    ),
    BadInput(
        "idempotency-key-without-strategy",
        EXECUTE,
        400,
        headers=(("X-Idempotency-key", "a"),),
        error_path="X-on-conflict",
    ),
    BadInput(
        "strategy-lower-case",
        EXECUTE,
        400,
        headers=(("X-Idempotency-key", "a"), ("X-on-conflict", "fail")),
        error_path="X-on-conflict",
    ),
    BadInput(
        "strategy-unknown-in-body",
        EXECUTE_V1,
        400,
        _json({"idempotencyKey": "a", "idempotencyStrategy": "SOMETIMES"}),
        error_path="body.idempotencyStrategy",
    ),
    BadInput("request-id-10KiB", EXECUTE, 400, headers=(("requestId", "r" * 10_240),), error_path="requestId"),
    BadInput("request-id-latin1", EXECUTE, 400, headers=(("requestId", "caf\xe9"),), error_path="requestId"),
    BadInput(
        "wait-header-and-query",
        EXECUTE,
        400,
        headers=(("waitForSeconds", "1"),),
        query=(("waitForSeconds", "2"),),
        error_path="waitForSeconds",
    ),
    BadInput("wait-upper-case-name", EXECUTE, 400, headers=(("WAITFORSECONDS", "-1"),), error_path="waitForSeconds"),
    BadInput("wait-fraction", EXECUTE, 400, headers=(("waitForSeconds", "1.5"),), error_path="waitForSeconds"),
    BadInput("wait-exponent", EXECUTE, 400, query=(("waitForSeconds", "1e3"),), error_path="waitForSeconds"),
    # What Conductor's SDKs send for "not given" (empty, None, null) is absent; a repeated or
    # conflicting real value is still refused, and other spellings are real (bad) values.
    BadInput("wait-empty-is-absent", EXECUTE, 200, headers=(("waitForSeconds", ""),), starts=True),
    BadInput(
        "python-sdk-nones-are-absent",
        EXECUTE_V1,
        200,
        _json({"name": "hello_world", "version": 1, "input": {"name": "Ada"}, "priority": 0}),
        query=(("requestId", "None"), ("waitUntilTaskRef", "None"), ("waitForSeconds", "30"), ("includeTasks", "None")),
        starts=True,
    ),
    BadInput(
        "js-sdk-empties-are-absent",
        EXECUTE_V1,
        200,
        query=(("requestId", "r-1"), ("waitUntilTaskRef", ""), ("includeTasks", "")),
        starts=True,
    ),
    BadInput("wait-none-upper-case", EXECUTE, 400, query=(("waitForSeconds", "NONE"),), error_path="waitForSeconds"),
    BadInput(
        "wait-repeated-real-values",
        EXECUTE,
        400,
        query=(("waitForSeconds", "None"), ("waitForSeconds", "1"), ("waitForSeconds", "2")),
        error_path="waitForSeconds",
    ),
    BadInput(
        "request-id-header-and-query",
        EXECUTE,
        400,
        headers=(("requestId", "a"),),
        query=(("requestId", "null"), ("requestId", "b")),
        error_path="requestId",
    ),
    BadInput(
        "include-tasks-none-upper-case",
        EXECUTE,
        400,
        query=(("includeTasks", "NONE"),),
        error_path="query.includeTasks",
    ),
    # Conductor's waitForSeconds is a Java int: above it is not a number of seconds at all.
    # Path names with odd characters: no such workflow, or no such run.
    BadInput("name-nul", "/api/workflow/execute/hello%00world", 404),
    BadInput("name-unicode", "/api/workflow/execute/h%C3%A9llo_w%C3%B6rld", 404),
    BadInput("name-not-utf8", "/api/workflow/execute/%FF%FE", 404),
    BadInput("name-encoded-slash", "/api/workflow/execute/hello%2Fworld", 404),
    BadInput("name-10000-chars", "/api/workflow/execute/" + "n" * 10_000, 404),
    BadInput("workflow-id-nul", "/api/workflow/hello_world.2.abc%00", 404, method="GET", content_type=None, body=b""),
    BadInput("workflow-id-unicode", "/api/workflow/" + quote("☃.1.☃"), 404, method="GET", content_type=None, body=b""),
    BadInput("workflow-id-dots", "/api/workflow/hello_world.2...", 404, method="GET", content_type=None, body=b""),
    BadInput("workflow-id-5000-chars", "/api/workflow/" + "w" * 5000, 404, method="GET", content_type=None, body=b""),
    BadInput(
        "include-tasks-maybe",
        "/api/workflow/hello_world.2.abc",
        400,
        method="GET",
        content_type=None,
        body=b"",
        query=(("includeTasks", "maybe"),),
        error_path="query.includeTasks",
    ),
    BadInput(
        "execute-include-tasks-banana",
        EXECUTE,
        400,
        query=(("includeTasks", "banana"),),
        error_path="query.includeTasks",
    ),
    BadInput(
        "start-request-include-tasks-banana",
        EXECUTE_V1,
        400,
        _json({"input": {}}),
        query=(("includeTasks", "banana"),),
        error_path="query.includeTasks",
    ),
    # Versions: 0 is the latest; negative, huge, or not a number is a bad value.
    BadInput("version-path-negative", "/api/workflow/execute/hello_world/-1", 400, error_path="path.version"),
    BadInput(
        "version-path-huge", "/api/workflow/execute/hello_world/99999999999999999999", 400, error_path="path.version"
    ),
    BadInput("version-path-fraction", "/api/workflow/execute/hello_world/1.5", 400, error_path="path.version"),
    BadInput("version-path-hex", "/api/workflow/execute/hello_world/0x1", 400, error_path="path.version"),
    BadInput("version-path-unknown", "/api/workflow/execute/hello_world/3", 404),
    BadInput("version-query-negative", EXECUTE, 400, query=(("version", "-1"),), error_path="version"),
    BadInput("version-query-text", EXECUTE, 400, query=(("version", "two"),), error_path="version"),
    BadInput("version-query-over-int32", EXECUTE, 400, query=(("version", "2147483648"),), error_path="version"),
    BadInput("version-header-text", EXECUTE, 400, headers=(("version", "latest"),), error_path="version"),
    BadInput("version-header-and-path", EXECUTE_V1, 400, headers=(("version", "2"),), error_path="version"),
    BadInput(
        "version-header-and-query",
        EXECUTE,
        400,
        headers=(("version", "1"),),
        query=(("version", "2"),),
        error_path="version",
    ),
    BadInput("version-query-unknown", EXECUTE, 404, query=(("version", "3"),)),
    # waitUntilTaskRef: hundreds of names.
    BadInput(
        "task-refs-500",
        EXECUTE,
        400,
        query=(("waitUntilTaskRef", ",".join(f"task{i}" for i in range(500))),),
        error_path="waitUntilTaskRef",
    ),
    BadInput(
        "task-refs-100-unknown",
        EXECUTE,
        400,
        headers=(("waitUntilTaskRef", ",".join(f"task{i}" for i in range(100))),),
        error_path="waitUntilTaskRef",
    ),
    BadInput(
        "task-refs-only-commas", EXECUTE, 400, query=(("waitUntilTaskRef", ",,,"),), error_path="waitUntilTaskRef"
    ),
    BadInput(
        "task-refs-300-times-greet", EXECUTE, 200, query=(("waitUntilTaskRef", ",".join(["greet"] * 300)),), starts=True
    ),
    # StartWorkflowRequest fields.
    BadInput("priority-100", EXECUTE_V1, 400, _json({"priority": 100}), error_path="body.priority"),
    BadInput("priority-text", EXECUTE_V1, 400, _json({"priority": "high"}), error_path="body.priority"),
    BadInput(
        "correlation-id-257", EXECUTE_V1, 400, _json({"correlationId": "c" * 257}), error_path="body.correlationId"
    ),
    BadInput("start-request-input-not-object", EXECUTE_V1, 400, _json({"input": [1]}), error_path="body.input"),
]

GATEWAY_CASES = [
    # API Gateway's own limit: 10 MiB; the body is never read.
    BadInput(
        "request-over-10MiB", EXECUTE, 413, headers=(("Content-Length", str(10 * 1024 * 1024 + 1)),), gateway=True
    ),
    # Chunked bodies are read (tests/e2e/test_chunked_body.py); a malformed one is refused.
    BadInput(
        "chunked-size-not-hex",
        EXECUTE,
        400,
        b"zz\r\n{}\r\n0\r\n\r\n",
        headers=(("Transfer-Encoding", "chunked"),),
        gateway=True,
    ),
    BadInput("transfer-encoding-gzip", EXECUTE, 501, headers=(("Transfer-Encoding", "gzip, chunked"),), gateway=True),
    BadInput("content-length-negative", EXECUTE, 400, headers=(("Content-Length", "-5"),), gateway=True),
    BadInput("content-length-text", EXECUTE, 400, headers=(("Content-Length", "ten"),), gateway=True),
    BadInput("header-line-70KiB", EXECUTE, 431, headers=(("X-Padding", "p" * 70_000),), gateway=True),
    BadInput("120-headers", EXECUTE, 431, headers=tuple((f"X-H{i}", str(i)) for i in range(120)), gateway=True),
    BadInput("uri-70KiB", "/api/workflow/execute/" + "u" * 70_000, 414, gateway=True),
    BadInput("method-not-declared", EXECUTE, 405, method="PUT", gateway=True),
    BadInput("no-route", "/api/workflows", 404, gateway=True),
]
