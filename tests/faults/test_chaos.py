"""Random fault combinations: a path, one or two faults at the call sites it reaches (any kind,
any of the first calls of the site, one call or a few in a row, one attempt or every one, AWS's
other error codes), and at times an EventBridge fault as well. The same checks as the matrix.

In ``make test``: CHAOS_CASES (default 3) cases from a fixed seed, so the run is the same each
time. ``make chaos`` draws CHAOS_CASES (default 300) from a random seed, printed in the summary
and the header; ``CHAOS_SEED=n make chaos`` replays that run (and ``-k`` one case of it).
"""

import os
import random
from collections.abc import Callable

import pytest

from tests.aws_faults import ATTEMPT_KINDS, EVERY_ATTEMPT, Fault, Kind
from tests.faults.harness import TALLY, Case, Outcome
from tests.faults.matrix import OFF_THREAD_KINDS, REACHES, STARTS_A_RUN

pytestmark = [
    pytest.mark.faults,
    pytest.mark.chaos,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

SEED = int(os.environ.get("CHAOS_SEED") or 17)
CASES = int(os.environ.get("CHAOS_CASES") or 3)
# AWS's other ways of saying the same thing: each is a throttle or a 5xx to the service.
CODES = {
    Kind.THROTTLE: (None, "ThrottlingException", "RequestLimitExceeded"),
    Kind.SERVER_ERROR: (None, "InternalServerError", "ServiceUnavailable"),
}


def draw(rng: random.Random, number: int) -> Case:
    path = rng.choice(sorted(REACHES))
    sites = [*REACHES[path], *(("PutItem-status", "DescribeExecution-end") if path in STARTS_A_RUN else ())]
    faults = []
    for _ in range(rng.choice((1, 2, 2))):
        site = rng.choice(sites)
        kinds = OFF_THREAD_KINDS if site == "PutItem-status" else tuple(Kind)
        kind = rng.choice(kinds)
        faults.append(
            Fault(
                site,
                kind,
                nth=rng.choice((1, 1, 2)),
                calls=rng.choice((1, 1, 2, 3)),
                attempts=rng.choice((1, EVERY_ATTEMPT)) if kind in ATTEMPT_KINDS else None,
                code=rng.choice(CODES[kind]) if kind in CODES else None,
            )
        )
    events: tuple[str, ...] = ()
    if path in STARTS_A_RUN and rng.random() < 0.3:
        events = (rng.choice(("lost", "duplicate", "late")),)
    return Case(path, tuple(dict.fromkeys(faults)), events, label=f"{number:03d}-")


def cases(seed: int, count: int) -> list[Case]:
    rng = random.Random(seed)
    return [draw(rng, number) for number in range(count)]


@pytest.mark.parametrize("case", cases(SEED, CASES), ids=str)
def test_random_faults_never_make_a_wrong_answer_a_second_run_or_a_lost_end(
    case: Case, fault_run: Callable[[Case], Outcome]
) -> None:
    if SEED not in TALLY.seeds:
        TALLY.seeds.append(SEED)
    outcome = fault_run(case)

    report = f"CHAOS_SEED={SEED} CHAOS_CASES={CASES} replays this run.\n{outcome.report()}"
    assert outcome.wrong == [], report
    assert outcome.duplicate_runs == 0, report
    assert outcome.lost_ends == [], report
