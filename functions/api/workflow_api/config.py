"""Settings read once from the environment that template.yaml sets (local mode sets the same)."""

import os
from collections.abc import Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    # The workflows are the state machines tagged workflow:name and workflow:version (catalog.py):
    # read again once this old, so tagging or untagging one needs no redeploy.
    workflow_cache_seconds: float = Field(default=60.0, ge=0, alias="WORKFLOW_CACHE_SECONDS")
    # A name or version the catalog lacks makes it read the tags again at once, but no more often
    # than this: calls for names that do not exist cannot make it hammer the Tagging API.
    workflow_refresh_floor_seconds: float = Field(default=5.0, ge=0, alias="WORKFLOW_REFRESH_FLOOR_SECONDS")
    max_wait_seconds: int = Field(default=25, ge=0, le=27, alias="MAX_WAIT_SECONDS")
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME")
    idempotency_retention_days: int = Field(default=90, ge=1, alias="IDEMPOTENCY_RETENTION_DAYS")
    # A claim on an idempotency key older than this belongs to a request that died (the API
    # Lambda's timeout is 35 s): another request may take it over.
    idempotency_lease_seconds: float = Field(default=40, gt=0, alias="IDEMPOTENCY_LEASE_SECONDS")
    # A waiting call learns of its run's end from run_status's item (EventBridge's event); it also
    # asks Step Functions itself (DescribeExecution) this often, so an event that EventBridge never
    # delivers delays an answer by at most this long (run_wait.py). 15 s: any wait of up to 25 s
    # then makes at most one such check, and at most 2 Step Functions reads in all.
    end_check_seconds: float = Field(default=15.0, gt=0, alias="END_CHECK_SECONDS")
    # Time kept back, from the Lambda's or API Gateway's time left, for the last history read
    # (tried once, 1 s to connect and 2 s to read: adapters/aws.py) and the answer.
    # At least a waiting call's read stalled to both timeouts (3 s) plus the answer (0.25 s).
    answer_margin_seconds: float = Field(default=3.5, ge=3.25, alias="ANSWER_MARGIN_SECONDS")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        return cls.model_validate(dict(os.environ if environ is None else environ))


@cache
def settings() -> "Settings":
    return Settings.from_environment()
