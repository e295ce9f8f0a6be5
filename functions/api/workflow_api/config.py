"""Settings read once from the environment that template.yaml sets (local mode sets the same)."""

import os
from collections.abc import Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, Json, PositiveInt


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    # {"hello_world": {"1": "arn:...:stateMachine:...", "2": "..."}}: one state machine per version.
    workflow_state_machines: Json[dict[str, dict[PositiveInt, str]]] = Field(alias="WORKFLOW_STATE_MACHINES")
    max_wait_seconds: int = Field(default=25, ge=0, le=27, alias="MAX_WAIT_SECONDS")
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME")
    idempotency_retention_days: int = Field(default=90, ge=1, alias="IDEMPOTENCY_RETENTION_DAYS")
    # A claim on an idempotency key older than this belongs to a request that died (the API
    # Lambda's timeout is 35 s): another request may take it over.
    idempotency_lease_seconds: float = Field(default=40, gt=0, alias="IDEMPOTENCY_LEASE_SECONDS")
    # History reads shared by every request this process waits on (a token bucket); the defaults
    # are GetExecutionHistory's own account quota (refill 20/s, bucket 400), so local mode, where
    # one process serves every caller, waits as the whole account would be allowed to.
    history_reads_per_second: float = Field(default=20, gt=0, alias="HISTORY_READS_PER_SECOND")
    history_reads_burst: float = Field(default=400, ge=1, alias="HISTORY_READS_BURST")
    # Waiters learn of a run's end from run_status's item (EventBridge); without a task reference
    # to wait for they read the history in their first seconds (EventBridge's delivery delay would
    # add to the lag of short runs; 0 spares the quota instead), then only when that item says the
    # run ended, and at least every fallback seconds in case the event is late or lost.
    history_first_seconds: float = Field(default=2.0, ge=0, alias="HISTORY_FIRST_SECONDS")
    history_fallback_seconds: float = Field(default=5.0, gt=0, alias="HISTORY_FALLBACK_SECONDS")
    # Waiters block on an SQS queue of their own (named with this prefix) for their run's end,
    # which run_status sends there; unset, they poll for it (adapters/wakeups.py).
    wakeup_queue_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,48}$", alias="WAKEUP_QUEUE_PREFIX")
    # Those queues' URL up to the queue's id, as run_status builds it to send a run's end to the
    # queue the run is named for (adapters/wakeups.py, run_name); unset, every waiter registers.
    wakeup_queue_url_prefix: str | None = Field(default=None, pattern=r"^https://\S+$", alias="WAKEUP_QUEUE_URL_PREFIX")
    # Time kept back, from the Lambda's or API Gateway's time left, for the last history read
    # (tried once, 1 s to connect and 2 s to read: adapters/aws.py) and the answer.
    answer_margin_seconds: float = Field(default=3.5, ge=0, alias="ANSWER_MARGIN_SECONDS")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        return cls.model_validate(dict(os.environ if environ is None else environ))


@cache
def settings() -> "Settings":
    return Settings.from_environment()
