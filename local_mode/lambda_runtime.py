"""Lambda functions of template.yaml run in-process, one module copy per concurrent "container".

A Lambda container handles one request at a time and keeps its module state between requests;
powertools' resolver relies on that (it holds the current event on the app object). Threads in
one process share modules, so each container here imports its own copy of the handler module,
and a container is lent to one invocation at a time, like Lambda's own concurrency model.
What powertools keeps process-wide (the current request, on its router class) is made
per thread by ``isolate_powertools_requests``.
"""

import importlib.util
import itertools
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from types import ModuleType
from typing import Any

from . import limits

Handler = Callable[[Any, Any], Any]
_module_ids = itertools.count()
_router_state = threading.local()


class _PerThread:
    """A data descriptor whose value belongs to the thread that set it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return getattr(_router_state, self.name, None)

    def __set__(self, obj: object, value: Any) -> None:
        setattr(_router_state, self.name, value)


class _PerThreadDict(MutableMapping[str, Any]):
    """A dict whose contents belong to the thread using it."""

    def __init__(self, name: str) -> None:
        self._name = f"dict_{name}"

    @property
    def _data(self) -> dict[str, Any]:
        data: dict[str, Any] | None = getattr(_router_state, self._name, None)
        if data is None:
            data = {}
            setattr(_router_state, self._name, data)
        return data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def isolate_powertools_requests() -> None:
    """Make what powertools keeps process-wide belong to the thread of one request.

    A Lambda process serves one request at a time; local mode serves many on threads, and
    powertools keeps some request state on *classes*, which copies of the handler module share:
    - the resolver's request (``BaseRouter.current_event = ...``): two requests at once read each
      other's event (seen: a caller got another caller's run). The class attribute is set on the
      class (through the metaclass) and read on instances (through the class), so the descriptor
      sits in both places;
    - Metrics' metric, dimension and metadata sets (class-level dicts every ``Metrics()`` shares):
      one request's flush iterated the set while another added to it, and the handler crashed
      with "dictionary changed size during iteration" (seen: a 502 in CI). Only ``Metrics``
      created after this call get the per-thread sets, so local mode calls it before it loads a
      handler, and the test suite before anything imports one;
    - the Logger's appended keys (the correlation id, the Lambda context's keys), kept on the one
      formatter every copy of the handler's Logger shares: a log line could carry another
      request's ``correlation_id``. Powertools also keeps keys per thread (its ``thread_safe_*``
      methods, which every log line includes); local mode appends there.
    """
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
    from aws_lambda_powertools.metrics import Metrics

    if isinstance(BaseRouter.__dict__.get("current_event"), _PerThread):
        return
    Logger.append_keys = Logger.thread_safe_append_keys  # type: ignore[method-assign]
    Logger.remove_keys = Logger.thread_safe_remove_keys  # type: ignore[method-assign]
    Logger.get_current_keys = Logger.thread_safe_get_current_keys  # type: ignore[method-assign]
    Logger.get_correlation_id = lambda self: self.thread_safe_get_current_keys().get("correlation_id")  # type: ignore[method-assign]
    names = ("current_event", "lambda_context")
    meta = type(BaseRouter)
    per_thread_meta = type(f"PerThread{meta.__name__}", (meta,), {name: _PerThread(name) for name in names})
    for name in names:
        setattr(BaseRouter, name, _PerThread(name))
    BaseRouter.__class__ = per_thread_meta  # type: ignore[method-assign]
    for name in ("_metrics", "_dimensions", "_metadata"):
        setattr(Metrics, name, _PerThreadDict(name))


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

    def load_module(self, prefix: str = "_local_lambda") -> ModuleType:
        """A fresh copy of the handler's module, importing its own packages as Lambda would."""
        isolate_powertools_requests()
        module_name = self.handler.rpartition(".")[0]
        path = self.code_dir / (module_name.replace(".", "/") + ".py")
        if str(self.code_dir) not in sys.path:
            # So the handler's own packages (e.g. workflow_api) import as they do in Lambda.
            sys.path.insert(0, str(self.code_dir))
        spec = importlib.util.spec_from_file_location(f"{prefix}_{next(_module_ids)}_{module_name}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def _new_container(self) -> Handler:
        handler: Handler = getattr(self.load_module(), self.handler.rpartition(".")[2])
        return handler

    def invoke(self, event: Any) -> Any:
        """Runs the handler in an idle container, or a new one; holds one of Lambda's concurrent
        executions meanwhile (LambdaThrottled when none is free, before any code runs)."""
        with limits.lambdas.invocation(self.name):
            return self._invoke(event)

    def _invoke(self, event: Any) -> Any:
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
