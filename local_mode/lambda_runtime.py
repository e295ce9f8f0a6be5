"""Lambda functions of template.yaml run in-process, one module copy per concurrent "container".

A Lambda container handles one request at a time and keeps its module state between requests;
powertools' resolver relies on that (it holds the current event on the app object). Threads in
one process share modules, so each container here imports its own copy of the handler module,
and a container is lent to one invocation at a time, like Lambda's own concurrency model.
"""

import importlib.util
import itertools
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from types import ModuleType
from typing import Any

Handler = Callable[[Any, Any], Any]
_module_ids = itertools.count()


@dataclass
class LambdaContext:
    """What a handler reads of its context; the deadline comes from the function's Timeout."""

    function_name: str
    timeout_seconds: float
    memory_limit_in_mb: int = 128
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    invoked_function_arn: str = ""
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class LocalFunction:
    """One AWS::Serverless::Function: where its code is, and its warm containers."""

    name: str
    arn: str
    code_dir: Path
    handler: str  # "module.function", as in the template
    timeout_seconds: float
    memory_mb: int
    _idle: list[Handler] = field(default_factory=list)
    _lock: Lock = field(default_factory=Lock)

    def _new_container(self) -> Handler:
        module_name, _, function_name = self.handler.rpartition(".")
        path = self.code_dir / (module_name.replace(".", "/") + ".py")
        if str(self.code_dir) not in sys.path:
            # So the handler's own packages (e.g. workflow_api) import as they do in Lambda.
            sys.path.insert(0, str(self.code_dir))
        spec = importlib.util.spec_from_file_location(f"_local_lambda_{next(_module_ids)}_{module_name}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        handler: Handler = getattr(module, function_name)
        return handler

    def invoke(self, event: Any) -> Any:
        with self._lock:
            container = self._idle.pop() if self._idle else None
        if container is None:
            container = self._new_container()
        try:
            context = LambdaContext(
                function_name=self.name,
                timeout_seconds=self.timeout_seconds,
                memory_limit_in_mb=self.memory_mb,
                invoked_function_arn=self.arn,
            )
            return container(event, context)
        finally:
            with self._lock:
                self._idle.append(container)
