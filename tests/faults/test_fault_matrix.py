"""Every call site of the request paths with every fault kind, and EventBridge's faults: the
caller always gets a right answer, no run starts twice, a retry converges on the same run, and
no run's end is lost (harness.py says what each means)."""

from collections.abc import Callable

import pytest

from tests.faults.harness import Case, Outcome
from tests.faults.matrix import MATRIX

pytestmark = [pytest.mark.faults, pytest.mark.filterwarnings("ignore:No application metrics to publish")]


def params(cases: list[Case]) -> list[object]:
    return [
        pytest.param(case, id=str(case), marks=[pytest.mark.xfail(strict=True, reason=case.known_bug)])
        if case.known_bug
        else pytest.param(case, id=str(case))
        for case in cases
    ]


@pytest.mark.parametrize("case", params(MATRIX))
def test_a_fault_never_makes_a_wrong_answer_a_second_run_or_a_lost_end(
    case: Case, fault_run: Callable[[Case], Outcome]
) -> None:
    outcome = fault_run(case)

    report = outcome.report()
    assert outcome.missed == [], f"the case never reached its faults {outcome.missed}:\n{report}"
    assert outcome.wrong == [], report
    assert outcome.duplicate_runs == 0, report
    assert outcome.lost_ends == [], report
