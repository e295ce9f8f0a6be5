"""The idempotency decision (SPEC's matrix) as a table, and execution names derived from keys."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow_api.idempotency import KeyRecord, KeyState, Move, decide, execution_name, first_claim

NOW = 1_000_000.0


def record(state: KeyState, lease_until: float = 0.0) -> KeyRecord:
    return KeyRecord(
        "hello_world", "order-1", 2, 3, state, "owner-a" if state is KeyState.CLAIMED else None, lease_until
    )


@pytest.mark.parametrize(
    ("strategy", "state", "lease_until", "expected"),
    [
        # a run with this key is being started (a live claim)
        ("RETURN_EXISTING", KeyState.CLAIMED, NOW + 10, Move.JOIN),
        ("FAIL", KeyState.CLAIMED, NOW + 10, Move.CONFLICT),
        ("FAIL_ON_RUNNING", KeyState.CLAIMED, NOW + 10, Move.CONFLICT),
        # a run with this key exists (running or ended: RETURN_EXISTING waits on it either way)
        ("RETURN_EXISTING", KeyState.STARTED, 0.0, Move.JOIN),
        ("FAIL", KeyState.STARTED, 0.0, Move.CONFLICT),
        ("FAIL_ON_RUNNING", KeyState.STARTED, 0.0, Move.CHECK_STATUS),
        # the claimant died: its lease ran out
        ("RETURN_EXISTING", KeyState.CLAIMED, NOW - 1, Move.TAKE_OVER),
        ("FAIL", KeyState.CLAIMED, NOW - 1, Move.TAKE_OVER),
        ("FAIL_ON_RUNNING", KeyState.CLAIMED, NOW, Move.TAKE_OVER),
    ],
)
def test_matrix(strategy: str, state: KeyState, lease_until: float, expected: Move) -> None:
    assert decide(record(state, lease_until), strategy, NOW) is expected  # type: ignore[arg-type]


def test_first_claim_holds_generation_one() -> None:
    claim = first_claim("hello_world", "k", 1, "me", NOW + 40)
    assert (claim.generation, claim.state, claim.owner) == (1, KeyState.CLAIMED, "me")
    assert claim.lease_is_live(NOW)
    assert not claim.lease_is_live(NOW + 40)


def test_next_claim_moves_to_the_next_generation_with_a_new_name() -> None:
    started = record(KeyState.STARTED)
    nxt = started.claimed_by("me", 2, NOW + 40, generation=started.generation + 1)
    assert nxt.generation == 4
    assert nxt.execution_name != started.execution_name


@given(
    workflow=st.from_regex(r"[A-Za-z0-9_]{1,80}", fullmatch=True),
    key=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=256),
    generation=st.integers(min_value=1, max_value=10**9),
)
def test_execution_names_are_valid_for_step_functions(workflow: str, key: str, generation: int) -> None:
    name = execution_name(workflow, key, generation)
    assert len(name) <= 80
    assert re.fullmatch(r"[0-9a-z-]+", name)
    assert name == execution_name(workflow, key, generation)
    assert name != execution_name(workflow, key, generation + 1)
    assert name != execution_name(workflow + "x", key, generation)
    assert name != execution_name(workflow, key + "x", generation)
