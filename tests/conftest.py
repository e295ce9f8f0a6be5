"""Fixtures shared by the layers: the template's stack on moto, the events in events/, and the
local server over real HTTP."""

import collections
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_mode.lambda_runtime import isolate_powertools_requests

# Before any test imports a handler: its Metrics must get the per-thread sets local mode gives
# them, because in-process tests run handlers on threads as local mode does.
isolate_powertools_requests()

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "the condition") -> Any:
    """``condition()``'s first truthy value, polled until ``timeout`` seconds have passed: a bound
    on waiting for something to happen, never a wait for time to pass."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@pytest.fixture(scope="session")
def local_aws() -> Iterator[Any]:
    """The stack of template.yaml on in-process moto, as local mode builds it."""
    from local_mode.aws import LocalAws

    with LocalAws() as aws:
        yield aws


class LocalServer:
    def __init__(self, url: str, process: "subprocess.Popen[str]") -> None:
        self.url = url
        self.process = process
        self.api = f"{url}/api"
        self.output_tail: collections.deque[str] = collections.deque(maxlen=200)


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    """``make run``'s server in its own process on a free loopback port; stopped at the end."""
    with running_local_server({"LOCAL_CONDUCTOR_KEYS": ""}) as server:  # key auth off, whatever the shell says
        yield server


@contextlib.contextmanager
def running_local_server(extra_env: dict[str, str] | None = None, *args: str) -> Iterator[LocalServer]:
    """``make run``'s server with ``extra_env`` (e.g. LOCAL_CONDUCTOR_KEYS) and ``args`` (e.g.
    --template) on a free loopback port."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "local_mode.server", "--host", "127.0.0.1", "--port", "0", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()  # printed once the socket listens
    found = re.search(r"(http://127\.0\.0\.1:\d+)/api", banner)
    if not found:
        process.kill()
        rest = process.stdout.read()
        raise RuntimeError(f"local server did not start: {banner}{rest}")
    server = LocalServer(found.group(1), process)
    # The server prints a line per request into this pipe: read it as it comes, or once the pipe
    # is full (64 KiB) the next print blocks the request it reports. The tail is kept for failures.
    stdout = process.stdout

    def drain() -> None:
        for line in stdout:
            server.output_tail.append(line[:8000])

    threading.Thread(target=drain, name="local-server-output", daemon=True).start()
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used the local server gets the server's last lines in its report: a race
    seen once on a CI machine is otherwise gone with the process."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("local_server")
    if report.failed and isinstance(server, LocalServer):
        report.sections.append(("local server output (last lines)", "".join(server.output_tail)))
