"""The idempotency decision (SPEC's matrix) as a table, a key bound to the request it was made for,
and execution names derived from keys."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow_api.idempotency import (
    KeyedRequest,
    KeyRecord,
    KeyState,
    Move,
    decide,
    execution_name,
    fingerprint,
    first_claim,
    mismatch,
)
from workflow_api.service import encode_input

NOW = 1_000_000.0
ADA = fingerprint(encode_input({"name": "Ada"}))
SAME = KeyedRequest(ADA, None)  # the request the records below were made for, asking for the latest


def record(state: KeyState, lease_until: float = 0.0, made_for: str | None = ADA) -> KeyRecord:
    return KeyRecord(
        "hello_world", "order-1", 2, 3, state, "owner-a" if state is KeyState.CLAIMED else None, lease_until, made_for
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
    assert decide(record(state, lease_until), strategy, NOW, SAME) is expected  # type: ignore[arg-type]


# --- a key is bound to its request: anything else is REFUSE (422), before the matrix -------------

STATES = [
    pytest.param(KeyState.CLAIMED, NOW + 10, id="being-started"),
    pytest.param(KeyState.STARTED, 0.0, id="started"),
    pytest.param(KeyState.CLAIMED, NOW - 1, id="dead-claim"),
]


@pytest.mark.parametrize("strategy", ["RETURN_EXISTING", "FAIL", "FAIL_ON_RUNNING"])
@pytest.mark.parametrize(("state", "lease_until"), STATES)
@pytest.mark.parametrize(
    "other",
    [
        pytest.param(KeyedRequest(fingerprint(encode_input({"name": "Bob"})), None), id="other-input"),
        pytest.param(KeyedRequest(ADA, 1), id="other-version"),
        pytest.param(KeyedRequest(fingerprint(encode_input({"name": "Bob"})), 2), id="other-input-same-version"),
    ],
)
def test_another_request_with_the_key_is_refused_whatever_the_strategy_and_state(
    strategy: str, state: KeyState, lease_until: float, other: KeyedRequest
) -> None:
    assert decide(record(state, lease_until), strategy, NOW, other) is Move.REFUSE  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", ["RETURN_EXISTING", "FAIL", "FAIL_ON_RUNNING"])
@pytest.mark.parametrize(("state", "lease_until"), STATES)
@pytest.mark.parametrize("version", [None, 2], ids=["latest", "the-records-version"])
def test_the_same_request_is_never_refused(
    strategy: str, state: KeyState, lease_until: float, version: int | None
) -> None:
    """The same input, asking for the latest or for the record's version: the matrix decides."""
    move = decide(record(state, lease_until), strategy, NOW, KeyedRequest(ADA, version))  # type: ignore[arg-type]
    assert move is not Move.REFUSE


def test_the_fingerprint_is_of_the_canonical_input() -> None:
    """Key order and spacing do not make another request; any value that differs does."""
    assert fingerprint(encode_input({"a": 1, "b": [1, 2]})) == fingerprint(encode_input({"b": [1, 2], "a": 1}))
    assert fingerprint(encode_input({"a": 1})) != fingerprint(encode_input({"a": "1"}))
    assert fingerprint(encode_input({"a": 1})) != fingerprint(encode_input({"a": 1, "b": None}))
    assert fingerprint(encode_input({})) == fingerprint("{}")


def test_a_mismatch_says_what_differs() -> None:
    assert mismatch(record(KeyState.STARTED), KeyedRequest(ADA, 1)) == (
        "this request asks for version 1, the key's run is of version 2"
    )
    assert mismatch(record(KeyState.STARTED), KeyedRequest("0" * 64, None)) == "this request's input differs"
    assert mismatch(record(KeyState.STARTED), SAME) is None


@pytest.mark.parametrize("strategy", ["RETURN_EXISTING", "FAIL", "FAIL_ON_RUNNING"])
def test_a_legacy_record_is_checked_by_version_only(strategy: str) -> None:
    """Written before keys were bound: it has no fingerprint, so any input is taken for its own
    (today's behaviour); a version it does not run is still another request."""
    legacy = record(KeyState.STARTED, made_for=None)
    anyone = KeyedRequest(fingerprint(encode_input({"name": "Bob"})), None)
    assert decide(legacy, strategy, NOW, anyone) is not Move.REFUSE  # type: ignore[arg-type]
    assert decide(legacy, strategy, NOW, KeyedRequest(ADA, 1)) is Move.REFUSE  # type: ignore[arg-type]


def test_claims_hold_the_fingerprint_of_their_request() -> None:
    claim = first_claim("hello_world", "k", 1, "me", NOW + 40, ADA)
    assert claim.fingerprint == ADA
    legacy = record(KeyState.CLAIMED, NOW - 1, made_for=None)
    assert legacy.claimed_by("me", ADA, 2, NOW + 40).fingerprint == ADA  # a takeover binds the key
    assert legacy.claimed_by("me", ADA, 2, NOW + 40).started().fingerprint == ADA


def test_first_claim_holds_generation_one() -> None:
    claim = first_claim("hello_world", "k", 1, "me", NOW + 40, ADA)
    assert (claim.generation, claim.state, claim.owner) == (1, KeyState.CLAIMED, "me")
    assert claim.lease_is_live(NOW)
    assert not claim.lease_is_live(NOW + 40)


def test_next_claim_moves_to_the_next_generation_with_a_new_name() -> None:
    started = record(KeyState.STARTED)
    nxt = started.claimed_by("me", ADA, 2, NOW + 40, generation=started.generation + 1)
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
