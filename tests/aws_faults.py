"""Faults injected at the boto3 client, the edge where AWS would produce them.

``ThrottlingClient`` wraps one client and throttles one operation (the integration tests').

``FaultLayer`` is botocore event hooks on the service's own botocore session
(``workflow_api.adapters.aws.botocore_session``), so every client the service builds after it is
installed passes through it, whatever adapter built it. It names each call by its *call site*
(the operation, and the adapter method the service called: ``PutItem`` of
``IdempotencyStore.claim_first`` is another site than ``PutItem`` of ``RunRecords.put``) and, while
a ``FaultPlan`` is active, gives the planned calls their fault, as AWS or the network would:

- ``throttle``: AWS's own refusal (HTTP 400 ``ThrottlingException``, DynamoDB's
  ``ProvisionedThroughputExceededException``); AWS did nothing.
- ``5xx``: ``InternalServerError`` (500) or ``ServiceUnavailable`` (503); AWS did nothing.
- ``timeout``: ``ReadTimeoutError`` after AWS did the work: the answer is lost, botocore tries
  again (a conditional write then meets its own earlier write).
- ``connect-timeout``: ``ConnectTimeoutError``; the request never reached AWS.
- ``stall``: the call takes as long as its client's timeouts and retries allow, then succeeds.
- ``crash``: the process dies right after the call returned (``ProcessDied``, a BaseException
  nothing in the service catches).

Each attempt that fails takes the time it would (a timeout its timeout, botocore's backoff its
pause) on the plan's clock, not in real time. The faults are answers botocore parses and retries
as AWS's own (standard retry mode, the clients' real configs): the service sees what it would see.
Local mode's moto is reached through the layer (moto's own hook is moved behind it), so a fault
that AWS would not have acted on never reaches moto.
"""

import itertools
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from io import BytesIO
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import botocore.endpoint
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError


class ThrottlingClient:
    """A boto3 client whose named operation is throttled for its first ``times`` calls, and
    then on every ``every``-th call (0: never again)."""

    def __init__(self, client: Any, operation: str, times: int, every: int = 0) -> None:
        self._client, self._operation, self.left, self.every = client, operation, times, every
        self.calls: list[float] = []  # when each call of the operation was made, throttled or not
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name != self._operation:
            return real

        def throttled(**kwargs: Any) -> Any:
            with self._lock:
                self.calls.append(time.monotonic())
                throttle = self.left > 0 or (self.every > 0 and len(self.calls) % self.every == 0)
                self.left = max(0, self.left - 1)
            if throttle:
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, name)
            return real(**kwargs)

        return throttled


# --- the fault layer --------------------------------------------------------------------------------


class Kind(StrEnum):
    THROTTLE = "throttle"
    SERVER_ERROR = "5xx"
    TIMEOUT = "timeout"
    CONNECT_TIMEOUT = "connect-timeout"
    STALL = "stall"
    CRASH = "crash"


# The kinds that fail attempts (botocore may try again); STALL and CRASH act on the whole call.
ATTEMPT_KINDS = frozenset({Kind.THROTTLE, Kind.SERVER_ERROR, Kind.TIMEOUT, Kind.CONNECT_TIMEOUT})
EVERY_ATTEMPT = 99


class ProcessDied(BaseException):
    """The Lambda's process died here: nothing in the service catches it, nothing after it runs."""


@dataclass(frozen=True)
class Fault:
    site: str  # a call site's name (``Site.name``), e.g. "StartExecution" or "PutItem-key-claim"
    kind: Kind
    nth: int = 1  # the first call of the site it hits, counted from when the plan armed it
    calls: int = 1  # how many calls of the site in a row from there
    # How many attempts of each such call fail; by default every one (the call fails, whatever
    # botocore retries), but for a timeout one: an answer lost once, and botocore's retry goes out.
    attempts: int | None = None
    code: str | None = None  # the error code, when not the service's usual one

    @property
    def failed_attempts(self) -> int:
        if self.attempts is not None:
            return self.attempts
        return 1 if self.kind is Kind.TIMEOUT else EVERY_ATTEMPT

    def __str__(self) -> str:
        at = "" if self.nth == 1 and self.calls == 1 else f"#{self.nth}" + (f"x{self.calls}" if self.calls > 1 else "")
        tries = ""
        if self.kind in ATTEMPT_KINDS and self.attempts is not None:
            tries = "/every-try" if self.attempts >= EVERY_ATTEMPT else f"/{self.attempts}-try"
        code = f":{self.code}" if self.code else ""
        return f"{self.site}{at}-{self.kind}{tries}{code}"


# Short names of the call sites, by (operation, the adapter method the service called).
SITE_NAMES = {
    ("PutItem", "IdempotencyStore.claim_first"): "PutItem-key-claim",
    ("PutItem", "IdempotencyStore.take_over"): "PutItem-key-takeover",
    ("PutItem", "IdempotencyStore.claim_next"): "PutItem-key-next",
    ("PutItem", "IdempotencyStore.mark_started"): "PutItem-key-started",
    ("PutItem", "IdempotencyStore.release"): "PutItem-key-release",
    ("PutItem", "RunRecords.put"): "PutItem-run",
    ("GetItem", "RunRecords.get"): "GetItem-run",
    ("PutItem", "RunSignals.record"): "PutItem-status",
    ("GetItem", "RunSignals.ended"): "GetItem-status",
    ("StartExecution", "StepFunctionsGateway.start_or_find"): "StartExecution",
    ("DescribeExecution", "StepFunctionsGateway.status_of"): "DescribeExecution-status",
    ("DescribeExecution", "StepFunctionsGateway.end_of"): "DescribeExecution-end",
    ("DescribeExecution", "StepFunctionsGateway.describe"): "DescribeExecution-lifecycle",
    ("GetExecutionHistory", "StepFunctionsGateway.read_new_events"): "GetExecutionHistory",
    ("DescribeStateMachine", "StepFunctionsGateway.task_refs"): "DescribeStateMachine",
    ("GetResources", "WorkflowTags.state_machines"): "GetResources",
}

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"


@dataclass(frozen=True)
class Site:
    """Where a call comes from: ``operation`` of ``entry`` (the adapter method the service
    called), made by ``code`` (the adapter function that calls botocore), for ``caller`` (the
    service's line that called the adapter, ``module.function:line``), on a waiting call's client
    (tried once) or not."""

    operation: str
    entry: str
    code: str
    caller: str
    waiting: bool

    @property
    def name(self) -> str:
        base = SITE_NAMES.get((self.operation, self.entry), f"{self.operation}-{self.entry}")
        # The same read made by a waiting call (tried once, its own client) is another site.
        return f"{base}-wait" if self.waiting and self.operation == "GetExecutionHistory" else base


def site_of(operation: str, frame: FrameType | None, config: Config) -> Site:
    """The call site of the botocore call whose frames are ``frame`` and outward."""
    adapters: list[str] = []
    caller = ""
    while frame is not None:
        path = frame.f_code.co_filename
        if "/workflow_api/adapters/" in path and path.startswith(str(FUNCTIONS)):
            adapters.append(frame.f_code.co_qualname)
        elif adapters and path.startswith(str(FUNCTIONS)):
            caller = f"{Path(path).stem}.{frame.f_code.co_qualname}:{frame.f_lineno}"
            break
        frame = frame.f_back
    waiting = (config.retries or {}).get("total_max_attempts") == 1
    if not adapters:
        return Site(operation, "", "", "", waiting)
    return Site(operation, adapters[-1], adapters[0], caller, waiting)


def worst_call_seconds(config: Config) -> float:
    """How long a call of a client with ``config`` takes at worst: each attempt stalls to both
    timeouts, with at most 2 s of backoff before each retry (adapters/aws.py, CALL_WORST_SECONDS)."""
    attempts = (config.retries or {}).get("total_max_attempts", 1)
    return float(attempts * (config.connect_timeout + config.read_timeout) + 2 * (attempts - 1))


class FaultClock:
    """The service's clocks, which a stall moves on at once: real time plus ``skew`` seconds.
    ``sleep`` really sleeps (Step Functions runs the workflow meanwhile, in real time)."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skew

    def wall(self) -> float:
        return time.time() + self.skew

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def stall(self, seconds: float) -> None:
        self.skew += seconds


@dataclass(frozen=True)
class Fired:
    fault: Fault
    site: Site
    at_call: int  # which call of the site it hit


@dataclass
class CallRecord:
    """One call the plan saw: its site, the phase, its thread, when it began (epoch s) and
    whether AWS answered it (2xx)."""

    site: Site
    phase: str
    delivery: int
    on_case_thread: bool
    params: dict[str, Any]
    began: float
    ok: bool | None = None


@dataclass
class _Call:
    record: CallRecord
    fault: Fault | None
    config: Config
    failed_attempts: int = 0


@dataclass
class FaultPlan:
    """What one case's calls were, and the faults they get while ``armed`` ones are set. Calls are
    the case's own when made on the case's thread, or (run_status, on EventBridge's threads) when
    they name one of the executions the case started."""

    clock: FaultClock
    phase: str = "prepare"  # a label the case's calls are recorded with
    delivery: int = 0  # which delivery of the request the case's calls now belong to
    armed: tuple[Fault, ...] = ()
    calls: list[CallRecord] = field(default_factory=list)
    fired: list[Fired] = field(default_factory=list)
    executions: dict[str, str] = field(default_factory=dict)  # execution name -> state machine ARN
    thread: int = field(default_factory=threading.get_ident)
    _counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, faults: tuple[Fault, ...]) -> None:
        """From now on, the calls of ``faults``' sites get them (counting the calls from here)."""
        with self._lock:
            self.armed, self._counts = faults, Counter()

    def on_case_thread(self) -> bool:
        return threading.get_ident() == self.thread

    def owns(self, params: dict[str, Any]) -> bool:
        if self.on_case_thread():
            return True
        text = json.dumps(params, default=str)
        return any(name in text for name in list(self.executions))

    def begin(self, site: Site, params: dict[str, Any], config: Config) -> _Call | None:
        if not self.owns(params):
            return None
        record = CallRecord(site, self.phase, self.delivery, self.on_case_thread(), params, time.time())
        with self._lock:
            self.calls.append(record)
            if site.operation == "StartExecution":
                self.executions.setdefault(params["name"], params["stateMachineArn"])
            self._counts[site.name] += 1
            nth = self._counts[site.name]
            armed = self.armed
        fault = next((f for f in armed if f.site == site.name and f.nth <= nth < f.nth + f.calls), None)
        if fault is not None and not record.on_case_thread and fault.kind in (Kind.STALL, Kind.CRASH):
            fault = None  # another thread's call (run_status): it neither moves the case's clock nor kills it
        return _Call(record, fault, config)

    def fire(self, call: _Call) -> None:
        assert call.fault is not None
        with self._lock:
            self.fired.append(Fired(call.fault, call.record.site, self._counts[call.record.site.name]))

    def missed(self, faults: tuple[Fault, ...]) -> list[Fault]:
        """Those of ``faults`` that hit no call: the case never reached their site."""
        hit = {fired.fault for fired in self.fired}
        return [fault for fault in faults if fault not in hit]

    def count(self, site_name: str, phase: str) -> int:
        return sum(1 for call in self.calls if call.site.name == site_name and call.phase == phase)


class _RawBody(BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.read()


def _error(request: Any, status: int, code: str, message: str) -> AWSResponse:
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault-layer"}
    return AWSResponse(request.url, status, headers, _RawBody(body))


def _service(request: Any) -> str:
    return "dynamodb" if "dynamodb" in request.url else "other"


class FaultLayer:
    """Hooks on one botocore session; inert (calls go straight to ``aws``) while no plan is active.

    ``aws`` answers a request as AWS would: local mode's moto stubber, which the layer moves from
    the session's hooks to behind its own, so a request the layer refuses never reaches moto."""

    _ids = itertools.count()

    def __init__(self, session: Any, aws: Callable[..., Any]) -> None:
        self.session, self.aws = session, aws
        self.plan: FaultPlan | None = None
        self._local = threading.local()
        self._id = f"tests.aws_faults.{next(self._ids)}"
        self._real_time = botocore.endpoint.time

    # --- installing -------------------------------------------------------------------------

    def install(self) -> "FaultLayer":
        self.session.unregister("before-send", self.aws)
        self.session.register("before-send", self._before_send, unique_id=f"{self._id}.send")
        self.session.register("before-parameter-build", self._before_call, unique_id=f"{self._id}.call")
        self.session.register("after-call", self._after_call, unique_id=f"{self._id}.after")
        self.session.register("after-call-error", self._after_error, unique_id=f"{self._id}.error")
        # botocore's pause between attempts: on the plan's clock for the case's own calls.
        botocore.endpoint.time = _BackoffTime(self)  # type: ignore[assignment]
        return self

    def uninstall(self) -> None:
        botocore.endpoint.time = self._real_time
        for event, suffix in (
            ("before-send", "send"),
            ("before-parameter-build", "call"),
            ("after-call", "after"),
            ("after-call-error", "error"),
        ):
            self.session.unregister(event, unique_id=f"{self._id}.{suffix}")
        self.session.register("before-send", self.aws)

    @contextmanager
    def active(self, plan: FaultPlan) -> Iterator[FaultPlan]:
        before, self.plan = self.plan, plan
        try:
            yield plan
        finally:
            self.plan = before

    # --- the hooks ----------------------------------------------------------------------------

    def _before_call(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        self._local.call = None
        plan = self.plan
        if plan is None:
            return
        config: Config = context["client_config"]
        call = plan.begin(site_of(model.name, sys._getframe(1), config), params, config)
        self._local.call = call
        if call is not None and call.fault is not None and call.fault.kind is Kind.STALL:
            plan.fire(call)
            plan.clock.stall(worst_call_seconds(config))

    def _before_send(self, request: Any, event_name: str, **_: Any) -> Any:
        call: _Call | None = getattr(self._local, "call", None)
        plan = self.plan
        fault = call.fault if call is not None else None
        if call is None or plan is None or fault is None or fault.kind not in ATTEMPT_KINDS:
            return self.aws(event_name=event_name, request=request)
        if call.failed_attempts >= fault.failed_attempts:
            return self.aws(event_name=event_name, request=request)
        if call.failed_attempts == 0:
            plan.fire(call)
        call.failed_attempts += 1
        on_case = call.record.on_case_thread
        if fault.kind is Kind.THROTTLE:
            default = (
                "ProvisionedThroughputExceededException" if _service(request) == "dynamodb" else "ThrottlingException"
            )
            return _error(request, 400, fault.code or default, "Rate exceeded")
        if fault.kind is Kind.SERVER_ERROR:
            code = fault.code or ("InternalServerError" if _service(request) == "dynamodb" else "ServiceUnavailable")
            return _error(request, 500 if code == "InternalServerError" else 503, code, "We encountered an error")
        if fault.kind is Kind.TIMEOUT:
            answer = self.aws(event_name=event_name, request=request)  # AWS does the work; its answer is lost
            if on_case:
                plan.clock.stall(call.config.read_timeout)
            if call.record.site.operation == "StartExecution":
                _run_goes_on(answer, call.config.read_timeout)
            raise ReadTimeoutError(endpoint_url=request.url)
        if on_case:
            plan.clock.stall(call.config.connect_timeout)
        raise ConnectTimeoutError(endpoint_url=request.url)

    def _after_call(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        call: _Call | None = getattr(self._local, "call", None)
        self._local.call = None
        if call is None or self.plan is None:
            return
        call.record.ok = http_response is not None and 200 <= http_response.status_code < 300
        if call.fault is not None and call.fault.kind is Kind.CRASH:
            self.plan.fire(call)
            raise ProcessDied(f"the process died after {call.record.site.name}")

    def _after_error(self, **_: Any) -> None:
        call: _Call | None = getattr(self._local, "call", None)
        self._local.call = None
        if call is not None:
            call.record.ok = False


def _run_goes_on(answer: Any, seconds: float) -> None:
    """While a started run's answer is lost, the run goes on for the read timeout's ``seconds``
    (only the caller's clock moves at once): a run shorter than that has ended when botocore's
    retry comes, which then meets a closed execution of its name (ExecutionAlreadyExists), as on
    AWS. Waits in real time until the run has ended, at most ``seconds``."""
    if answer is None or answer.status_code != 200:
        return
    arn = json.loads(answer.content)["executionArn"]
    client = boto3.client("stepfunctions")
    deadline = time.monotonic() + seconds
    while client.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.01)


class _BackoffTime:
    """``time`` as botocore's endpoint sees it: its pause before a retry is taken on the plan's
    clock when the call is the case's own, in real time otherwise."""

    def __init__(self, layer: FaultLayer) -> None:
        self._layer = layer

    def sleep(self, seconds: float) -> None:
        plan = self._layer.plan
        if plan is not None and plan.on_case_thread():
            plan.clock.stall(seconds)
        else:
            time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)
