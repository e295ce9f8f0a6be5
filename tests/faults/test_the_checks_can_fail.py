"""The fault suite's checks can fail: with the service broken on purpose, each one sees it.
(These cases are left out of the suite's summary.)"""

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.aws_faults import Fault, FaultLayer, Kind
from tests.faults import runner
from tests.faults.harness import Case, Outcome
from workflow_api import idempotency
from workflow_api.adapters.run_signals import RunSignals
from workflow_api.run_wait import RunWaiter
from workflow_api.service import WorkflowService

pytestmark = [pytest.mark.faults, pytest.mark.filterwarnings("ignore:No application metrics to publish")]
Run = Callable[..., Outcome]


def test_an_ended_run_answered_running_is_a_wrong_answer(
    fault_run: Run, fault_layer: FaultLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = RunWaiter.wait

    def never_looks(self: RunWaiter, wait: Any, calls: Any) -> Any:
        requested = fault_layer.plan is not None and fault_layer.plan.phase == "request"
        return (wait.known, True) if requested else real(self, wait, calls)

    monkeypatch.setattr(RunWaiter, "wait", never_looks)

    outcome = fault_run(Case("join"), tally=False)

    assert any("answered RUNNING" in why for why in outcome.wrong), outcome.report()


def test_a_500_is_a_wrong_answer(fault_run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(WorkflowService, "execute", broken)

    outcome = fault_run(Case("execute"), tally=False)

    assert any("a 500 is no answer" in why for why in outcome.wrong), outcome.report()


def test_a_second_run_for_one_key_is_counted(
    fault_run: Run, fault_layer: FaultLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Execution names no longer derived from the key alone (each try its own): the retry after a
    crash starts another run."""
    tries = uuid.uuid4().hex[:8]

    def per_try(workflow: str, key: str, generation: int) -> str:
        return f"conductor-{tries}-{fault_layer.plan.delivery if fault_layer.plan else 0}-{generation}"

    monkeypatch.setattr(idempotency, "execution_name", per_try)

    outcome = fault_run(Case("execute_key", (Fault("StartExecution", Kind.CRASH),)), tally=False)

    assert outcome.duplicate_runs >= 1, outcome.report()


def test_an_end_run_status_never_keeps_is_a_lost_end(fault_run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RunSignals, "record", lambda self, execution_arn, end: True)
    monkeypatch.setattr(runner, "ITEM_WAIT_S", 0.5)  # it never comes: no need to wait long for it

    outcome = fault_run(Case("execute"), tally=False)

    assert outcome.wrong == [], outcome.report()  # the caller is still answered right, from Step Functions
    assert any("run_status's item" in why for why in outcome.lost_ends), outcome.report()
