"""N simultaneous synchronous calls to the local API; prints one JSON line of results.

Run by run.py in its own process, so the callers' threads do not share the server's GIL.
Standard library only: ``python bench/load.py URL N '{"delaySeconds": 2}' WAIT_SECONDS``.
"""

import http.client
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit


def connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)


def call(url: str, body: bytes, wait_seconds: str, kept: http.client.HTTPConnection | None = None) -> dict[str, Any]:
    """One POST: latency (s), HTTP status, the run's own duration (s, from the body) and workflowId.

    ``kept``: a connection kept open between calls, as an SDK's HTTP client keeps its pool;
    without it the call opens a connection of its own and closes it."""
    began = time.perf_counter()
    connection = kept or connect(url)
    try:
        headers = {"Content-Type": "application/json", "waitForSeconds": wait_seconds}
        connection.request("POST", urlsplit(url).path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    except (OSError, http.client.HTTPException) as exc:
        connection.close()  # a kept one reconnects on its next request
        return {"latency": time.perf_counter() - began, "status": 0, "error": type(exc).__name__}
    finally:
        if kept is None:
            connection.close()
    latency = time.perf_counter() - began
    run = json.loads(payload) if response.status in (200, 206) else {}
    duration = (run["updateTime"] - run["createTime"]) / 1000 if run.get("status") == "COMPLETED" else None
    return {"latency": latency, "status": response.status, "duration": duration, "workflow_id": run.get("workflowId")}


def main() -> None:
    url, count, body, wait_seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4]
    results: list[dict[str, Any]] = [{} for _ in range(count)]
    ready = threading.Barrier(count + 1)

    def caller(i: int) -> None:
        ready.wait()
        results[i] = call(url, body, wait_seconds)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    ready.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    print(json.dumps({"wall": time.perf_counter() - began, "results": results}))


if __name__ == "__main__":
    main()
