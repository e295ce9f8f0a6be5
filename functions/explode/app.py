"""Task handler for the ``explode`` state of the ``always_fails`` demo workflow.

It always raises, so every run of ``always_fails`` ends FAILED: that shows how a
failed run looks through the API (status FAILED, ``reasonForIncompletion`` holding
the error and its cause).
"""

from typing import Any

FAILURE_MESSAGE = "explode always fails: this workflow demonstrates a FAILED run"


class WorkflowExploded(Exception):
    """The deliberate failure; Lambda reports the class name as the error type."""


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Raise ``WorkflowExploded`` whatever the input."""
    raise WorkflowExploded(FAILURE_MESSAGE)
