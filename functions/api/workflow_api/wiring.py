"""Where the service meets its adapters: built once per cold start from the settings, the same
way by the Lambda, local mode, the tests and the benchmark."""

from typing import TYPE_CHECKING, Any

from .adapters.aws import dynamodb_waiting_client
from .adapters.idempotency_store import IdempotencyStore
from .adapters.run_records import RunRecords
from .adapters.run_signals import RunSignals
from .adapters.stepfunctions import StepFunctionsGateway
from .adapters.wakeups import WakeupQueues
from .catalog import WorkflowCatalog
from .config import Settings
from .service import WorkflowService
from .waiting import shared_read_budget

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient


def build_service(
    config: Settings,
    *,
    stepfunctions: StepFunctionsGateway | None = None,
    catalog: WorkflowCatalog | None = None,
    idempotency_keys: IdempotencyStore | None = None,
    dynamodb_client: "DynamoDBClient | None" = None,
    sqs_client: "SQSClient | None" = None,
    **options: Any,
) -> WorkflowService:
    """``options`` override WorkflowService's keyword arguments (clocks, margins, budget)."""
    sfn = stepfunctions or StepFunctionsGateway()
    table, retention = config.idempotency_table_name, config.idempotency_retention_days
    settings_options: dict[str, Any] = {
        "max_wait_seconds": config.max_wait_seconds,
        "answer_margin_seconds": config.answer_margin_seconds,
        "lease_seconds": config.idempotency_lease_seconds,
        "read_budget": shared_read_budget(config.history_reads_per_second, config.history_reads_burst),
        # A waiting call's registration and item reads: tried once (adapters/aws.py, WAITING_CONFIG).
        "run_signals": RunSignals(table, retention, dynamodb_client or dynamodb_waiting_client()),
        "history_first_seconds": config.history_first_seconds,
        "history_fallback_seconds": config.history_fallback_seconds,
        "wakeups": WakeupQueues(config.wakeup_queue_prefix, sqs_client, url_prefix=config.wakeup_queue_url_prefix)
        if config.wakeup_queue_prefix
        else None,
    }
    return WorkflowService(
        catalog or WorkflowCatalog(config.workflow_state_machines, sfn.task_refs),
        sfn,
        RunRecords(table, retention, dynamodb_client),
        idempotency_keys or IdempotencyStore(table, retention, dynamodb_client),
        **(settings_options | options),
    )
