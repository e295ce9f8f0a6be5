"""One fault case, end to end: prepare, disturb, ask (and retry as the caller would), then check
what a user would check, fault-free. See harness.py for the rules."""

import itertools
from typing import Any

from local_mode import limits
from tests.aws_faults import FaultClock, FaultLayer, FaultPlan
from tests.faults.harness import (
    GATEWAY_SECONDS,
    MAX_DELIVERIES,
    READ_SLACK_S,
    STATUS,
    TALLY,
    TERMINAL,
    Api,
    Case,
    Outcome,
    Reply,
    World,
    epoch_ms,
    get,
    wait_for,
)
from tests.faults.paths import PATHS, Prepared

SUCCESS = {"execute": (200, 206), "start": (200,), "get": (200,)}
# How long run_status's item is given to hold a run's end once the run has ended (~0.2 s it takes).
ITEM_WAIT_S = 2.0
SFN_READS = ("DescribeExecution", "GetExecutionHistory")


def run_case(case: Case, api: Api, layer: FaultLayer, *, tally: bool = True) -> Outcome:
    plan = FaultPlan(FaultClock())
    with layer.active(plan):
        world = World(api, layer, plan)
        prepared = PATHS[case.path](world)
        plan.phase, plan.delivery = "request", 0
        disturbed = _disturb_events(case)
        plan.arm(case.faults)
        replies, wrong = _converse(world, prepared, MAX_DELIVERIES + 2 * sum(f.calls for f in case.faults))
        plan.arm(())
        plan.phase = "verify"
        missed = [str(fault) for fault in plan.missed(case.faults)]
        missed += _events_missed(world, case, replies, disturbed)
        duplicates = _duplicate_runs(world, prepared)
        lost = _lost_ends(world, prepared, case, replies)
    outcome = Outcome(case, replies, wrong, duplicates, lost, missed, plan)
    if tally:
        TALLY.add(outcome, len(case.events))
    return outcome


# --- asking, as a careful caller does --------------------------------------------------------------


def _converse(world: World, prepared: Prepared, tries: int) -> tuple[list[Reply], list[str]]:
    """The caller's tries: each fault may cost one (and a key left held, its lease), then it has
    its answer; ``tries`` is more than enough once the faults are spent."""
    replies: list[Reply] = []
    wrong: list[str] = []
    for _ in range(tries):
        reply = world.send(prepared.request)
        replies.append(reply)
        wrong += [
            f"{reply} -> {why}" for why in _judge(world, prepared, reply, replies[-2] if len(replies) > 1 else None)
        ]
        pause = _next_try(world, reply)
        if pause is None:
            break
        world.clock.stall(pause)
    else:
        wrong.append(f"still no answer after {tries} tries: the request never converged")
    named = {reply.workflow_id for reply in replies if reply.status in (200, 206, 409) and reply.workflow_id}
    # (FAIL_ON_RUNNING may start the key's next run on a retry once the first has ended: _overlapping.)
    if prepared.expect.keyed and prepared.expect.strategy != "FAIL_ON_RUNNING" and len(named) > 1:
        wrong.append(f"the answers to one request with one key named {len(named)} runs: {sorted(named)}")
    return replies, wrong


def _next_try(world: World, reply: Reply) -> float | None:
    """When the caller tries again (seconds from now), or None: it has its answer."""
    if reply.status == 502:
        return 0.0  # the process died: API Gateway answered 502, the caller tries again at once
    if reply.status == 503:
        after = reply.headers.get("retry-after", "1")
        return float(after) if after.isdigit() else 1.0
    arn = world.arn_of(reply.workflow_id)
    if reply.status == 409 and (arn is None or world.describe(arn) is None):
        # The key is held by a call that died before starting the run: a retry once its lease is out.
        return world.lease + 1
    return None


def _judge(world: World, prepared: Prepared, reply: Reply, before: Reply | None) -> list[str]:
    """Why ``reply`` is not an answer this request may get (empty: it is); ``before`` is the
    answer to the try before it."""
    expect, request = prepared.expect, prepared.request
    wrong = []
    if reply.late:
        wrong.append(f"answered after API Gateway's {GATEWAY_SECONDS:g} s: the caller got a 504")
    if reply.status == 502:
        return wrong
    if reply.status == 503:
        after = reply.headers.get("retry-after", "")
        if not after.isdigit() or int(after) < 1:
            wrong.append("a 503 without a Retry-After")
        if not (isinstance(reply.body, dict) and reply.body.get("retryable") is True):
            wrong.append("a 503 whose body does not say retryable")
        return wrong
    if reply.status == 409:
        wrong += _judge_conflict(prepared, reply)
        arn = world.arn_of(reply.workflow_id)
        if before is not None and before.status == 503 and (arn is None or world.describe(arn) is None):
            # SPEC: a 503 leaves nothing half-done behind. The retry it asked for finds the key held.
            wrong.append("the 503 before it left the key held: its retry is refused for a run never started")
        return wrong
    if reply.status not in SUCCESS[request.what]:
        return [*wrong, f"a {reply.status} is no answer to this request"]
    workflow_id = reply.workflow_id
    if expect.workflow_id is not None and workflow_id != expect.workflow_id:
        wrong.append(f"names {workflow_id}, not the run {expect.workflow_id}")
    if prepared.not_workflow_id is not None and workflow_id == prepared.not_workflow_id:
        wrong.append(f"names the key's ended run {workflow_id}: FAIL_ON_RUNNING must start a new one")
    arn = world.arn_of(workflow_id)
    described = world.describe(arn) if arn else None
    if described is None:
        return [*wrong, f"names {workflow_id}, a run that was never started"]
    if not expect.keyed and request.what == "execute":
        started_here = {
            call.params.get("name")
            for call in world.plan.calls
            if call.phase == "request" and call.delivery == reply.delivery and call.site.operation == "StartExecution"
        }
        if arn.rsplit(":", 1)[1] not in started_here:
            wrong.append("a request without a key answered with a run this call did not start")
    replayed = reply.headers.get("x-idempotent-replayed") == "true"
    if replayed and not expect.keyed:
        wrong.append("answered as a replay, with no idempotency key")
    if replayed and expect.key_new and reply.delivery == 1:
        wrong.append("the first request with a new key answered as a replay")
    if request.what == "start":
        return wrong
    return wrong + _judge_run(world, prepared, reply, arn, described)


def _judge_conflict(prepared: Prepared, reply: Reply) -> list[str]:
    expect = prepared.expect
    if expect.strategy not in ("FAIL", "FAIL_ON_RUNNING"):
        return [f"a 409 for a request with strategy {expect.strategy}"]
    if reply.delivery == 1:
        # The key named no run this request may not start (a new key; or FAIL_ON_RUNNING's ended run).
        return ["a 409 on the request's first try: its own claim of the key taken for another caller's"]
    if not reply.workflow_id:
        return ["a 409 that names no workflowId"]
    if expect.workflow_id is not None and reply.workflow_id != expect.workflow_id:
        return [f"a 409 naming {reply.workflow_id}, not {expect.workflow_id}"]
    return []


def _judge_run(world: World, prepared: Prepared, reply: Reply, arn: str, described: dict[str, Any]) -> list[str]:
    """The run in the answer against the run as Step Functions has it."""
    body = reply.body if isinstance(reply.body, dict) else {}
    answered, actual = body.get("status"), STATUS[described["status"]]
    if reply.status == 200:
        if answered not in TERMINAL and prepared.request.what == "execute":
            return [f"a 200 with status {answered}"]
        if answered != actual:
            return [f"answered {answered}; the run is {actual}"]
        if (
            answered == "COMPLETED"
            and prepared.expect.output is not None
            and body.get("output") != prepared.expect.output
        ):
            return [f"output {body.get('output')}, not {prepared.expect.output}"]
        return []
    if answered != "RUNNING":
        return [f"a 206 with status {answered}"]
    stopped = described.get("stopDate")
    if stopped is not None:
        reads = [
            call.began
            for call in world.plan.calls
            if call.phase == "request"
            and call.delivery == reply.delivery
            and call.ok
            and call.site.operation in SFN_READS
            and call.params.get("executionArn") == arn
        ]
        known_by = max(reads, default=reply.began)  # what the call last heard from Step Functions
        if stopped.timestamp() < known_by - READ_SLACK_S:
            return [f"answered RUNNING; the run had ended {known_by - stopped.timestamp():.3f} s before it last asked"]
    return []


# --- EventBridge ---------------------------------------------------------------------------------


def _disturb_events(case: Case) -> dict[str, int]:
    before = {"dropped": limits.eventbridge.dropped()}
    for kind in case.events:
        if kind == "lost":
            limits.eventbridge.lose_next(1)
        elif kind == "duplicate":
            limits.eventbridge.duplicate_next(1)
        elif kind == "late":
            limits.eventbridge.hold_next(1)
        # "out-of-order": the path itself delivers an older end after a newer one
    return before


def _events_missed(world: World, case: Case, replies: list[Reply], before: dict[str, int]) -> list[str]:
    """The case's EventBridge faults that hit no event; the late ones are delivered now."""
    missed = []
    for arn in world.runs():
        world.ended(arn)  # its end is published (and disturbed) by now
    if "lost" in case.events and not _waited(lambda: limits.eventbridge.dropped() > before["dropped"]):
        missed.append("EventBridge-lost")
    if "late" in case.events:
        if not _waited(lambda: limits.eventbridge.held() > 0):
            missed.append("EventBridge-late")
        limits.eventbridge.release_held()  # late, not lost: it arrives now, after the answers
    if "duplicate" in case.events:
        arns = {world.arn_of(reply.workflow_id) for reply in replies if reply.workflow_id}
        twice = [arn for arn in arns if arn and _waited(lambda arn=arn: world.status_writes(arn) >= 2)]
        if not twice:
            missed.append("EventBridge-duplicate")
    return missed


def _waited(condition: Any, timeout: float = 2.0) -> bool:
    try:
        wait_for(condition, timeout, "a condition")
    except AssertionError:
        return False
    return True


# --- what is left once the faults are gone -------------------------------------------------------------


def _duplicate_runs(world: World, prepared: Prepared) -> int:
    """Runs started beyond what the request may start, counted in Step Functions: with a key, one
    for the request however often it was sent; without, one per try. (A run no call of the case
    was seen to start counts too: the fault layer must see every start.)"""
    prepared_names = {
        call.params["name"]
        for call in world.plan.calls
        if call.phase == "prepare" and call.site.operation == "StartExecution"
    }
    listed = world.listed()
    unseen = listed - set(world.plan.executions)
    new = listed - prepared_names - unseen
    if prepared.expect.strategy == "FAIL_ON_RUNNING":
        return len(unseen) + _overlapping(world, listed)
    if prepared.expect.keyed:
        return len(unseen) + max(0, len(new) - prepared.expect.new_runs)
    per_try: dict[int, set[str]] = {}
    for call in world.plan.calls:
        if call.phase == "request" and call.site.operation == "StartExecution" and call.params["name"] in new:
            per_try.setdefault(call.delivery, set()).add(call.params["name"])
    return len(unseen) + sum(max(0, len(names) - 1) for names in per_try.values())


def _overlapping(world: World, names: set[str]) -> int:
    """FAIL_ON_RUNNING starts the key's next run once its run has ended, a retry's as well (it
    cannot tell a retry from a new request): for it, started twice means two runs at once."""
    runs = world.runs()
    spans = sorted(
        (described["startDate"], described.get("stopDate"))
        for arn, described in runs.items()
        if arn.rsplit(":", 1)[1] in names
    )
    return sum(1 for (_, stop), (start, _) in itertools.pairwise(spans) if stop is None or start < stop)


def _lost_ends(world: World, prepared: Prepared, case: Case, replies: list[Reply]) -> list[str]:
    """Every run of the case, once it has ended: its end is in run_status's item (unless the case
    kept the event from it), a GET answers it, and a replay of a RETURN_EXISTING request too."""
    lost = []
    kept_from_item = (
        "lost" in case.events
        or prepared.end_event_lost
        or any(fired.site.name == "PutItem-status" for fired in world.plan.fired)
    )
    named = {world.arn_of(reply.workflow_id): reply.workflow_id for reply in replies if reply.workflow_id}
    if prepared.expect.workflow_id:
        named[world.arn_of(prepared.expect.workflow_id)] = prepared.expect.workflow_id
    for arn in world.runs():
        described = world.ended(arn)
        stop = epoch_ms(described["stopDate"])
        if not kept_from_item and not _waited(lambda arn=arn, stop=stop: world.item_end(arn) == stop, ITEM_WAIT_S):
            lost.append(f"{arn}: run_status's item holds {world.item_end(arn)}, not the end at {stop}")
        elif kept_from_item and (world.item_end(arn) or 0) > stop:
            lost.append(f"{arn}: run_status's item holds an end after the run's own ({stop})")
        workflow_id = named.get(arn)
        if workflow_id is None:
            continue  # a run of a try that died before answering, with no key: nobody can name it
        actual = STATUS[described["status"]]
        read = world.send(get(workflow_id))
        if read.status != 200 or not isinstance(read.body, dict) or read.body.get("status") != actual:
            lost.append(f"GET {workflow_id} after it ended {actual}: {read}")
        if prepared.expect.replay and workflow_id == next(
            (r.workflow_id for r in reversed(replies) if r.workflow_id), None
        ):
            again = world.send(prepared.request)
            body = again.body if isinstance(again.body, dict) else {}
            if (again.status, again.workflow_id, body.get("status")) != (200, workflow_id, actual):
                lost.append(f"the request replayed after the run ended {actual}: {again}")
    return lost
