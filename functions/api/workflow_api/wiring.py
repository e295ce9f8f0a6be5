"""Where the service meets its adapters: built once per cold start from the settings, the same
way by the Lambda, local mode, the tests and the benchmark."""

import time
from typing import TYPE_CHECKING, Any

from .adapters.aws import dynamodb_waiting_client
from .adapters.idempotency_store import IdempotencyStore
from .adapters.run_records import RunRecords
from .adapters.run_signals import RunSignals
from .adapters.stepfunctions import StepFunctionsGateway
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
        catalog or WorkflowCatalog(config.workflow_state_machines, sfn.task_refs),
        sfn,
        RunRecords(table, retention, dynamodb_client),
        idempotency_keys or IdempotencyStore(table, retention, dynamodb_client),
        waiter,
        **(settings_options | options),
    )


def build_lifecycle(
    config: Settings,
    service: WorkflowService,
    *,
    stepfunctions: StepFunctionsGateway | None = None,
    catalog: WorkflowCatalog | None = None,
    dynamodb_client: "DynamoDBClient | None" = None,
) -> WorkflowLifecycle:
    """The lifecycle routes' service (start, status, terminate, retry, lists) over ``service``."""
    sfn = stepfunctions or StepFunctionsGateway()
    return WorkflowLifecycle(
        service,
        catalog or WorkflowCatalog(config.workflow_state_machines, sfn.task_refs),
        sfn,
        RunRecords(config.idempotency_table_name, config.idempotency_retention_days, dynamodb_client),
    )
