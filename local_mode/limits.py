"""AWS's limits in local mode: Step Functions' API quotas, Lambda's concurrency, EventBridge's delay.

moto answers every call at once, never throttles and runs any number of handlers together; AWS
does none of that. Each limit here is an environment setting whose default is AWS's own figure,
read when local mode starts (``configure``), so what local mode measures is what AWS would do.

``LOCAL_SFN_QUOTAS`` (unset or ``aws``; ``off``; or ``StartExecution=1300/300,...`` as burst/rate)
    Step Functions' API action throttling, Standard workflows, US East (N. Virginia): token buckets
    per account and region, shared by every caller: StartExecution 1,300 / 300 a second,
    DescribeExecution 300 / 15, GetExecutionHistory 400 / 20. Source: AWS Step Functions Developer
    Guide, "Step Functions service quotas", section "Quotas related to API action throttling"
    (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html; the figures also in
    awsdocs/aws-step-functions-developer-guide, doc_source/limits-overview.md). A call over its
    bucket fails as AWS fails it: HTTP 400, ``ThrottlingException``, "Rate exceeded". A throttled
    call takes no token; a botocore retry is a new call and needs one.
``LOCAL_LAMBDA_CONCURRENCY`` (default 1000; ``0`` = unlimited)
    Lambda's concurrent executions per account and region, shared by every function (AWS Lambda
    Developer Guide, "Lambda quotas" and "Lambda function scaling"). A function's
    ``ReservedConcurrentExecutions`` caps it and is taken out of what the others share
    (PutFunctionConcurrency in the Lambda API Reference). Over the limit an invocation is throttled
    as Lambda throttles it: ``TooManyRequestsException`` (HTTP 429), which a Step Functions task
    state sees as ``Lambda.TooManyRequestsException``; API Gateway answers its caller 500
    ``{"message": "Internal server error"}`` ("If the Lambda API rejects the invocation request,
    API Gateway returns a 500 error code", AWS Lambda Developer Guide, "Handling Lambda errors with
    an API Gateway API", https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html).
``LOCAL_EVENTBRIDGE_DELAY_MS`` (default 129.33)
    When the "Step Functions Execution Status Change" event reaches its rule's target after the
    run ends. AWS publishes no delivery-time guarantee; the figure is the P99 end-to-end latency
    AWS announced for event buses (AWS What's New, late 2024: "up to 94% improvement in end-to-end
    latency ... P99 latency 129.33 ms"), used as a fixed delay. That announcement was not found in
    the reference search used when this was written: check the figure against it. No AWS figure was found for the
    time Step Functions itself takes to emit the event, so none is added. Its delivery is best
    effort (EventBridge Events Reference, "AWS Step Functions events": "Delivery type: Best effort").
``LOCAL_EVENTBRIDGE_LOSS`` (default 0) and ``LOCAL_EVENTBRIDGE_SEED`` (default 0)
    The fraction of those events lost, drawn from ``random.Random(seed)``. ``eventbridge.lose_next(n)``
    loses the next n, for tests. ``eventbridge.duplicate_next(n)`` delivers the next n twice (delivery
    is at least once), and ``eventbridge.hold_next(n)`` holds the next n back until
    ``eventbridge.release_held()`` delivers them, late: after a newer end of the same run (a
    redriven one), out of order.

EventBridge invokes its Lambda targets asynchronously, and local mode handles a delivered event
as Lambda's queue does (AWS Lambda Developer Guide, "How Lambda handles errors and retries with
asynchronous invocation"): a throttled one is tried again for up to 6 hours; one the function
fails on is tried twice more, 1 then 2 minutes later, then goes to the function's on-failure
destination (``dead_letters``: template.yaml's EventInvokeConfig), not lost.
"""

import heapq
import itertools
import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.core.exceptions import AWSError

from . import dead_letters

REGION_FIGURES = "us-east-1"


@dataclass(frozen=True)
class Quota:
    burst: float
    rate: float  # tokens added a second


# Standard workflows, US East (N. Virginia): see the module's docstring for the source.
AWS_QUOTAS = {
    "StartExecution": Quota(1300, 300),
    "DescribeExecution": Quota(300, 15),
    "GetExecutionHistory": Quota(400, 20),
}
# The moto response method that answers each throttled operation.
_HANDLERS = {"StartExecution": "start_execution", "DescribeExecution": "describe_execution"}
_HANDLERS["GetExecutionHistory"] = "get_execution_history"
AWS_LAMBDA_CONCURRENCY = 1000
AWS_EVENTBRIDGE_DELAY_MS = 129.33
# Lambda's queue for asynchronous invocations (EventBridge's): a throttled event goes back to the
# queue and is tried again, from 1 s after the first attempt up to 5 min apart, for up to 6 hours
# (AWS Lambda Developer Guide, https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
ASYNC_RETRY_FIRST_S, ASYNC_RETRY_MAX_S, ASYNC_RETRY_FOR_S = 1.0, 300.0, 6 * 3600.0
# An event the function fails on (an error, a timeout) is tried twice more, one minute then two
# minutes later (same page); then Lambda gives it to the on-failure destination, if any.
ASYNC_ERROR_WAITS_S = (60.0, 120.0)


class ThrottlingException(AWSError):
    """Step Functions' answer to a call over its quota, as botocore reads it."""

    TYPE = "ThrottlingException"
    STATUS = 400

    def __init__(self) -> None:
        super().__init__("Rate exceeded")


class TooManyRequestsException(AWSError):
    """Lambda's answer to an Invoke over the concurrency limit (the Lambda API's own shape)."""

    TYPE = "TooManyRequestsException"
    STATUS = 429

    def __init__(self, reason: str) -> None:
        super().__init__("Rate Exceeded.")
        self.description = json.dumps({"__type": self.TYPE, "message": self.message, "Reason": reason, "Type": "User"})


class LambdaThrottled(Exception):
    """An invocation refused for want of concurrency; ``reason`` is Lambda's."""

    def __init__(self, function: str, reason: str) -> None:
        super().__init__(f"{function}: {reason}")
        self.function, self.reason = function, reason


class TargetFailed(Exception):
    """A function invoked asynchronously failed on ``event`` (its handler raised)."""

    def __init__(self, function_name: str, function_arn: str, event: Mapping[str, Any], error: BaseException) -> None:
        super().__init__(f"{function_name}: {type(error).__name__}: {error}")
        self.function_name, self.function_arn, self.event, self.error = function_name, function_arn, event, error


# --- Step Functions quotas -------------------------------------------------------------------------


class TokenBucket:
    """AWS's token bucket: ``burst`` tokens at most, ``rate`` more a second, one a call."""

    def __init__(self, quota: Quota, clock: Callable[[], float] = time.monotonic) -> None:
        self.quota, self._clock = quota, clock
        self._tokens, self._at = quota.burst, clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.quota.burst, self._tokens + (now - self._at) * self.quota.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def refill(self) -> None:
        with self._lock:
            self._tokens, self._at = self.quota.burst, self._clock()


def parse_quotas(spec: str | None) -> dict[str, Quota] | None:
    """``LOCAL_SFN_QUOTAS``: None when off; operations a custom spec does not name keep AWS's."""
    text = (spec or "aws").strip()
    if text.lower() == "aws":
        return dict(AWS_QUOTAS)
    if text.lower() == "off":
        return None
    quotas = dict(AWS_QUOTAS)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        burst, _, rate = value.partition("/")
        if name.strip() not in AWS_QUOTAS:
            raise ValueError(f"LOCAL_SFN_QUOTAS: {name.strip()!r} is not one of {', '.join(AWS_QUOTAS)}")
        try:
            quota = Quota(float(burst), float(rate))
        except ValueError:
            raise ValueError(f"LOCAL_SFN_QUOTAS: {item!r} is not Operation=burst/rate") from None
        if quota.burst < 1 or quota.rate <= 0:
            raise ValueError(f"LOCAL_SFN_QUOTAS: {item!r} needs burst >= 1 and rate > 0")
        quotas[name.strip()] = quota
    return quotas


class StepFunctionsQuotas:
    """The account's buckets: one per throttled operation, whoever calls."""

    def __init__(self) -> None:
        self.quotas: dict[str, Quota] | None = dict(AWS_QUOTAS)
        self._buckets: dict[str, TokenBucket] = {}
        self._throttled: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.configure(self.quotas)

    def configure(self, quotas: dict[str, Quota] | None) -> None:
        self.quotas = quotas
        self._buckets = {name: TokenBucket(quota) for name, quota in (quotas or {}).items()}

    def admit(self, operation: str) -> None:
        bucket = self._buckets.get(operation)
        if bucket is not None and not bucket.take():
            with self._lock:
                self._throttled[operation] += 1
            raise ThrottlingException()

    def throttled(self) -> dict[str, int]:
        with self._lock:
            return dict(self._throttled)

    def reset(self) -> None:
        for bucket in self._buckets.values():
            bucket.refill()
        with self._lock:
            self._throttled.clear()

    def describe(self) -> str:
        if self.quotas is None:
            return "Step Functions quotas off"
        if self.quotas == AWS_QUOTAS:
            return f"Step Functions quotas ({REGION_FIGURES})"
        custom = ", ".join(f"{name} {q.burst:g}/{q.rate:g}/s" for name, q in self.quotas.items())
        return f"Step Functions quotas ({custom})"


def _throttled_by_quota(operation: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    def answer(self: Any, *args: Any, **kwargs: Any) -> Any:
        quotas.admit(operation)
        return handler(self, *args, **kwargs)

    answer.__name__ = answer.__qualname__ = handler.__name__
    answer.__wrapped__ = handler  # type: ignore[attr-defined]
    answer.__wrapped_by_local_mode__ = True  # type: ignore[attr-defined]
    return answer


# --- Lambda concurrency ----------------------------------------------------------------------------


class LambdaConcurrency:
    """Running invocations per function, against the account's limit and each reservation."""

    def __init__(self) -> None:
        self.limit = AWS_LAMBDA_CONCURRENCY  # 0: unlimited
        self._reserved: dict[str, int] = {}
        self._running: Counter[str] = Counter()
        self._throttles: Counter[str] = Counter()
        self._lock = threading.Lock()

    def reserve(self, function: str, reserved: Any) -> None:
        """A function's ReservedConcurrentExecutions, resolved (None: no reservation)."""
        with self._lock:
            if reserved is None:
                self._reserved.pop(function, None)
            else:
                self._reserved[function] = int(reserved)

    def forget(self, function: str) -> None:
        self.reserve(function, None)

    def _refusal(self, function: str) -> str | None:
        reserved = self._reserved.get(function)
        if reserved is not None:
            return "ReservedFunctionConcurrentInvocationLimitExceeded" if self._running[function] >= reserved else None
        if self.limit == 0:
            return None
        unreserved = self.limit - sum(self._reserved.values())
        shared = sum(n for name, n in self._running.items() if name not in self._reserved)
        return "ConcurrentInvocationLimitExceeded" if shared >= unreserved else None

    @contextmanager
    def invocation(self, function: str) -> Iterator[None]:
        """Holds one of ``function``'s slots while the block runs; raises LambdaThrottled if none is free."""
        with self._lock:
            reason = self._refusal(function)
            if reason is not None:
                self._throttles[function] += 1
                raise LambdaThrottled(function, reason)
            self._running[function] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[function] -= 1

    def reserved(self) -> dict[str, int]:
        with self._lock:
            return dict(self._reserved)

    def running(self) -> dict[str, int]:
        with self._lock:
            return {name: n for name, n in self._running.items() if n}

    def throttles(self) -> dict[str, int]:
        with self._lock:
            return dict(self._throttles)

    def reset(self) -> None:
        with self._lock:
            self._throttles.clear()

    def describe(self) -> str:
        return "Lambda concurrency unlimited" if self.limit == 0 else f"Lambda concurrency {self.limit}"


# --- EventBridge delivery ---------------------------------------------------------------------------


def _losses(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - a loss a test can replay, not a secret


class EventBridgeDelivery:
    """Delivers each status-change event to its targets after the delay, or loses it.

    One scheduler thread keeps the due times; each event's targets then run on threads of their
    own, so a slow target delays no other event. A target throttled by Lambda's concurrency is
    tried again as Lambda's asynchronous queue would."""

    def __init__(self) -> None:
        self.delay_s = AWS_EVENTBRIDGE_DELAY_MS / 1000
        self.loss, self.seed = 0.0, 0
        self._random = _losses(0)
        self._lose_next = self._duplicate_next = self._hold_next = 0
        self._held: list[Sequence[Callable[[], None]]] = []
        self._delivered = self._dropped = self._given_up = 0
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._scheduler: threading.Thread | None = None

    def configure(self, delay_ms: float, loss: float, seed: int) -> None:
        with self._wake:
            self.delay_s, self.loss, self.seed = delay_ms / 1000, loss, seed
            self._random = _losses(seed)

    def lose_next(self, n: int = 1) -> None:
        """The next ``n`` events are lost, as a best-effort delivery may lose one."""
        with self._wake:
            self._lose_next += n

    def duplicate_next(self, n: int = 1) -> None:
        """The next ``n`` events are delivered twice, the copy one delay after the first: EventBridge
        delivers at least once."""
        with self._wake:
            self._duplicate_next += n

    def hold_next(self, n: int = 1) -> None:
        """The next ``n`` events are held back until ``release_held``: a delivery that comes late,
        after a newer event of the same run (out of order)."""
        with self._wake:
            self._hold_next += n

    def held(self) -> int:
        """Events held back now (``hold_next``), not yet released."""
        with self._wake:
            return len(self._held)

    def release_held(self) -> int:
        """Deliver the held events now, oldest first; answers how many there were."""
        with self._wake:
            held, self._held = self._held, []
        for targets in held:
            self._deliver(targets)
        return len(held)

    def delivered(self) -> int:
        return self._delivered

    def dropped(self) -> int:
        return self._dropped

    def given_up(self) -> int:
        """Events a target failed on until Lambda gave them up (to the on-failure destination)."""
        return self._given_up

    def reset(self) -> None:
        with self._wake:
            self._lose_next = self._duplicate_next = self._hold_next = 0
            self._delivered = self._dropped = self._given_up = 0
            self._held.clear()
            self._random = _losses(self.seed)

    def drop_pending(self) -> None:
        """Forget the deliveries not yet due: their stack is stopping, and its functions with it
        (delivered later, a target would run in an environment that no longer has its settings)."""
        with self._wake:
            self._due.clear()
            self._held.clear()

    def publish(self, targets: Sequence[Callable[[], None]]) -> None:
        """One event for ``targets`` (each invokes one rule's target with it); returns at once."""
        with self._wake:
            lost = self._lose_next > 0 or (self.loss > 0 and self._random.random() < self.loss)
            if lost:
                self._lose_next = max(0, self._lose_next - 1)
                self._dropped += 1
                return
            if self._hold_next > 0:
                self._hold_next -= 1
                self._held.append(targets)
                return
            copies = 2 if self._duplicate_next > 0 else 1
            self._duplicate_next = max(0, self._duplicate_next - 1)
        for copy in range(1, copies + 1):
            self._at(time.monotonic() + copy * self.delay_s, lambda: self._deliver(targets))

    def _deliver(self, targets: Sequence[Callable[[], None]]) -> None:
        with self._wake:
            self._delivered += 1
        for target in targets:
            self._attempt(target, first=time.monotonic(), wait_s=ASYNC_RETRY_FIRST_S)

    def _attempt(self, target: Callable[[], None], first: float, wait_s: float, failures: int = 0) -> None:
        def run() -> None:
            try:
                target()
            except LambdaThrottled:
                if time.monotonic() + wait_s - first <= ASYNC_RETRY_FOR_S:
                    retry = min(wait_s * 2, ASYNC_RETRY_MAX_S)
                    self._at(time.monotonic() + wait_s, lambda: self._attempt(target, first, retry, failures))
            except TargetFailed as failed:
                if failures < len(ASYNC_ERROR_WAITS_S):
                    again = time.monotonic() + ASYNC_ERROR_WAITS_S[failures]
                    self._at(again, lambda: self._attempt(target, first, wait_s, failures + 1))
                    return
                dead_letters.keep(failed.function_name, failed.function_arn, failed.event, failed.error, failures + 1)
                with self._wake:  # counted once it is in the queue: a test that sees the count finds it there
                    self._given_up += 1

        threading.Thread(target=run, name="eventbridge", daemon=True).start()

    def _at(self, due: float, action: Callable[[], None]) -> None:
        if due <= time.monotonic():
            action()
            return
        with self._wake:
            heapq.heappush(self._due, (due, next(self._order), action))
            if self._scheduler is None:
                self._scheduler = threading.Thread(target=self._run, name="eventbridge-scheduler", daemon=True)
                self._scheduler.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(None if not self._due else self._due[0][0] - time.monotonic())
                _, _, action = heapq.heappop(self._due)
            action()  # starts threads only: the next due event is not held up

    def describe(self) -> str:
        text = f"EventBridge delay {self.delay_s * 1000:.0f} ms"
        return text + (f", EventBridge loss {self.loss:.0%} (seed {self.seed})" if self.loss else "")


# --- the account: one of each, and the controls -------------------------------------------------

quotas = StepFunctionsQuotas()
lambdas = LambdaConcurrency()
eventbridge = EventBridgeDelivery()


def _number(environ: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name}: {raw!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: {raw!r} is not between {low:g} and {high:g}")
    return value


def configure(environ: Mapping[str, str] | None = None) -> None:
    """Read the settings (``os.environ`` by default): a bad value stops local mode with its name."""
    env = os.environ if environ is None else environ
    quotas.configure(parse_quotas(env.get("LOCAL_SFN_QUOTAS")))
    concurrency = _number(env, "LOCAL_LAMBDA_CONCURRENCY", AWS_LAMBDA_CONCURRENCY, 0, float("inf"))
    if concurrency != int(concurrency):
        raise ValueError(f"LOCAL_LAMBDA_CONCURRENCY: {concurrency} is not a whole number")
    lambdas.limit = int(concurrency)
    eventbridge.configure(
        _number(env, "LOCAL_EVENTBRIDGE_DELAY_MS", AWS_EVENTBRIDGE_DELAY_MS, 0, 3_600_000),
        _number(env, "LOCAL_EVENTBRIDGE_LOSS", 0.0, 0.0, 1.0),
        int(_number(env, "LOCAL_EVENTBRIDGE_SEED", 0, -(2**63), 2**63)),
    )


def throttled() -> dict[str, int]:
    """Step Functions calls throttled since the last reset, by operation."""
    return quotas.throttled()


def lambda_throttles() -> dict[str, int]:
    """Lambda invocations throttled since the last reset, by function name."""
    return lambdas.throttles()


def reset() -> None:
    """A fresh account: full buckets, counters at zero, no events set to be lost."""
    quotas.reset()
    lambdas.reset()
    eventbridge.reset()


def describe() -> str:
    """What is on, in one line: the local server prints it at start."""
    return f"AWS limits: {quotas.describe()}, {lambdas.describe()}, {eventbridge.describe()}"


# --- hooks into moto ------------------------------------------------------------------------------


def _lambda_errors_named_by_step_functions(from_error: Callable[..., Any]) -> Callable[..., Any]:
    """Step Functions names an error of the Lambda service ``Lambda.<code>`` (the demo ASL retries
    ``Lambda.TooManyRequestsException``); moto names every one of them ``Exception``."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    def named(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, ClientError):
            return from_error(self, env, ex)
        error = ex.response["Error"]
        name = f"Lambda.{error.get('Code', 'Unknown')}"
        status = ex.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        cause = f"{error.get('Message', '')} (Service: Lambda, Status Code: {status}, Request ID: {uuid.uuid4()})"
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(name),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]  # total=True, yet one kind is set
                lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=name, cause=cause)
            ),
        )

    named.__wrapped_by_local_mode__ = True  # type: ignore[attr-defined]
    return named


def install() -> None:
    """Put the quotas in front of moto's Step Functions answers and read the settings. Called at
    each start, after ``execution_history.install`` (which replaces GetExecutionHistory's answer)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
    from moto.stepfunctions.responses import StepFunctionResponse

    for operation, name in _HANDLERS.items():
        handler = getattr(StepFunctionResponse, name)
        if not getattr(handler, "__wrapped_by_local_mode__", False):
            setattr(StepFunctionResponse, name, _throttled_by_quota(operation, handler))
    if not getattr(StateTaskLambda._from_error, "__wrapped_by_local_mode__", False):
        StateTaskLambda._from_error = _lambda_errors_named_by_step_functions(StateTaskLambda._from_error)  # type: ignore[method-assign]
    configure()
