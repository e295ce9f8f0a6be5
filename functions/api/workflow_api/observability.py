"""Logger, Tracer and Metrics, created once; what one answer adds to them."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
# Only botocore: it is all this service calls out with. The default patches every library the
# X-Ray SDK knows (requests, sqlite3, httplib, ...), importing each one on every cold start.
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()


def record_answer(http_status: int, started: bool, waited_seconds: float, aws_calls: dict[str, int]) -> None:
    """One log line and a few EMF metrics per answer; never the run's input or output."""
    if started:
        metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="WaitTime", unit=MetricUnit.Milliseconds, value=round(waited_seconds * 1000))
    if http_status == 200:
        metrics.add_metric(name="CompleteAnswers", unit=MetricUnit.Count, value=1)
    elif http_status == 206:
        metrics.add_metric(name="PartialAnswers", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="AwsCalls", unit=MetricUnit.Count, value=sum(aws_calls.values()))
    logger.info(
        "answered",
        extra={"http_status": http_status, "waited_ms": round(waited_seconds * 1000), "aws_calls": dict(aws_calls)},
    )
