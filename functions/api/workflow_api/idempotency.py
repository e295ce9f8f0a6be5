"""Idempotency keys: what a request with a key may do, decided from the key's record alone.

Pure, like powertools' own idempotency ``base.py``: the record and the clock in, a move out.
Storage is ``adapters/idempotency_store.py``; the moves are carried out by ``service``.

A key's record names one run at a time by *generation*. Each generation has its own execution
name, derived from (workflow, key, generation): Step Functions refuses a second execution of a
name, so however requests race or crash, one generation never starts two runs.

A key is bound to the request it was made for (docs/IDEMPOTENCY.md): its record holds the
*fingerprint* of that request's input (sha256 of the canonical JSON Step Functions gets) and the
version its run runs. A request is the same one when its canonical input is byte-identical and it
asks for that version or for the latest (version absent or 0: an identical retry after a new
version is deployed still replays). correlationId and priority are the run's metadata, not the
request: they do not count. Any other request with the key is refused (422) whatever the strategy,
before the matrix is looked at, so nothing starts for it.
"""

import hashlib
from dataclasses import dataclass, replace
from enum import StrEnum

from .catalog import RUN_NAME_PREFIX
from .models import Strategy


class KeyState(StrEnum):
    CLAIMED = "CLAIMED"  # a request holds the key and is starting the generation's run
    STARTED = "STARTED"  # the generation's run has been started


class Move(StrEnum):
    REFUSE = "REFUSE"  # 422: the key was made for another request; nothing starts
    JOIN = "JOIN"  # no new run: make sure the generation's run exists, then wait on it
    CONFLICT = "CONFLICT"  # 409 naming the existing run
    TAKE_OVER = "TAKE_OVER"  # the claimant's lease ran out: it died; claim the key in its place
    CHECK_STATUS = "CHECK_STATUS"  # FAIL_ON_RUNNING: the run's real status decides


@dataclass(frozen=True)
class KeyedRequest:
    """What a request with a key is checked against the key's record by."""

    fingerprint: str  # of the canonical input: ``fingerprint``
    version: int | None  # the version asked for; None: the latest


def fingerprint(canonical_input: str) -> str:
    """sha256 of the input's canonical JSON text (``service.encode_input``): equal fingerprints
    mean byte-identical inputs, so starting with either is starting with the recorded one."""
    return hashlib.sha256(canonical_input.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    workflow: str
    key: str
    version: int
    generation: int
    state: KeyState
    owner: str | None = None
    lease_until: float = 0.0
    # The fingerprint of the input the key was made for; None on a record written before keys
    # were bound to requests (a "legacy" record: its input is unknown, so no call ever starts
    # its run on its behalf; see service._start_with_key).
    fingerprint: str | None = None

    @property
    def execution_name(self) -> str:
        return execution_name(self.workflow, self.key, self.generation)

    def lease_is_live(self, now: float) -> bool:
        return self.state is KeyState.CLAIMED and self.lease_until > now

    def claimed_by(
        self, owner: str, request_fingerprint: str, version: int, lease_until: float, generation: int | None = None
    ) -> "KeyRecord":
        """The key held by ``owner`` for the request of ``request_fingerprint``."""
        return replace(
            self,
            version=version,
            generation=self.generation if generation is None else generation,
            state=KeyState.CLAIMED,
            owner=owner,
            lease_until=lease_until,
            fingerprint=request_fingerprint,
        )

    def started(self) -> "KeyRecord":
        """The record once the generation's run exists: no owner, no lease."""
        return replace(self, state=KeyState.STARTED, owner=None, lease_until=0.0)


def first_claim(
    workflow: str, key: str, version: int, owner: str, lease_until: float, request_fingerprint: str
) -> KeyRecord:
    return KeyRecord(workflow, key, version, 1, KeyState.CLAIMED, owner, lease_until, request_fingerprint)


def execution_name(workflow: str, key: str, generation: int) -> str:
    """<= 80 characters of [0-9a-z-]: safe for Step Functions whatever the key holds."""
    digest = hashlib.sha256(f"{workflow}\0{key}".encode()).hexdigest()[:48]
    return f"{RUN_NAME_PREFIX}k{digest}-{generation}"


def mismatch(record: KeyRecord, request: KeyedRequest) -> str | None:
    """How ``request`` differs from the one the key was made for; None when it is that one.

    The version counts only when the request names one (absent or 0 means "the latest", which
    matches whatever version the key's run runs). The input counts unless the record is legacy
    (no fingerprint): then it cannot be told, and the request is taken for the same one.
    """
    if request.version is not None and request.version != record.version:
        return f"this request asks for version {request.version}, the key's run is of version {record.version}"
    if record.fingerprint is not None and record.fingerprint != request.fingerprint:
        return "this request's input differs"
    return None


def decide(record: KeyRecord, strategy: Strategy, now: float, request: KeyedRequest) -> Move:
    """SPEC's matrix for a key that already has a record.

    First of all, a key made for another request is REFUSE (422), whatever the strategy and the
    state of its record, a dead claim included: nothing is ever started for a mismatched request.

    | strategy        | being started (live claim) | started                    |
    | RETURN_EXISTING | JOIN                       | JOIN (ended: answers 200)  |
    | FAIL            | CONFLICT                   | CONFLICT                   |
    | FAIL_ON_RUNNING | CONFLICT                   | CHECK_STATUS               |
    A claim whose lease has run out belongs to a request that died: TAKE_OVER, whatever the strategy.
    """
    if mismatch(record, request) is not None:
        return Move.REFUSE
    if record.state is KeyState.CLAIMED and not record.lease_is_live(now):
        return Move.TAKE_OVER
    if strategy == "RETURN_EXISTING":
        return Move.JOIN
    if strategy == "FAIL" or record.state is KeyState.CLAIMED:
        return Move.CONFLICT
    return Move.CHECK_STATUS
