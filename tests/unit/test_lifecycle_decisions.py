"""WorkflowLifecycle's decisions (workflow_api/lifecycle.py) with small fakes at its adapters:
what terminate, retry and the refusals do for each state a run can be in, and how the lists are cut."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from workflow_api.adapters.stepfunctions import ExecutionNotRedrivable, ExecutionState, ListedExecution
from workflow_api.catalog import WorkflowCatalog, tagged
from workflow_api.errors import (
    InvalidRequest,
    OperationNotSupported,
    RunConflict,
    RunNotFound,
    WorkflowNotFound,
)
from workflow_api.lifecycle import (
    MAX_CORRELATED,
    MAX_REASON_CHARS,
    NOT_SUPPORTED,
    TERMINATED_ERROR,
    WorkflowLifecycle,
)
from workflow_api.models import WorkflowRun

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:{}"
CATALOG = WorkflowCatalog(tagged({"hello_world": {1: ARN.format("hw1"), 2: ARN.format("hw2")}}), lambda _: frozenset())
RUN = "hello_world.1.abc"
RUN_ARN = "arn:aws:states:us-east-1:123456789012:execution:hw1:abc"


@dataclass
class FakeStepFunctions:
    states: dict[str, ExecutionState] = field(default_factory=dict)
    listed: list[ListedExecution] = field(default_factory=list)
    not_redrivable: bool = False
    stopped: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)

    def describe(self, arn: str, calls: Counter[str]) -> ExecutionState:
        if arn not in self.states:
            raise RunNotFound("No such workflow run")
        return self.states[arn]

    def stop(self, arn: str, error: str | None, cause: str | None, calls: Counter[str]) -> None:
        self.stopped.append((arn, error, cause))

    def redrive(self, arn: str, calls: Counter[str]) -> None:
        if self.not_redrivable:
            raise ExecutionNotRedrivable("Execution arn:aws:... is not redrivable")
        self.redriven.append(arn)

    def running(self, state_machine_arn: str, calls: Counter[str], limit: int) -> list[ListedExecution]:
        assert state_machine_arn == ARN.format("hw1")
        return self.listed[:limit]


@dataclass
class FakeRecords:
    ids: list[str] = field(default_factory=list)

    def correlated(self, name: str, correlation_id: str, limit: int) -> list[str]:
        return self.ids[:limit]


@dataclass
class FakeService:
    runs: dict[str, WorkflowRun] = field(default_factory=dict)

    def get(self, workflow_id: str, request_id: str, include_tasks: bool = True) -> Any:
        if workflow_id not in self.runs:
            raise RunNotFound(workflow_id)
        return type("Answer", (), {"run": self.runs[workflow_id]})


def lifecycle(
    sfn: FakeStepFunctions, records: FakeRecords | None = None, service: FakeService | None = None
) -> WorkflowLifecycle:
    return WorkflowLifecycle(service or FakeService(), CATALOG, sfn, records or FakeRecords())  # type: ignore[arg-type]


def run(workflow_id: str, status: str, created: int) -> WorkflowRun:
    return WorkflowRun(
        workflow_id=workflow_id,
        request_id="r",
        status=status,
        create_time=created,
        update_time=created,
        target_workflow_id=workflow_id,
        target_workflow_status=status,
        output={"n": created},
    )


def test_terminate_stops_a_running_run_with_the_reason_as_its_cause() -> None:
    sfn = FakeStepFunctions({RUN_ARN: ExecutionState("RUNNING")})
    lifecycle(sfn).terminate(RUN, "because")
    lifecycle(sfn).terminate(RUN, None)
    assert sfn.stopped == [(RUN_ARN, None, "because"), (RUN_ARN, TERMINATED_ERROR, None)]


@pytest.mark.parametrize(
    ("status", "word"), [("SUCCEEDED", "COMPLETED"), ("FAILED", "FAILED"), ("TIMED_OUT", "TIMED_OUT")]
)
def test_terminate_refuses_an_ended_run_and_leaves_a_terminated_one(status: str, word: str) -> None:
    sfn = FakeStepFunctions({RUN_ARN: ExecutionState(status)})
    with pytest.raises(RunConflict, match=word):
        lifecycle(sfn).terminate(RUN, None)
    sfn.states[RUN_ARN] = ExecutionState("ABORTED")
    lifecycle(sfn).terminate(RUN, None)
    assert sfn.stopped == []


def test_terminate_checks_the_reason_and_the_run_first() -> None:
    sfn = FakeStepFunctions()
    with pytest.raises(InvalidRequest):
        lifecycle(sfn).terminate(RUN, "x" * (MAX_REASON_CHARS + 1))
    for unknown in (RUN, "hello_world.3.abc", "not-an-id"):
        with pytest.raises(RunNotFound):
            lifecycle(sfn).terminate(unknown, None)


@pytest.mark.parametrize("status", ["FAILED", "ABORTED", "TIMED_OUT"])
def test_retry_redrives_what_ended_without_success(status: str) -> None:
    sfn = FakeStepFunctions({RUN_ARN: ExecutionState(status, redrive_status="REDRIVABLE")})
    lifecycle(sfn).retry(RUN)
    assert sfn.redriven == [RUN_ARN]


@pytest.mark.parametrize(
    ("state", "word"),
    [
        (ExecutionState("RUNNING"), "RUNNING"),
        (ExecutionState("PENDING_REDRIVE"), "RUNNING"),
        (ExecutionState("SUCCEEDED"), "COMPLETED"),
        (
            ExecutionState("FAILED", redrive_status="NOT_REDRIVABLE", redrive_status_reason="Ended too long ago"),
            "too long",
        ),
    ],
)
def test_retry_refuses_with_a_409_naming_why(state: ExecutionState, word: str) -> None:
    sfn = FakeStepFunctions({RUN_ARN: state})
    with pytest.raises(RunConflict, match=word):
        lifecycle(sfn).retry(RUN)
    assert sfn.redriven == []


def test_a_refused_redrive_is_a_409_without_aws_words() -> None:
    sfn = FakeStepFunctions({RUN_ARN: ExecutionState("FAILED")}, not_redrivable=True)
    with pytest.raises(RunConflict) as refused:
        lifecycle(sfn).retry(RUN)
    assert "arn:" not in refused.value.message and "14 days" in refused.value.message


def test_refusals_name_why_once_the_run_is_known() -> None:
    sfn = FakeStepFunctions({RUN_ARN: ExecutionState("RUNNING")})
    for operation, why in NOT_SUPPORTED.items():
        with pytest.raises(OperationNotSupported) as refused:
            lifecycle(sfn).not_supported(RUN, operation)
        assert refused.value.status == 409 and why in refused.value.message
    with pytest.raises(RunNotFound):
        lifecycle(FakeStepFunctions()).not_supported(RUN, "pause")


def test_running_cuts_by_start_time_and_knows_the_workflow() -> None:
    sfn = FakeStepFunctions(
        listed=[ListedExecution("new", 300), ListedExecution("mid", 200), ListedExecution("old", 100)]
    )
    assert lifecycle(sfn).running("hello_world", 1, None, None) == [f"hello_world.1.{n}" for n in ("new", "mid", "old")]
    assert lifecycle(sfn).running("hello_world", 1, 150, 250) == ["hello_world.1.mid"]
    with pytest.raises(WorkflowNotFound):
        lifecycle(sfn).running("hello_world", 3, None, None)


def test_correlated_reads_each_run_and_keeps_running_ones_unless_asked() -> None:
    ids = ["hello_world.1.b", "hello_world.1.gone", "hello_world.2.a"]
    service = FakeService({ids[0]: run(ids[0], "RUNNING", 20), ids[2]: run(ids[2], "COMPLETED", 10)})
    found = lifecycle(FakeStepFunctions(), FakeRecords(ids), service)
    assert [
        r.workflow_id for r in found.correlated("hello_world", "c", "r", include_closed=False, include_tasks=False)
    ] == [ids[0]]
    closed = found.correlated("hello_world", "c", "r", include_closed=True, include_tasks=False)
    assert [r.workflow_id for r in closed] == [ids[2], ids[0]]  # oldest first; a run never started is left out
    many = found.correlated_many("hello_world", ["c", "c", "d"], "r", include_closed=True, include_tasks=False)
    assert list(many) == ["c", "d"]
    with pytest.raises(InvalidRequest):
        found.correlated_many("hello_world", [str(i) for i in range(21)], "r", include_closed=True, include_tasks=False)
    with pytest.raises(WorkflowNotFound):
        found.correlated("nope", "c", "r", include_closed=True, include_tasks=False)


def test_status_is_conductors_workflow_status() -> None:
    service = FakeService({RUN: run(RUN, "COMPLETED", 5)})
    found = lifecycle(FakeStepFunctions(), service=service)
    assert found.status(RUN, "r", include_output=False, include_variables=False).to_body() == {
        "workflowId": RUN,
        "correlationId": None,
        "status": "COMPLETED",
    }
    full = found.status(RUN, "r", include_output=True, include_variables=True).to_body()
    assert full["output"] == {"n": 5} and full["variables"] == {}


def test_one_correlated_call_reads_at_most_max_correlated_runs_however_many_ids_it_names() -> None:
    """Each run read is a history read of the account's 20 a second: 20 correlationIds of 100 runs
    each would be 2,000 reads in one call without a budget shared by the whole call."""
    ids = [f"hello_world.1.run{i}" for i in range(MAX_CORRELATED)]
    service = FakeService({workflow_id: run(workflow_id, "RUNNING", i) for i, workflow_id in enumerate(ids)})
    reads: list[str] = []
    real_get = service.get

    def counted(workflow_id: str, request_id: str, include_tasks: bool = True) -> Any:
        reads.append(workflow_id)
        return real_get(workflow_id, request_id, include_tasks)

    service.get = counted  # type: ignore[method-assign]
    found = lifecycle(FakeStepFunctions(), FakeRecords(ids), service)

    many = found.correlated_many("hello_world", ["a", "b", "c"], "r", include_closed=True, include_tasks=False)

    assert len(reads) == MAX_CORRELATED
    assert [len(runs) for runs in many.values()] == [MAX_CORRELATED, 0, 0]
