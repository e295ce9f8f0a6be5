"""Local mode's Lambda runtime: concurrent requests in one process stay apart."""

import io
import json
import threading

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, BaseRouter
from aws_lambda_powertools.metrics import MetricUnit

from local_mode.lambda_runtime import isolate_powertools_requests


def test_each_thread_sees_its_own_powertools_request() -> None:
    isolate_powertools_requests()
    isolate_powertools_requests()  # idempotent: a second container must not wrap it again
    app = APIGatewayRestResolver()
    seen: dict[str, object] = {}
    ready, done = threading.Barrier(2), threading.Barrier(2)

    def request(name: str) -> None:
        BaseRouter.current_event = name  # what resolve() does with each event
        ready.wait()  # both threads have set their event before either reads it
        seen[name] = app.current_event
        done.wait()

    threads = [threading.Thread(target=request, args=(n,)) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"first": "first", "second": "second"}


def test_each_thread_flushes_only_its_own_metrics(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests at once: one flushes while the other has added a metric and not yet flushed."""
    isolate_powertools_requests()
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # local mode's setting; here they print
    metrics = Metrics(namespace="LocalRuntimeTest", service="api")
    added, flushed = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            metrics.add_metric(name="First", unit=MetricUnit.Count, value=1)
            added.set()
            flushed.wait()  # the other request flushes between this one's add and its flush
            metrics.flush_metrics()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def second() -> None:
        added.wait()
        metrics.add_metric(name="Second", unit=MetricUnit.Count, value=2)
        metrics.flush_metrics()
        flushed.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    flushed_names = [[m["Name"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]] for blob in blobs]
    assert sorted(flushed_names) == [["First"], ["Second"]]


def test_each_thread_logs_its_own_correlation_id() -> None:
    """Two requests at once: each sets its correlation id, then both log."""
    isolate_powertools_requests()
    stream = io.StringIO()
    logger = Logger(service="local-runtime-test", stream=stream)
    ready = threading.Barrier(2)
    read_back: dict[str, str | None] = {}

    def request(correlation_id: str) -> None:
        logger.set_correlation_id(correlation_id)  # what inject_lambda_context and app.py do
        ready.wait()  # both have set theirs before either logs
        logger.warning("answered", extra={"request": correlation_id})
        read_back[correlation_id] = logger.get_correlation_id()

    threads = [threading.Thread(target=request, args=(n,)) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sorted((line["request"], line["correlation_id"]) for line in lines) == [
        ("first", "first"),
        ("second", "second"),
    ]
    assert read_back == {"first": "first", "second": "second"}


def test_what_local_mode_builds_at_start_is_kept_out_of_the_collectors_way(local_aws: object) -> None:
    """moto's models and the libraries live as long as the process: frozen once the stack is
    built, a full collection no longer walks them (in the bench's process: 195 ms, then 2.4 ms)."""
    import gc

    assert gc.get_freeze_count() > 100_000
