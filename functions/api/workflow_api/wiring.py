"""Where the service meets its adapters: built once per cold start from the settings, the same
way by the Lambda, local mode, the tests and the benchmark."""

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .adapters.aws import dynamodb_waiting_client
from .adapters.idempotency_store import IdempotencyStore
from .adapters.run_records import RunRecords
from .adapters.run_signals import RunSignals
from .adapters.stepfunctions import StepFunctionsGateway
from .adapters.workflow_tags import WorkflowTags
from .catalog import WorkflowCatalog
from .config import Settings
from .lifecycle import WorkflowLifecycle
from .run_wait import RunWaiter
from .service import WorkflowService

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def build_service(
    config: Settings,
    *,
    stepfunctions: StepFunctionsGateway | None = None,
    catalog: WorkflowCatalog | None = None,
    idempotency_keys: IdempotencyStore | None = None,
    dynamodb_client: "DynamoDBClient | None" = None,
    clock: Any = time.monotonic,
    sleep: Any = time.sleep,
    **options: Any,
) -> WorkflowService:
    """``options`` override WorkflowService's keyword arguments (clocks, margins)."""
    sfn = stepfunctions or StepFunctionsGateway()
    table, retention = config.idempotency_table_name, config.idempotency_retention_days
    waiter = RunWaiter(
        sfn,
        # A waiting call's item reads: tried once (adapters/aws.py, WAITING_CONFIG).
        RunSignals(table, retention, dynamodb_client or dynamodb_waiting_client()),
        clock=clock,
        sleep=sleep,
        end_check_seconds=config.end_check_seconds,
    )
    settings_options: dict[str, Any] = {
        "max_wait_seconds": config.max_wait_seconds,
        "answer_margin_seconds": config.answer_margin_seconds,
        "lease_seconds": config.idempotency_lease_seconds,
        "clock": clock,
    }
    return WorkflowService(
        catalog or build_catalog(config, sfn),
        sfn,
        RunRecords(table, retention, dynamodb_client),
        idempotency_keys or IdempotencyStore(table, retention, dynamodb_client),
        waiter,
        **(settings_options | options),
    )


def build_catalog(
    config: Settings, stepfunctions: StepFunctionsGateway, clock: Callable[[], float] = time.monotonic
) -> WorkflowCatalog:
    """The workflows: the state machines tagged as such, read from AWS (catalog.py)."""
    return WorkflowCatalog(
        WorkflowTags().state_machines,
        stepfunctions.task_refs,
        cache_seconds=config.workflow_cache_seconds,
        refresh_floor_seconds=config.workflow_refresh_floor_seconds,
        clock=clock,
    )


def build_lifecycle(
    config: Settings,
    service: WorkflowService,
    *,
    stepfunctions: StepFunctionsGateway | None = None,
    catalog: WorkflowCatalog | None = None,
    dynamodb_client: "DynamoDBClient | None" = None,
) -> WorkflowLifecycle:
    """The lifecycle routes' service (start, status, terminate, retry, lists) over ``service``,
    sharing its catalog (one reading of the tags per container)."""
    sfn = stepfunctions or StepFunctionsGateway()
    return WorkflowLifecycle(
        service,
        catalog or service.catalog,
        sfn,
        RunRecords(config.idempotency_table_name, config.idempotency_retention_days, dynamodb_client),
    )
