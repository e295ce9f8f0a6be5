"""Builders of Step Functions execution histories, shaped like GetExecutionHistory's events.

The shapes follow what moto 5.2.5 and AWS return: ascending ``id``, ``previousEventId``, a
timezone-aware ``timestamp``, and one ``<camelType>EventDetails`` member where AWS has one.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2025, 11, 28, 20, 0, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp()) * 1000

LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:greet"


def _details_key(kind: str) -> str:
    return kind[0].lower() + kind[1:] + "EventDetails"


class HistoryBuilder:
    """Appends events one after the other, ``step_ms`` apart unless told otherwise."""

    def __init__(self, step_ms: int = 10) -> None:
        self.events: list[dict[str, Any]] = []
        self.step_ms = step_ms
        self.now_ms = 0

    def add(
        self, kind: str, details: dict[str, Any] | None = None, *, key: str | None = None, at_ms: int | None = None
    ):
        self.now_ms = self.now_ms + self.step_ms if at_ms is None else at_ms
        event: dict[str, Any] = {
            "timestamp": T0 + timedelta(milliseconds=self.now_ms),
            "type": kind,
            "id": len(self.events) + 1,
            "previousEventId": len(self.events),
        }
        if details is not None:
            event[key or _details_key(kind)] = details
        self.events.append(event)
        return self

    # Execution level ------------------------------------------------------------------------
    def started(self, workflow_input: Any, at_ms: int = 0) -> "HistoryBuilder":
        details = {
            "input": json.dumps(workflow_input),
            "inputDetails": {"truncated": False},
            "roleArn": "arn:aws:iam::123456789012:role/workflow",
        }
        return self.add("ExecutionStarted", details, at_ms=at_ms)

    def succeeded(self, output: Any) -> "HistoryBuilder":
        return self.add("ExecutionSucceeded", {"output": json.dumps(output), "outputDetails": {"truncated": False}})

    def failed(self, error: str, cause: str) -> "HistoryBuilder":
        return self.add("ExecutionFailed", {"error": error, "cause": cause})

    def aborted(self, error: str | None = None, cause: str | None = None) -> "HistoryBuilder":
        details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
        return self.add("ExecutionAborted", details)

    def timed_out(self) -> "HistoryBuilder":
        return self.add(
            "ExecutionTimedOut", {"error": "States.Timeout", "cause": "The execution timed out after 300 seconds."}
        )

    def redriven(self, count: int = 1) -> "HistoryBuilder":
        return self.add("ExecutionRedriven", {"redriveCount": count})

    # States ---------------------------------------------------------------------------------
    def entered(self, state_type: str, name: str, state_input: Any = None) -> "HistoryBuilder":
        details = {"name": name, "input": json.dumps(state_input if state_input is not None else {})}
        return self.add(f"{state_type}StateEntered", details, key="stateEnteredEventDetails")

    def exited(self, state_type: str, name: str, output: Any = None) -> "HistoryBuilder":
        details = {"name": name, "output": json.dumps(output if output is not None else {})}
        return self.add(f"{state_type}StateExited", details, key="stateExitedEventDetails")

    def lambda_attempt(self, state_input: Any, *, output: Any = None, error: tuple[str, str] | None = None):
        self.add("LambdaFunctionScheduled", {"resource": LAMBDA_ARN, "input": json.dumps(state_input)})
        self.add("LambdaFunctionStarted")
        if error is None:
            self.add("LambdaFunctionSucceeded", {"output": json.dumps(output)})
        else:
            self.add("LambdaFunctionFailed", {"error": error[0], "cause": error[1]})
        return self

    def task(self, name: str, state_input: Any, output: Any) -> "HistoryBuilder":
        """A Lambda Task state that succeeds on the first attempt."""
        self.entered("Task", name, state_input)
        self.lambda_attempt(state_input, output=output)
        return self.exited("Task", name, output)

    def task_failing(self, name: str, state_input: Any, error: str, cause: str) -> "HistoryBuilder":
        """A Lambda Task state whose Lambda raises and that has no Catch: no exit event."""
        self.entered("Task", name, state_input)
        return self.lambda_attempt(state_input, error=(error, cause))

    def wait(self, name: str, data: Any, seconds_ms: int) -> "HistoryBuilder":
        self.entered("Wait", name, data)
        self.now_ms += seconds_ms
        return self.exited("Wait", name, data)


def hello_world(name: str = "Ada", version: int = 2, step_ms: int = 10) -> HistoryBuilder:
    output = {"greeting": f"Hello, {name}!", "version": version}
    return HistoryBuilder(step_ms).started({"name": name}).task("greet", {"name": name}, output).succeeded(output)


def always_fails() -> HistoryBuilder:
    return (
        HistoryBuilder()
        .started({})
        .task_failing("explode", {}, "RuntimeError", "boom: the explode task always fails")
        .failed("RuntimeError", "boom: the explode task always fails")
    )


def map_run(items: list[str]) -> HistoryBuilder:
    """A Map state ``each`` running ``shout`` once per item, one iteration after the other."""
    history = HistoryBuilder().started({"items": items}).entered("Map", "each", {"items": items})
    history.add("MapStateStarted", {"length": len(items)})
    for index, item in enumerate(items):
        history.add("MapIterationStarted", {"name": "each", "index": index})
        history.task("shout", item, item.upper())
        history.add("MapIterationSucceeded", {"name": "each", "index": index})
    history.add("MapStateSucceeded")
    shouted = [item.upper() for item in items]
    return history.exited("Map", "each", shouted).succeeded(shouted)


def parallel_run() -> HistoryBuilder:
    """A Parallel state ``both`` with branches ``left`` and ``right``; right finishes first."""
    history = HistoryBuilder().started({"n": 1}).entered("Parallel", "both", {"n": 1})
    history.add("ParallelStateStarted")
    history.entered("Task", "left", {"n": 1}).entered("Task", "right", {"n": 1})
    history.lambda_attempt({"n": 1}, output={"side": "right"}).exited("Task", "right", {"side": "right"})
    history.lambda_attempt({"n": 1}, output={"side": "left"}).exited("Task", "left", {"side": "left"})
    history.add("ParallelStateSucceeded")
    out = [{"side": "left"}, {"side": "right"}]
    return history.exited("Parallel", "both", out).succeeded(out)
