"""The request paths the fault cases drive, each with what it needs in place first (made
fault-free) and what its caller may be answered. The calls each one makes: matrix.REACHES.

- execute: execute, no key, a correlationId (the run record).
- execute_key: execute with a new key, RETURN_EXISTING.
- start_fail: start without waiting (POST /api/workflow) with a new key, FAIL.
- join: execute_key again once its run has ended: the key's record names the run.
- join_lost_end: join, the run's end event lost: the item has no end, Step Functions has.
- get: GET /api/workflow/{workflowId} of an ended run.
- takeover: execute_key again after its first call died holding the key, the lease run out.
- takeover_fail: the same with FAIL, on the start without waiting.
- takeover_started: the same, the call that died had started the run.
- again: FAIL_ON_RUNNING again once the key's run has ended: a new run (generation 2).
- task: execute on the seed's route with waitUntilTaskRef (the history read until the task).
- redriven_late_end: join a redriven run whose older end (ABORTED) arrives while it runs again.
- redriven_older_after_newer: join a redriven run whose older end arrived after its newer one.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from local_mode import limits
from tests.faults.harness import Expect, Request, World, execute, get, greeting, start, wait_for


@dataclass(frozen=True)
class Prepared:
    request: Request
    expect: Expect
    not_workflow_id: str | None = None  # a run the answer must not name (the key's ended one)
    end_event_lost: bool = False  # the prepared run's end never reached run_status's item


PATHS: dict[str, Callable[[World], Prepared]] = {}


def path(name: str) -> Callable[[Callable[[World], Prepared]], Callable[[World], Prepared]]:
    def register(prepare: Callable[[World], Prepared]) -> Callable[[World], Prepared]:
        PATHS[name] = prepare
        return prepare

    return register


def _ok(reply: object, *statuses: int) -> None:
    assert getattr(reply, "status", None) in statuses, f"the case's fault-free preparation failed: {reply}"


@path("execute")
def prepare_execute(world: World) -> Prepared:
    return Prepared(execute(world), Expect(output=greeting(world)))


@path("execute_key")
def prepare_execute_key(world: World) -> Prepared:
    expect = Expect(keyed=True, strategy="RETURN_EXISTING", output=greeting(world), replay=True)
    return Prepared(execute(world, strategy="RETURN_EXISTING"), expect)


@path("start_fail")
def prepare_start_fail(world: World) -> Prepared:
    return Prepared(start(world, "FAIL"), Expect(keyed=True, strategy="FAIL", output=greeting(world)))


def _joined(output: dict[str, Any], workflow_id: str | None) -> Expect:
    """What a call joining the key's existing run gets: that run, replayed, nothing started."""
    return Expect(
        keyed=True,
        strategy="RETURN_EXISTING",
        new_runs=0,
        key_new=False,
        output=output,
        workflow_id=workflow_id,
        replay=True,
    )


@path("join")
def prepare_join(world: World) -> Prepared:
    request = execute(world, strategy="RETURN_EXISTING")
    first = world.send(request)
    _ok(first, 200)
    arn = world.arn_of(first.workflow_id)
    assert arn is not None
    wait_for(lambda: world.item_end(arn), 5, "the run's end recorded")
    expect = _joined(output=greeting(world), workflow_id=first.workflow_id)
    return Prepared(request, expect)


@path("join_lost_end")
def prepare_join_lost_end(world: World) -> Prepared:
    request = execute(world, strategy="RETURN_EXISTING")
    dropped = limits.eventbridge.dropped()
    limits.eventbridge.lose_next(1)
    first = world.send(replace(request, query=(("waitForSeconds", "0"),)))  # the same request, no wait
    _ok(first, 206)
    arn = world.arn_of(first.workflow_id)
    assert arn is not None
    world.ended(arn)
    wait_for(lambda: limits.eventbridge.dropped() > dropped, 5, "the run's end event lost")
    expect = _joined(output=greeting(world), workflow_id=first.workflow_id)
    return Prepared(request, expect, end_event_lost=True)


@path("get")
def prepare_get(world: World) -> Prepared:
    first = world.send(execute(world))
    _ok(first, 200)
    arn = world.arn_of(first.workflow_id)
    assert arn is not None and first.workflow_id is not None
    wait_for(lambda: world.item_end(arn), 5, "the run's end recorded")
    return Prepared(get(first.workflow_id), Expect(new_runs=0, output=greeting(world), workflow_id=first.workflow_id))


@path("takeover")
def prepare_takeover(world: World) -> Prepared:
    request = execute(world, strategy="RETURN_EXISTING")
    world.send_with_crash(request, "PutItem-key-claim")  # an earlier call of the request died holding the key
    world.clock.stall(world.lease + 1)
    expect = Expect(keyed=True, strategy="RETURN_EXISTING", key_new=False, output=greeting(world), replay=True)
    return Prepared(request, expect)


@path("takeover_fail")
def prepare_takeover_fail(world: World) -> Prepared:
    """As takeover, with FAIL, on the start without waiting."""
    request = start(world, "FAIL")
    world.send_with_crash(request, "PutItem-key-claim")
    world.clock.stall(world.lease + 1)
    return Prepared(request, Expect(keyed=True, strategy="FAIL", key_new=False, output=greeting(world)))


@path("takeover_started")
def prepare_takeover_started(world: World) -> Prepared:
    """As takeover, but the call that died had started the run: the retry finds it, marks the key."""
    request = execute(world, strategy="RETURN_EXISTING")
    world.send_with_crash(request, "StartExecution")
    world.clock.stall(world.lease + 1)
    expect = Expect(keyed=True, strategy="RETURN_EXISTING", key_new=False, output=greeting(world), replay=True)
    return Prepared(request, expect)


@path("again")
def prepare_again(world: World) -> Prepared:
    request = execute(world, strategy="FAIL_ON_RUNNING")
    first = world.send(request)
    _ok(first, 200)
    # The key's run has ended: this request must start a new one (a 409 would be wrong).
    expect = Expect(keyed=True, strategy="FAIL_ON_RUNNING", key_new=False, output=greeting(world))
    return Prepared(request, expect, not_workflow_id=first.workflow_id)


@path("task")
def prepare_task(world: World) -> Prepared:
    request = Request(
        "execute",
        "POST",
        "/api/workflow/execute/hello_world",
        {"name": world.name},
        (("waitForSeconds", "5"),),
        (("waitUntilTaskRef", "greet"),),
    )
    return Prepared(request, Expect(output=greeting(world)))


SLOW = {"delaySeconds": 1}
SLOW_OUTPUT = {"finished": True, "delaySeconds": 1}


def _redriven(world: World) -> tuple[Request, str, str]:
    """A keyed slow_steps run, terminated (its ABORTED end held back) and redriven: (the request
    that joins it, its workflowId, its ARN)."""
    request = execute(world, "slow_steps", SLOW, strategy="RETURN_EXISTING", correlation=False)
    first = world.send(start(world, "RETURN_EXISTING", "slow_steps", SLOW))  # the same key and input
    _ok(first, 200)
    arn = world.arn_of(first.workflow_id)
    assert arn is not None and first.workflow_id is not None
    limits.eventbridge.hold_next(1)
    world.sfn.stop_execution(executionArn=arn, error="Terminated", cause="the fault suite")
    wait_for(lambda: limits.eventbridge.held() == 1, 5, "the ABORTED end held back")
    world.sfn.redrive_execution(executionArn=arn)
    return request, first.workflow_id, arn


@path("redriven_late_end")
def prepare_redriven_late_end(world: World) -> Prepared:
    """The older end (ABORTED) arrives while the redriven run runs again: the item says it ended."""
    request, workflow_id, arn = _redriven(world)
    limits.eventbridge.release_held()
    wait_for(lambda: world.item_end(arn), 5, "the older end recorded")
    expect = _joined(output=SLOW_OUTPUT, workflow_id=workflow_id)
    return Prepared(request, expect)


@path("redriven_older_after_newer")
def prepare_redriven_older_after_newer(world: World) -> Prepared:
    """The redriven run ends (SUCCEEDED, recorded), then its older end (ABORTED) arrives."""
    request, workflow_id, arn = _redriven(world)
    newer = world.ended(arn)
    stop = int(newer["stopDate"].timestamp() * 1000)
    wait_for(lambda: world.item_end(arn) == stop, 5, "the newer end recorded")
    writes = world.status_writes(arn)
    limits.eventbridge.release_held()
    wait_for(lambda: world.status_writes(arn) > writes, 5, "the older end delivered")
    expect = _joined(output=SLOW_OUTPUT, workflow_id=workflow_id)
    return Prepared(request, expect)
