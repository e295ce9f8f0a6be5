"""The fault suite's world: the API as API Gateway invokes it, the requests a caller makes (and
retries as a careful client does), and what a correct answer is.

A case prepares what its request needs (fault-free), arms its faults (tests/aws_faults.py) and its
EventBridge disturbances, sends the request, and retries it as the caller would: after a 503, once
its Retry-After has passed; after the process died (API Gateway's 502), at once; after a 409 that
names a run not started yet (its starter died), once the key's lease has run out. Each delivery
is a cold start: a new service, new clients, new catalog. Then, fault-free, it checks what a user
would: every answer was right (the right status, or a 503 with Retry-After; never a 500, never
RUNNING for a run that had ended before the call last asked Step Functions, never after API
Gateway's 29 s), every answer named the same run, no run was started twice (Step Functions'
executions, counted), and every run's end can still be read (GET, a replay of the request, the
item run_status writes): no end is lost.

"Started twice" is per request with a key (however often it is sent), per try without one (each
try is a new request: only a key makes a retry safe). FAIL_ON_RUNNING starts the key's next run
once its run has ended, for a retry too (nothing tells a retry from a new request): for it,
started twice means two runs of the key at once.
"""

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.exceptions import ClientError

from local_mode.gateway import Router, proxy_event
from local_mode.lambda_runtime import LambdaContext
from tests.aws_faults import Fault, FaultClock, FaultLayer, FaultPlan, Kind, ProcessDied
from tests.conftest import wait_until
from workflow_api.adapters.aws import forget_clients
from workflow_api.config import Settings
from workflow_api.observability import metrics
from workflow_api.wiring import build_lifecycle, build_service

# API Gateway's REST integration timeout: an answer later than this is the caller's 504.
GATEWAY_SECONDS = 29.0
# The Lambda's own timeout (template.yaml's API function: 35 s); API Gateway's is the one that binds.
LAMBDA_SECONDS = 35.0
WAIT_SECONDS = 5
MAX_DELIVERIES = 6
# A lost end costs a waiting call 0.5 s before DescribeExecution is asked, not 15 s (test time).
SETTINGS = {"END_CHECK_SECONDS": "0.5"}
# SPEC's status mapping, written out here so that the oracle does not share the service's code.
STATUS = {
    "SUCCEEDED": "COMPLETED",
    "FAILED": "FAILED",
    "TIMED_OUT": "TIMED_OUT",
    "ABORTED": "TERMINATED",
    "RUNNING": "RUNNING",
    "PENDING_REDRIVE": "FAILED",
}
TERMINAL = frozenset({"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"})
# A Step Functions read that began this long after the run's stop date saw the end (moto's clock).
READ_SLACK_S = 0.005


@dataclass(frozen=True)
class Request:
    what: str  # "execute", "start" or "get"
    method: str
    path: str
    body: Any = None
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    def target(self) -> str:
        return self.path + (f"?{urlencode(self.query)}" if self.query else "")


@dataclass(frozen=True)
class Expect:
    """What the caller of a path may be answered."""

    keyed: bool = False
    strategy: str | None = None
    new_runs: int = 1  # runs the request may start (0: it names a run that exists already)
    key_new: bool = True  # the key had no record before the request: its first answer is no replay
    output: dict[str, Any] | None = None  # the run's output once COMPLETED
    workflow_id: str | None = None  # the run the answer must name, when known before the request
    replay: bool = False  # a fault-free replay of the request must answer the run's end (RETURN_EXISTING)


@dataclass
class Reply:
    delivery: int
    status: int  # 502: the process died, as API Gateway answers then
    headers: dict[str, str]
    body: Any
    began: float  # epoch seconds
    late: bool  # after API Gateway's 29 s: the caller got a 504, not this

    @property
    def workflow_id(self) -> str | None:
        if isinstance(self.body, dict):
            found = self.body.get("workflowId")
            return found if isinstance(found, str) else None
        return self.body if self.status == 200 and isinstance(self.body, str) and self.body else None

    def __str__(self) -> str:
        text = json.dumps(self.body)[:300] if not isinstance(self.body, str) else self.body[:300]
        return f"delivery {self.delivery}: {self.status} {text}"


@dataclass(frozen=True)
class Case:
    path: str
    faults: tuple[Fault, ...] = ()
    events: tuple[str, ...] = ()  # EventBridge: "lost", "duplicate", "late" (the request's run's end)
    label: str = ""  # a prefix of the case's id (the chaos cases' number)
    known_bug: str = ""  # why the case fails today (matrix.KNOWN_BUGS): it is marked xfail

    def __str__(self) -> str:
        parts = [str(fault) for fault in self.faults] + [f"EventBridge-{kind}" for kind in self.events]
        return f"{self.label}{'+'.join(parts) or 'no-fault'}-{self.path}"


@dataclass
class Outcome:
    case: Case
    replies: list[Reply]
    wrong: list[str]
    duplicate_runs: int
    lost_ends: list[str]
    missed: list[str]
    plan: FaultPlan

    def report(self) -> str:
        lines = [f"case {self.case}", *map(str, self.replies)]
        lines += [f"WRONG: {w}" for w in self.wrong] + [f"LOST END: {e}" for e in self.lost_ends]
        if self.duplicate_runs:
            lines.append(f"DUPLICATE RUNS: {self.duplicate_runs}")
        lines += [f"fired: {f.fault} at {f.site.name} call {f.at_call} ({f.site.caller})" for f in self.plan.fired]
        return "\n".join(lines)


@dataclass
class Tally:
    """What the session's fault cases did: the summary line quotes it."""

    cases: int = 0
    deliveries: int = 0
    faults_fired: int = 0
    events_disturbed: int = 0
    sites: set[str] = field(default_factory=set)
    code_paths: set[tuple[str, str]] = field(default_factory=set)
    answers: Counter[int] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    wrong_in_known_bugs: int = 0
    duplicate_runs: int = 0
    lost_ends: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)

    def add(self, outcome: Outcome, events_disturbed: int) -> None:
        self.cases += 1
        self.deliveries += len(outcome.replies)
        self.faults_fired += len(outcome.plan.fired)
        self.events_disturbed += events_disturbed
        for fired in outcome.plan.fired:
            self.sites.add(fired.site.name)
            self.code_paths.add((fired.site.name, fired.site.caller))
        self.answers.update(reply.status for reply in outcome.replies)
        self.wrong += [f"{outcome.case}: {w}" for w in outcome.wrong]
        self.wrong_in_known_bugs += len(outcome.wrong) if outcome.case.known_bug else 0
        self.duplicate_runs += outcome.duplicate_runs
        self.lost_ends += [f"{outcome.case}: {e}" for e in outcome.lost_ends]

    def summary(self) -> str:
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(self.answers.items()))
        seeds = f", chaos seed {', '.join(map(str, self.seeds))}" if self.seeds else ""
        known = f" ({self.wrong_in_known_bugs} in cases marked as known bugs)" if self.wrong_in_known_bugs else ""
        return (
            f"fault cases: {self.cases} ({self.faults_fired} AWS faults fired at {len(self.sites)} call sites,"
            f" reached from {len(self.code_paths)} lines of the service; {self.events_disturbed} EventBridge"
            f" events lost, duplicated or late{seeds}); {self.deliveries} requests answered ({answers});"
            f" wrong answers: {len(self.wrong)}{known}, duplicate runs: {self.duplicate_runs},"
            f" lost ends: {len(self.lost_ends)}"
        )


TALLY = Tally()


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """``condition()``'s first truthy value, polled until ``timeout`` seconds have passed."""
    return wait_until(condition, timeout, what)


class Api:
    """The API function as API Gateway invokes it: a copy of its handler module (app.py), whose
    service is built anew for each delivery (a cold start: new clients, a new catalog), on the
    case's clock, with API Gateway's 29 s as its time left."""

    def __init__(self, local_aws: Any) -> None:
        self._module = local_aws.api_function.load_module(prefix="_fault_suite")
        self._function = local_aws.api_function
        self._router = Router(local_aws.routes)
        for name in ("workflow_service", "workflow_lifecycle", "_remaining_seconds", "lambda_handler"):
            assert hasattr(self._module, name), f"app.py no longer has {name}: the fault suite drives the API by it"

    def send(self, request: Request, clock: FaultClock) -> tuple[int, dict[str, str], Any, bool]:
        forget_clients()
        config = Settings.from_environment({**os.environ, **SETTINGS})
        service = build_service(config, clock=clock, sleep=clock.sleep, wall_clock=clock.wall)
        lifecycle = build_lifecycle(config, service)
        due = clock() + GATEWAY_SECONDS
        module = self._module
        module.workflow_service = lambda: service
        module.workflow_lifecycle = lambda: lifecycle
        module._remaining_seconds = lambda: due - clock()
        matched = self._router.match(request.method, request.path)
        assert matched is not None, f"no route for {request.method} {request.path}"
        body = b"" if request.body is None else json.dumps(request.body).encode()
        headers = [("Content-Type", "application/json"), *request.headers]
        event = proxy_event(request.method, request.target(), headers, body, matched)
        context = LambdaContext(function_name=self._function.name, timeout_seconds=LAMBDA_SECONDS)
        try:
            response = module.lambda_handler(event, context)
        finally:
            # A Lambda container flushes its metrics after each invocation; with metrics off (local
            # mode) powertools keeps them, and these deliveries all run on one thread.
            metrics.clear_metrics()
        late = clock() > due
        found = {name.lower(): values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
        found.update({name.lower(): value for name, value in (response.get("headers") or {}).items()})
        text = response.get("body") or ""
        try:
            parsed: Any = json.loads(text) if "json" in found.get("content-type", "") else text
        except ValueError:
            parsed = text
        return int(response["statusCode"]), found, parsed, late


class World:
    """One case: its plan, its clock, its unique names, and Step Functions and DynamoDB as they are
    (boto3's own clients, outside the fault layer)."""

    def __init__(self, api: Api, layer: FaultLayer, plan: FaultPlan) -> None:
        self.api, self.layer, self.plan, self.clock = api, layer, plan, plan.clock
        self.uid = uuid.uuid4().hex[:12]
        self.began = time.time()
        self.key = f"fault-{self.uid}"
        self.name = f"Ada-{self.uid}"
        self.sfn = boto3.client("stepfunctions")
        self.dynamodb = boto3.client("dynamodb")
        config = Settings.from_environment()
        self.table, self.lease = config.idempotency_table_name, config.idempotency_lease_seconds

    # --- sending ----------------------------------------------------------------------------

    def send(self, request: Request) -> Reply:
        self.plan.delivery += 1
        began = time.time()
        try:
            status, headers, body, late = self.api.send(request, self.clock)
        except ProcessDied:
            return Reply(self.plan.delivery, 502, {}, {"message": "Internal server error"}, began, False)
        return Reply(self.plan.delivery, status, headers, body, began, late)

    def send_with_crash(self, request: Request, site: str) -> Reply:
        """``request``, its process dying right after its first call of ``site``."""
        self.plan.arm((Fault(site, Kind.CRASH),))
        try:
            reply = self.send(request)
        finally:
            self.plan.arm(())
        assert reply.status == 502, f"the crash after {site} did not happen: {reply}"
        return reply

    # --- what Step Functions says ---------------------------------------------------------------

    def arn_of(self, workflow_id: str | None) -> str | None:
        """The execution a workflowId names, if any call of the case started it."""
        if not workflow_id or workflow_id.count(".") < 2:
            return None
        name = workflow_id.split(".", 2)[2]
        machine = self.plan.executions.get(name)
        return None if machine is None else execution_arn(machine, name)

    def describe(self, arn: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
        return found

    def runs(self) -> dict[str, dict[str, Any]]:
        """The case's executions that exist, by ARN."""
        found = {}
        for name, machine in list(self.plan.executions.items()):
            arn = execution_arn(machine, name)
            described = self.describe(arn)
            if described is not None:
                found[arn] = described
        return found

    def listed(self) -> set[str]:
        """The names of the executions started since the case began on the state machines it ran,
        as Step Functions lists them (not as the fault layer saw the calls)."""
        names = set()
        for machine in set(self.plan.executions.values()):
            # Newest first, as AWS lists them: the first page that reaches back before the case is the last.
            for page in self.sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
                started = [(e["name"], e["startDate"].timestamp()) for e in page["executions"]]
                names |= {name for name, at in started if at >= self.began - 0.01}
                if any(at < self.began - 0.01 for _, at in started):
                    break
        return names

    def ended(self, arn: str, timeout: float = 30.0) -> dict[str, Any]:
        return wait_for(
            lambda: (d := self.describe(arn)) is not None and d["status"] != "RUNNING" and d, timeout, f"{arn} to end"
        )

    def item_end(self, arn: str) -> int | None:
        """The stop date (epoch ms) run_status's item holds for the run, if any."""
        item = self.dynamodb.get_item(TableName=self.table, Key={"pk": {"S": f"status#{arn}"}}, ConsistentRead=True)
        stop = item.get("Item", {}).get("stopDate", {}).get("N")
        return int(stop) if stop is not None else None

    def status_writes(self, arn: str) -> int:
        """run_status's writes of the run's end the case saw completed."""
        return sum(
            1
            for call in self.plan.calls
            if call.site.name == "PutItem-status" and call.ok is not None and arn in json.dumps(call.params)
        )


def execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def epoch_ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


# --- the requests ---------------------------------------------------------------------------------


def execute(
    world: World,
    workflow: str = "hello_world",
    workflow_input: dict[str, Any] | None = None,
    *,
    strategy: str | None = None,
    correlation: bool = True,
    wait: int = WAIT_SECONDS,
) -> Request:
    """Conductor's execute (``StartWorkflowRequest`` body), version 0: the latest."""
    body: dict[str, Any] = {"input": {"name": world.name} if workflow_input is None else workflow_input}
    if correlation:
        body["correlationId"] = f"order-{world.uid}"
    if strategy is not None:
        body |= {"idempotencyKey": world.key, "idempotencyStrategy": strategy}
    return Request("execute", "POST", f"/api/workflow/execute/{workflow}/0", body, (("waitForSeconds", str(wait)),))


def start(world: World, strategy: str, workflow: str = "hello_world", workflow_input: Any = None) -> Request:
    """Conductor's start without waiting (``POST /api/workflow``)."""
    body = {
        "name": workflow,
        "input": {"name": world.name} if workflow_input is None else workflow_input,
        "idempotencyKey": world.key,
        "idempotencyStrategy": strategy,
    }
    return Request("start", "POST", "/api/workflow", body)


def get(workflow_id: str) -> Request:
    return Request("get", "GET", f"/api/workflow/{workflow_id}")


def greeting(world: World) -> dict[str, Any]:
    return {"greeting": f"Hello, {world.name}!", "version": 2}
