"""Step Functions statuses in Conductor's words, and which of them end a run."""

from enum import StrEnum


class WorkflowStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    TERMINATED = "TERMINATED"

    @property
    def is_terminal(self) -> bool:
        return self is not WorkflowStatus.RUNNING


class TaskStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELED = "CANCELED"


_FROM_STEP_FUNCTIONS = {
    "RUNNING": WorkflowStatus.RUNNING,
    "SUCCEEDED": WorkflowStatus.COMPLETED,
    "FAILED": WorkflowStatus.FAILED,
    "TIMED_OUT": WorkflowStatus.TIMED_OUT,
    "ABORTED": WorkflowStatus.TERMINATED,
    # A failed run waiting to be redriven has failed as far as its caller can tell.
    "PENDING_REDRIVE": WorkflowStatus.FAILED,
}

# The history event that ends an execution, and the status it means.
TERMINAL_EVENTS = {
    "ExecutionSucceeded": WorkflowStatus.COMPLETED,
    "ExecutionFailed": WorkflowStatus.FAILED,
    "ExecutionTimedOut": WorkflowStatus.TIMED_OUT,
    "ExecutionAborted": WorkflowStatus.TERMINATED,
}

# What an unfinished task became when the run ended under it.
OPEN_TASK_WHEN_RUN_ENDED = {
    WorkflowStatus.COMPLETED: TaskStatus.COMPLETED,
    WorkflowStatus.FAILED: TaskStatus.FAILED,
    WorkflowStatus.TIMED_OUT: TaskStatus.TIMED_OUT,
    WorkflowStatus.TERMINATED: TaskStatus.CANCELED,
}


def from_step_functions(status: str) -> WorkflowStatus:
    """Map an execution status; an unknown future status reads as still running."""
    return _FROM_STEP_FUNCTIONS.get(status, WorkflowStatus.RUNNING)
