"""Task handler for the ``greet`` state of the ``hello_world`` demo workflow.

Both versions of ``hello_world`` share this one function: each state machine passes
its own version number in the task parameters, so the output shows which version ran
without deploying the same code twice.
"""

from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Greet ``input.name`` (default "World") and echo the workflow version.

    ``event`` is ``{"input": <execution input>, "version": <int>}``, built by the
    state's ``Parameters``.
    """
    workflow_input = event.get("input")
    if not isinstance(workflow_input, dict):
        workflow_input = {}
    name = str(workflow_input.get("name", "World"))
    return {"greeting": f"Hello, {name}!", "version": event["version"]}
