"""Task handlers for the ``slow_steps`` demo workflow: ``start_step``, ``final_step``.

The workflow runs long enough to show a synchronous call that returns before the run
ends: ``start_step`` completes at once (a target for ``waitUntilTaskRef``), a Wait
state then pauses for ``delaySeconds`` (so a short ``waitForSeconds`` answers 206),
and ``final_step`` closes the run.
"""

from typing import Any

DEFAULT_DELAY_SECONDS = 3
MAX_DELAY_SECONDS = 3600


class InvalidDelay(ValueError):
    """``delaySeconds`` is not an integer from 0 to ``MAX_DELAY_SECONDS``.

    Raised here rather than left to the Wait state, so the run fails with a readable
    error instead of a States.Runtime error about ``SecondsPath``.
    """


def start_step(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Validate ``input.delaySeconds`` and hand it to the Wait state.

    ``event`` is ``{"input": <execution input>}``, built by the state's ``Parameters``.
    """
    workflow_input = event.get("input")
    if not isinstance(workflow_input, dict):
        workflow_input = {}
    delay = workflow_input.get("delaySeconds", DEFAULT_DELAY_SECONDS)
    # bool is an int subclass: reject it explicitly, `true` is not a number of seconds.
    if isinstance(delay, bool) or not isinstance(delay, int):
        raise InvalidDelay(f"delaySeconds must be an integer, got {delay!r}")
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        raise InvalidDelay(f"delaySeconds must be 0..{MAX_DELAY_SECONDS}, got {delay}")
    return {"delaySeconds": delay}


def final_step(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Finish the run and report the pause; ``event`` is ``start_step``'s output."""
    return {"finished": True, "delaySeconds": event["delaySeconds"]}
