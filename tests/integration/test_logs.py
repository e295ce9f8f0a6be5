"""What the API handler logs and what it tells callers, on the template's stack in moto.

At INFO (template.yaml's default LogLevel) the logs carry neither a workflow's input nor its
output; an error answer carries no stack trace, no ARN and no account id.
"""

import io
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider.cold_start import reset_cold_start_flag

from local_mode.gateway import Router, proxy_event
from workflow_api import service
from workflow_api.observability import logger

MARKER = f"marker-{uuid.uuid4().hex}"
ACCOUNT_ID = re.compile(r"(?<![\w-])[0-9]{12}(?![\w-])")


@pytest.fixture
def info_output(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Everything the function writes at the deployed default, LogLevel INFO (local mode runs it
    at WARNING): stdout, stderr, and the log handlers' stream (stdout as it was when the logger
    was made), all into one buffer."""
    output = io.StringIO()
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    monkeypatch.setattr(sys, "stdout", output)
    monkeypatch.setattr(sys, "stderr", output)
    handlers = [h for h in logging.getLogger(logger.name).handlers if isinstance(h, logging.StreamHandler)]
    assert handlers, "the function logs through a stream handler"
    streams = [h.stream for h in handlers]
    for handler in handlers:
        handler.stream = output  # not setStream: it would flush the old stream, maybe closed by now
    level = logger.log_level
    logger.setLevel("INFO")
    yield output
    logger.setLevel(level)
    for handler, stream in zip(handlers, streams, strict=True):
        handler.stream = stream


def invoke(
    local_aws: Any,
    method: str,
    path: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, str]:
    matched = Router(local_aws.routes).match(method, path)
    assert matched is not None
    sent = [("Content-Type", "application/json"), *(headers or [])]
    response = local_aws.invoke_api(proxy_event(method, path, sent, body, matched))
    return response["statusCode"], response["body"]


def test_info_logs_carry_neither_input_nor_output(local_aws: Any, info_output: io.StringIO) -> None:
    name = json.dumps({"name": MARKER}).encode()
    status, body = invoke(local_aws, "POST", "/api/workflow/execute/hello_world", name)
    assert status == 200
    run = json.loads(body)
    assert MARKER in run["output"]["greeting"], "the marker went into the run and came out in its output"
    assert invoke(local_aws, "GET", f"/api/workflow/{run['workflowId']}")[0] == 200
    start_request = json.dumps({"input": {"name": MARKER}, "correlationId": "c-1"}).encode()
    assert invoke(local_aws, "POST", "/api/workflow/execute/always_fails/1", start_request)[0] == 200
    too_big = json.dumps({"name": MARKER, "blob": "x" * 300_000}).encode()
    assert invoke(local_aws, "POST", "/api/workflow/execute/hello_world", too_big)[0] == 413
    bad_wait = [("waitForSeconds", "soon")]
    assert invoke(local_aws, "POST", "/api/workflow/execute/hello_world", name, bad_wait)[0] == 400
    out = info_output.getvalue()
    assert '"message":"answered"' in out, "INFO lines are captured (else this test proves nothing)"
    assert '"message":"refused"' in out
    assert MARKER not in out


def assert_safe(status: int, body: str) -> None:
    assert status >= 400
    answer = json.loads(body)
    assert answer["status"] == status
    for leak in ("Traceback", 'File "', "arn:aws", MARKER):
        assert leak not in body, (leak, body)
    assert not ACCOUNT_ID.search(body), body


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/api/workflow/execute/no_such_workflow", b"{}", []),
        ("/api/workflow/execute/hello_world", b"{}", [("waitUntilTaskRef", "nope")]),
        ("/api/workflow/execute/hello_world", json.dumps({"blob": MARKER * 10_000}).encode(), []),
        ("/api/workflow/execute/hello_world", b'{"name": "\xff"}', []),
        ("/api/workflow/execute/hello_world", ("[" * 5000 + "]" * 5000).encode(), []),
        ("/api/workflow/execute/hello_world/9", b"{}", []),
    ],
    ids=["unknown-workflow", "unknown-task-ref", "too-big", "not-utf8", "too-deep", "unknown-version"],
)
def test_error_answers_carry_no_internals(
    local_aws: Any, path: str, body: bytes, headers: list[tuple[str, str]]
) -> None:
    assert_safe(*invoke(local_aws, "POST", path, body, headers))


def test_an_idempotency_conflict_names_the_run_and_nothing_internal(local_aws: Any) -> None:
    headers = [("X-Idempotency-key", f"logs-{uuid.uuid4()}"), ("X-on-conflict", "FAIL")]
    first = invoke(local_aws, "POST", "/api/workflow/execute/hello_world", b"{}", headers)
    status, body = invoke(local_aws, "POST", "/api/workflow/execute/hello_world", b"{}", headers)
    assert status == 409
    assert_safe(status, body)
    assert json.loads(body)["workflowId"] == json.loads(first[1])["workflowId"]


def test_an_unexpected_failure_is_a_bare_500(local_aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug whose message holds an ARN: the caller sees none of it (the log has it)."""

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom at arn:aws:states:us-east-1:123456789012:stateMachine:x")

    monkeypatch.setattr(service.WorkflowService, "execute", broken)
    status, body = invoke(local_aws, "POST", "/api/workflow/execute/hello_world", b"{}")
    assert status == 500
    assert_safe(status, body)
    assert json.loads(body)["message"] == "Internal error; it has been logged"


def test_local_mode_prints_no_metrics_not_even_the_cold_start(
    local_aws: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """Local mode turns metrics off (POWERTOOLS_METRICS_DISABLED): no EMF blob on the console,
    including the ColdStart one that powertools writes apart from the others."""
    reset_cold_start_flag()  # a cold start, whatever this process served before
    status, _ = invoke(local_aws, "POST", "/api/workflow/execute/hello_world", b'{"name": "Ada"}')
    assert status == 200
    printed = capfd.readouterr()
    assert '"_aws"' not in printed.out + printed.err
