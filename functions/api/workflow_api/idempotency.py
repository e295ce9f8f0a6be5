"""Idempotency keys: what a request with a key may do, decided from the key's record alone.

Pure, like powertools' own idempotency ``base.py``: the record and the clock in, a move out.
Storage is ``adapters/idempotency_store.py``; the moves are carried out by ``service``.

A key's record names one run at a time by *generation*. Each generation has its own execution
name, derived from (workflow, key, generation): Step Functions refuses a second execution of a
name, so however requests race or crash, one generation never starts two runs.
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
    JOIN = "JOIN"  # no new run: make sure the generation's run exists, then wait on it
    CONFLICT = "CONFLICT"  # 409 naming the existing run
    TAKE_OVER = "TAKE_OVER"  # the claimant's lease ran out: it died; claim the key in its place
    CHECK_STATUS = "CHECK_STATUS"  # FAIL_ON_RUNNING: the run's real status decides


@dataclass(frozen=True)
class KeyRecord:
    workflow: str
    key: str
    version: int
    generation: int
    state: KeyState
    owner: str | None = None
    lease_until: float = 0.0

    @property
    def execution_name(self) -> str:
        return execution_name(self.workflow, self.key, self.generation)

    def lease_is_live(self, now: float) -> bool:
        return self.state is KeyState.CLAIMED and self.lease_until > now

    def claimed_by(self, owner: str, version: int, lease_until: float, generation: int | None = None) -> "KeyRecord":
        return replace(
            self,
            version=version,
            generation=self.generation if generation is None else generation,
            state=KeyState.CLAIMED,
            owner=owner,
            lease_until=lease_until,
        )


def first_claim(workflow: str, key: str, version: int, owner: str, lease_until: float) -> KeyRecord:
    return KeyRecord(workflow, key, version, 1, KeyState.CLAIMED, owner, lease_until)


def execution_name(workflow: str, key: str, generation: int) -> str:
    """<= 80 characters of [0-9a-z-]: safe for Step Functions whatever the key holds."""
    digest = hashlib.sha256(f"{workflow}\0{key}".encode()).hexdigest()[:48]
    return f"{RUN_NAME_PREFIX}k{digest}-{generation}"


def decide(record: KeyRecord, strategy: Strategy, now: float) -> Move:
    """SPEC's matrix for a key that already has a record.

    | strategy        | being started (live claim) | started                    |
    | RETURN_EXISTING | JOIN                       | JOIN (ended: answers 200)  |
    | FAIL            | CONFLICT                   | CONFLICT                   |
    | FAIL_ON_RUNNING | CONFLICT                   | CHECK_STATUS               |
    A claim whose lease has run out belongs to a request that died: TAKE_OVER, whatever the strategy.
    """
    if record.state is KeyState.CLAIMED and not record.lease_is_live(now):
        return Move.TAKE_OVER
    if strategy == "RETURN_EXISTING":
        return Move.JOIN
    if strategy == "FAIL" or record.state is KeyState.CLAIMED:
        return Move.CONFLICT
    return Move.CHECK_STATUS
