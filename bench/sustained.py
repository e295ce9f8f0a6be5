"""Sustained load: open-loop arrivals of 1 s ``slow_steps`` runs at a fixed rate, AWS's quotas on.

Each row sends calls on a fixed schedule (call i at ``i / rate`` s, whatever the earlier calls are
doing: open loop), each ``POST /api/workflow/execute/slow_steps`` with ``{"delaySeconds": 1}`` and
``waitForSeconds`` 10, from a load process of its own (this file with ``--load``, standard library
only, a thread per call) so the callers do not share the server's GIL. The server is local mode in
the calling process. Per row: the calls sent, the share answered 200 and 206, errors by kind, the
time from the run's end (moto's ``stopDate``) to the answer in the caller's hands, the Step
Functions reads (DescribeExecution + GetExecutionHistory) the API function made per answer (a
botocore ``before-call`` hook, calls on the HTTP server's request threads only), the calls AWS's
quotas throttled, and "ended runs answered 206": 206 answers that arrived after their run's
``stopDate``. The stop dates are read from moto's backend after the row, so the bench's own reads
never spend the emulated quotas.

Self-contained (it imports only ``local_mode`` of the tree it sits in), so it also runs in a
checkout of an earlier design: ``python bench/sustained.py [--rates 5,20,50] [--seconds 30]
[--json FILE]``. ``bench/run.py`` uses ``sustained_section``.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
RATES, SECONDS, RUN_SECONDS, WAIT_SECONDS = (5, 20, 50), 30, 1, 10
MAX_THREADS = 2000  # in-flight calls of the load process; a call over it is an error ("thread cap")
# A row has fallen behind when its calls queue up in the server: the median latency of the last
# third of its arrivals exceeds the first third's by more than BEHIND_GROWTH_S, or exceeds
# BEHIND_LATENCY_S (a 1 s run answered in over 3 s), or a call could not be sent on time.
BEHIND_GROWTH_S, BEHIND_LATENCY_S = 0.5, 3.0
PROBE_SECONDS = 12  # the shorter rows that look for the highest rate the machine sustains
SFN_READS = ("DescribeExecution", "GetExecutionHistory")

# (wall time, operation, attempt or call) of every Step Functions call on a request thread.
_CALLS: list[tuple[float, str, str]] = []
# (wall time, operation, execution ARN, outcome) as each read of a run's state returns (the API
# function's DescribeExecution, GetExecutionHistory and GetItem of the run's item) and as
# run_status's PutItem of the end returns: the story of any ended run answered 206.
_TRACE: list[tuple[float, str, str, str]] = []
TRACED = ("DescribeExecution", "GetExecutionHistory", "GetItem", "PutItem")
SETTLE_S = 90  # at most, between rows: until no run is RUNNING and no EventBridge delivery is due


def _error_message(payload: bytes) -> str:
    """What an error answer says, without what differs per call (the requestId in ``instance``),
    so errors of one kind count together."""
    try:
        body = json.loads(payload)
    except ValueError:
        body = None
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])[:120]
    return payload[:120].decode(errors="replace")


def _on_request_thread() -> bool:
    """The API function runs on local mode's HTTP request threads (ThreadingHTTPServer's)."""
    return "process_request" in threading.current_thread().name


def _count_call(model: Any, params: Any = None, context: Any = None, **_: Any) -> None:
    """botocore ``before-call``: one per API call the function makes (botocore's retries inside)."""
    on_request = _on_request_thread()
    if model.service_model.service_name == "stepfunctions" and on_request:
        _CALLS.append((time.time(), model.name, "call"))
    traced = on_request or (model.name == "PutItem" and threading.current_thread().name == "eventbridge")
    if model.name in TRACED and traced and context is not None:
        try:
            body = json.loads((params or {}).get("body") or b"{}")
        except ValueError:
            return
        key = (body.get("Key") or body.get("Item") or {}).get("pk", {}).get("S", "")
        arn = body.get("executionArn") or (key[len("status#") :] if key.startswith("status#") else "")
        if arn:
            context["sustained_arn"] = arn


def _trace(model: Any, parsed: Any = None, context: Any = None, **_: Any) -> None:
    """botocore ``after-call``: what each traced read told (or that AWS refused it)."""
    arn = (context or {}).get("sustained_arn")
    if not arn:
        return
    parsed = parsed or {}
    error = (parsed.get("Error") or {}).get("Code")
    if error:
        outcome = f"error {error}"
    elif model.name == "DescribeExecution":
        outcome = str(parsed.get("status"))
    elif model.name == "GetItem":
        outcome = "end" if "stopDate" in (parsed.get("Item") or {}) else "no end"
    elif model.name == "PutItem":
        outcome = "end recorded (run_status)"
    else:
        outcome = f"{len(parsed.get('events') or [])} events"
    _TRACE.append((time.time(), model.name, arn, outcome))


def _count_attempt(request: Any = None, **_: Any) -> None:
    """botocore ``before-send``: one per HTTP attempt (a retried call counts each try)."""
    target = (request.headers.get("X-Amz-Target") or b"") if request is not None else b""
    target = target.decode() if isinstance(target, bytes) else str(target)
    if target.startswith("AWSStepFunctions.") and _on_request_thread():
        _CALLS.append((time.time(), target.split(".", 1)[1], "attempt"))


def _count_refusal(model: Any, http_response: Any = None, parsed: Any = None, **_: Any) -> None:
    """botocore ``after-call``: a call that failed with a throttling error (after botocore's retries)."""
    if model.service_model.service_name == "stepfunctions" and _on_request_thread():
        code = ((parsed or {}).get("Error") or {}).get("Code")
        if code in ("ThrottlingException", "ThrottledException", "RequestLimitExceeded"):
            _CALLS.append((time.time(), model.name, "throttled"))


def install_hooks() -> None:
    """Before local mode starts: every botocore session built from now on carries the hooks
    (moto's own ``before-send`` answers the request, so ours goes first)."""
    from botocore.handlers import BUILTIN_HANDLERS

    if ("before-call", _count_call) in BUILTIN_HANDLERS:
        return
    BUILTIN_HANDLERS.insert(0, ("before-send", _count_attempt))
    BUILTIN_HANDLERS.append(("before-call", _count_call))
    BUILTIN_HANDLERS.append(("after-call", _count_refusal))
    BUILTIN_HANDLERS.append(("after-call", _trace))


def _limits() -> Any:
    """local_mode.limits (AWS's quotas in local mode), or None in a tree that has none."""
    try:
        from local_mode import limits
    except ImportError:
        return None
    return limits


def describe_limits() -> str:
    limits = _limits()
    return limits.describe() if limits is not None else "no local_mode.limits: AWS quotas NOT emulated"


def eventbridge_delay_ms() -> float | None:
    limits = _limits()
    return round(limits.eventbridge.delay_s * 1000, 2) if limits is not None else None


@contextmanager
def local_api() -> Iterator[tuple[Any, str]]:
    """LocalAws plus LocalApiServer on 127.0.0.1:0 in a thread: (aws, base URL), as run.py's."""
    from local_mode.aws import LocalAws
    from local_mode.server import LocalApiServer

    aws = LocalAws().start()
    server = LocalApiServer(("127.0.0.1", 0), aws)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    try:
        yield aws, server.url
    finally:
        server.shutdown()
        server.server_close()
        aws.stop()


# --- the load process (standard library only) ---------------------------------------------------


def _one_call(url: str, body: bytes, timeout: float, scheduled: float) -> dict[str, Any]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    sent = time.time()
    record: dict[str, Any] = {"scheduled": scheduled, "sent": sent}
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json", "waitForSeconds": str(WAIT_SECONDS)}
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        record["arrived"] = time.time()
        record["status"] = response.status
        if response.status in (200, 206):
            run = json.loads(payload)
            record["workflow_id"] = run.get("workflowId")
            record["run_status"] = run.get("status")
            record["tasks"] = len(run.get("tasks") or [])
        else:
            record["error"] = f"HTTP {response.status}: {_error_message(payload)}"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        record["arrived"] = time.time()
        record["status"] = 0
        record["error"] = type(exc).__name__
    finally:
        connection.close()
    return record


def load(url: str, rate: float, seconds: float, hard_limit: float) -> dict[str, Any]:
    """Open-loop arrivals: call i is sent at ``start + i / rate``, on a thread of its own."""
    body = json.dumps({"delaySeconds": RUN_SECONDS}).encode()
    count = max(1, round(rate * seconds))
    results: list[dict[str, Any]] = [{} for _ in range(count)]
    threads: list[threading.Thread] = []
    start = time.monotonic() + 0.2
    wall_start = time.time() + 0.2
    deadline = start + hard_limit

    def caller(i: int, scheduled: float) -> None:
        results[i] = _one_call(url, body, WAIT_SECONDS + 20, scheduled)

    for i in range(count):
        due = start + i / rate
        if (pause := due - time.monotonic()) > 0:
            time.sleep(pause)
        scheduled = wall_start + i / rate
        if threading.active_count() > MAX_THREADS:
            results[i] = {"scheduled": scheduled, "sent": time.time(), "status": 0, "error": "thread cap"}
            continue
        thread = threading.Thread(target=caller, args=(i, scheduled), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for i, result in enumerate(results):
        if not result:
            results[i] = {"scheduled": wall_start + i / rate, "status": 0, "error": "no answer within the time limit"}
    return {"rate": rate, "seconds": seconds, "results": results}


# --- the server side ------------------------------------------------------------------------------


def _percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _run_dates(aws: Any, workflow_ids: list[str]) -> dict[str, tuple[float | None, float | None]]:
    """(startDate, stopDate) as epoch seconds from moto's backend, not through the API (and its quota)."""
    from moto.stepfunctions.responses import get_backend

    machine = aws.state_machine_arn("slow_steps", 1)
    backend = get_backend(machine.split(":")[4], machine.split(":")[3])
    dates: dict[str, tuple[float | None, float | None]] = {}
    for workflow_id in workflow_ids:
        execution = backend.describe_execution(_arn(aws, workflow_id))
        dates[workflow_id] = (_epoch(execution.start_date), _epoch(execution.stop_date))
    return dates


def _epoch(moment: Any) -> float | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return float(moment.timestamp())


def _arn(aws: Any, workflow_id: str) -> str:
    machine = aws.state_machine_arn("slow_steps", 1)
    return machine.replace(":stateMachine:", ":execution:") + ":" + workflow_id.split(".", 2)[2]


def _stories(aws: Any, answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each answer: its times and every traced call on its run, in ms from the run's stopDate."""
    stories = []
    for r in answers:
        arn, stop = _arn(aws, r["workflow_id"]), r["stop"]
        stories.append(
            {
                "workflow_id": r["workflow_id"],
                "ms_from_stop": {
                    "sent": _ms(r["sent"] - stop),
                    "run_started": _ms(r["start"] - stop) if r.get("start") else None,
                    "answer_arrived": _ms(r["arrived"] - stop),
                },
                "calls": [(_ms(at - stop), op, outcome) for at, op, traced, outcome in list(_TRACE) if traced == arn],
            }
        )
    return stories


def settle(aws: Any) -> float:
    """Wait (up to SETTLE_S) until no slow_steps run is RUNNING and no EventBridge delivery is
    due, so a row does not inherit the work of the one before; answers the seconds waited."""
    from moto.stepfunctions.responses import get_backend

    machine = aws.state_machine_arn("slow_steps", 1)
    backend = get_backend(machine.split(":")[4], machine.split(":")[3])
    limits = _limits()
    began = time.monotonic()
    while time.monotonic() - began < SETTLE_S:
        running = backend.list_executions(machine, status_filter="RUNNING")
        running = running[0] if isinstance(running, tuple) else running  # moto answers (executions, token)
        due = len(getattr(limits.eventbridge, "_due", [])) if limits is not None else 0
        delivering = any(t.name == "eventbridge" for t in threading.enumerate())
        if not running and not due and not delivering:
            break
        time.sleep(0.5)
    return round(time.monotonic() - began, 1)


def row(aws: Any, url: str, rate: float, seconds: float, include_tasks: bool = True) -> dict[str, Any]:
    """One row: ``rate`` calls a second for ``seconds``, from the load process; a fresh account's
    quotas at its start (full buckets, as after a quiet spell)."""
    limits = _limits()
    settled_s = settle(aws)
    if limits is not None:
        limits.reset()
    _TRACE.clear()
    query = "" if include_tasks else "?includeTasks=false"
    target = f"{url}/api/workflow/execute/slow_steps{query}"
    first = len(_CALLS)
    answers_before = _SERVER_ANSWERS.snapshot()
    hard_limit = seconds + WAIT_SECONDS + 40
    done = subprocess.run(
        [sys.executable, __file__, "--load", target, str(rate), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        timeout=hard_limit + 30,
    )
    drained_s = _drain(aws)  # calls whose caller gave up still run: their reads and answers count
    throttled_by_limits = limits.throttled() if limits is not None else None
    calls = _CALLS[first:]
    server_answers = _SERVER_ANSWERS.since(answers_before)
    results = json.loads(done.stdout)["results"]
    answered = [r for r in results if r.get("status") in (200, 206)]
    time.sleep(0.5)  # a run answered 206 may still be ending
    dates = _run_dates(aws, [r["workflow_id"] for r in answered if r.get("workflow_id")])
    for r in answered:
        r["start"], r["stop"] = dates.get(r.get("workflow_id"), (None, None))
    ok = [r for r in answered if r["status"] == 200]
    partial = [r for r in answered if r["status"] == 206]
    after_end = [r["arrived"] - r["stop"] for r in ok if r.get("stop") is not None]
    ended_206 = [r for r in partial if r.get("stop") is not None and r["stop"] < r["arrived"]]
    stories = _stories(aws, ended_206[:10])
    durations = [r["stop"] - r["start"] for r in answered if r.get("stop") is not None and r.get("start") is not None]
    latencies = sorted(((r["sent"], r["arrived"] - r["sent"]) for r in answered), key=lambda pair: pair[0])
    third = max(1, len(latencies) // 3)
    early = statistics.median(lat for _, lat in latencies[:third]) if latencies else None
    late = statistics.median(lat for _, lat in latencies[-third:]) if latencies else None
    slips = [r["sent"] - r["scheduled"] for r in results if "sent" in r]
    reads = Counter(op for _, op, kind in calls if kind == "call" and op in SFN_READS)
    attempts = Counter(op for _, op, kind in calls if kind == "attempt" and op in SFN_READS)
    refused = Counter(op for _, op, kind in calls if kind == "throttled")
    all_ops = Counter(op for _, op, kind in calls if kind == "call")
    errors = Counter(r["error"] for r in results if r.get("status") not in (200, 206))
    n = len(results)
    server_done = server_answers.get("200", 0) + server_answers.get("206", 0)
    behind = bool(
        errors
        or (late is not None and early is not None and late - early > BEHIND_GROWTH_S)
        or (late is not None and late > BEHIND_LATENCY_S)
        or (slips and max(slips) > 1.0)
    )
    return {
        "rate": rate,
        "seconds": seconds,
        "include_tasks": include_tasks,
        "sent": n,
        "share_200": round(len(ok) / n, 4),
        "share_206": round(len(partial) / n, 4),
        "answered_200": len(ok),
        "answered_206": len(partial),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "after_end_ms": {"p50": _ms(_percentile(after_end, 50)), "p95": _ms(_percentile(after_end, 95))},
        "sfn_reads": dict(reads),
        # Per answer the API function gave (200 or 206), whether or not its caller was still there.
        "sfn_reads_per_answer": round(sum(reads.values()) / server_done, 2) if server_done else None,
        "server_answers": server_answers,
        "drained_after_s": drained_s,
        "sfn_read_attempts": dict(attempts),
        "sfn_calls_by_api": dict(all_ops),
        "throttled": throttled_by_limits if throttled_by_limits is not None else dict(refused),
        "throttled_seen_by_caller": dict(refused),
        "ended_runs_answered_206": len(ended_206),
        "ended_206_ms_before_answer": sorted(_ms(r["arrived"] - r["stop"]) for r in ended_206)[:20],
        "ended_206_stories": stories,
        "settled_before_s": settled_s,
        "tasks_p50": statistics.median(r.get("tasks", 0) for r in ok) if ok else None,
        "latency_s": {
            "p50": round(statistics.median(lat for _, lat in latencies), 3) if latencies else None,
            "first_third_p50": round(early, 3) if early is not None else None,
            "last_third_p50": round(late, 3) if late is not None else None,
        },
        "run_duration_s_p50": round(statistics.median(durations), 3) if durations else None,
        "send_slip_ms_max": _ms(max(slips)) if slips else None,
        "behind": behind,
    }


class _AnswerCount:
    """stdout while the section runs: local mode's line for each request ("POST /api/... -> 200 in
    12 ms") is counted by status, not printed."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if "/execute/slow_steps" in text and " -> " in text:
            with self._lock:
                self.statuses[text.rsplit(" -> ", 1)[1].split(maxsplit=1)[0]] += 1
        return len(text)

    def flush(self) -> None:
        pass

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.statuses)

    def since(self, before: Counter[str]) -> dict[str, int]:
        return dict(self.snapshot() - before)


_SERVER_ANSWERS = _AnswerCount()


def _drain(aws: Any, limit_s: float = 45) -> float:
    """Wait until the API function runs no call (its callers may have timed out), at most ``limit_s``."""
    limits = _limits()
    began = time.monotonic()
    name = aws.api_function.name
    while limits is not None and limits.lambdas.running().get(name) and time.monotonic() - began < limit_s:
        time.sleep(0.25)
    return round(time.monotonic() - began, 1)


class _Quieter:
    """stderr while the section runs: local mode's line for each call Lambda throttles (hundreds
    when a rate overloads the machine) is counted, not printed; anything else goes through."""

    def __init__(self, out: Any) -> None:
        self.out, self.dropped, self._last_dropped = out, 0, False

    def write(self, text: str) -> int:
        if "Lambda throttled the API function" in text:
            self.dropped += 1
            self._last_dropped = True
            return len(text)
        if self._last_dropped and not text.strip():
            self._last_dropped = False
            return len(text)
        self._last_dropped = False
        return int(self.out.write(text))

    def flush(self) -> None:
        self.out.flush()


def sustained_section(
    aws: Any,
    url: str,
    rates: tuple[float, ...] | None = None,
    seconds: float | None = None,
    progress: Any = None,
    budget_s: float = 900,
) -> dict[str, Any]:
    """The rows at ``rates``, each with and without ``includeTasks=false``. A rate the server does
    not sustain (``behind``) is kept, marked; then the highest rate it sustains is looked for with
    shorter probes (each ~0.75x the last) and run in full. ``budget_s`` bounds the whole section:
    rows that would not fit are skipped, and said so."""
    rates, seconds = rates or RATES, seconds or SECONDS
    out, err = sys.stdout, sys.stderr
    sys.stdout = _SERVER_ANSWERS  # type: ignore[assignment]  # the server prints a line per request
    sys.stderr = quieter = _Quieter(err)
    try:
        section = _section(aws, url, rates, seconds, progress, budget_s)
    finally:
        sys.stdout, sys.stderr = out, err
    section["lambda_throttled_api_calls_logged"] = quieter.dropped
    return section


def _section(
    aws: Any, url: str, rates: tuple[float, ...], seconds: float, progress: Any, budget_s: float
) -> dict[str, Any]:
    began = time.monotonic()
    say = progress or (lambda message: print(f"[sustained] {message}", file=sys.stderr, flush=True))
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    highest: float | None = None
    probes: list[dict[str, Any]] = []

    def fits(length: float) -> bool:
        return time.monotonic() - began + length + WAIT_SECONDS + 15 <= budget_s

    for rate in rates:
        for include_tasks in (True, False):
            if not fits(seconds):
                skipped.append(f"{rate}/s includeTasks={include_tasks}")
                continue
            result = row(aws, url, rate, seconds, include_tasks)
            rows.append(result)
            say(f"{rate}/s{'' if include_tasks else ' includeTasks=false'}: {summary(result)}")
    behind_rates = sorted({r["rate"] for r in rows if r["behind"] and r["include_tasks"]})
    sustained_rates = sorted({r["rate"] for r in rows if not r["behind"] and r["include_tasks"]})
    if behind_rates:
        low = max([r for r in sustained_rates if r < behind_rates[0]], default=0)
        rate = behind_rates[0]
        while True:
            rate = round(rate * 0.75)
            if rate <= low or not fits(PROBE_SECONDS):
                break
            probe = row(aws, url, rate, PROBE_SECONDS, True)
            probes.append(probe)
            say(f"probe {rate}/s for {PROBE_SECONDS} s: {summary(probe)}")
            if not probe["behind"]:
                highest = rate
                break
        if highest is None:
            highest = low or None
        elif fits(seconds):
            result = row(aws, url, highest, seconds, True)
            rows.append(result)
            say(f"{highest}/s (highest sustained in the probes): {summary(result)}")
            if fits(seconds):
                result = row(aws, url, highest, seconds, False)
                rows.append(result)
                say(f"{highest}/s includeTasks=false: {summary(result)}")
    return {
        "limits": describe_limits(),
        "eventbridge_delay_ms": eventbridge_delay_ms(),
        "rows": rows,
        "probes": probes,
        "not_sustained_rates": behind_rates,
        "highest_sustained_rate": highest if behind_rates else max(sustained_rates, default=None),
        "skipped": skipped,
        "took_s": round(time.monotonic() - began),
        "criterion": (
            f"behind = errors, or the median latency of the last third of arrivals over the first third's by more"
            f" than {BEHIND_GROWTH_S} s or over {BEHIND_LATENCY_S} s, or a call sent over 1 s late"
        ),
    }


def summary(r: dict[str, Any]) -> str:
    return (
        f"{r['sent']} sent, 200 {r['share_200']:.0%}, 206 {r['share_206']:.0%}, errors {r['errors']},"
        f" after end p50 {r['after_end_ms']['p50']} ms, reads/answer {r['sfn_reads_per_answer']},"
        f" throttled {sum(r['throttled'].values())}, ended->206 {r['ended_runs_answered_206']}"
        f"{', BEHIND' if r['behind'] else ''}"
    )


COLUMNS: list[tuple[str, Any]] = [
    ("calls/s", lambda r: f"{r['rate']:g}"),
    ("includeTasks", lambda r: "true" if r["include_tasks"] else "false"),
    ("s", lambda r: f"{r['seconds']:g}"),
    ("sent", lambda r: r["sent"]),
    ("200", lambda r: f"{r['share_200']:.1%}"),
    ("206", lambda r: f"{r['share_206']:.1%}"),
    ("errors", lambda r: r["errors"]),
    ("end->answer p50 ms", lambda r: r["after_end_ms"]["p50"]),
    ("p95 ms", lambda r: r["after_end_ms"]["p95"]),
    ("SFN reads/answer", lambda r: r["sfn_reads_per_answer"]),
    ("Describe", lambda r: r["sfn_reads"].get("DescribeExecution", 0)),
    ("History", lambda r: r["sfn_reads"].get("GetExecutionHistory", 0)),
    ("throttled", lambda r: sum(r["throttled"].values())),
    ("ended->206", lambda r: r["ended_runs_answered_206"]),
    ("latency p50 s", lambda r: r["latency_s"]["p50"]),
    ("run s p50", lambda r: r["run_duration_s_p50"]),
    ("kept up", lambda r: "no" if r["behind"] else "yes"),
]


def table(section: dict[str, Any]) -> list[str]:
    rows = section["rows"]
    cells = [[name for name, _ in COLUMNS]] + [[str(cell(r)) for _, cell in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    notes = [f"   {section['limits']}"]
    kinds: Counter[str] = Counter()
    for r in rows:
        kinds.update(r["error_kinds"])
    if kinds:
        notes.append("   errors by kind: " + "; ".join(f"{k}: {v}" for k, v in kinds.most_common()))
    throttled: Counter[str] = Counter()
    for r in rows:
        throttled.update(r["throttled"])
    if throttled:
        notes.append("   throttled by operation (all rows): " + ", ".join(f"{k} {v}" for k, v in throttled.items()))
    if section["not_sustained_rates"]:
        probes = ", ".join(f"{p['rate']:g}/s " + ("behind" if p["behind"] else "kept up") for p in section["probes"])
        notes.append(
            f"   not sustained on this machine: {', '.join(f'{r:g}/s' for r in section['not_sustained_rates'])};"
            f" highest sustained: {section['highest_sustained_rate']}/s"
            f" (probes of {PROBE_SECONDS} s: {probes or 'none'})"
        )
    if section["skipped"]:
        notes.append(f"   skipped for time: {', '.join(section['skipped'])}")
    notes.append(f"   ({section['criterion']})")
    return lines + notes


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        url, rate, seconds = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
        print(json.dumps(load(url, rate, seconds, hard_limit=seconds + WAIT_SECONDS + 40)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default=",".join(map(str, RATES)))
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--budget", type=float, default=900, help="hard limit for the whole section, seconds")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "functions" / "api"), str(ROOT)]
    install_hooks()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with local_api() as (aws, url):
        section = sustained_section(
            aws, url, tuple(float(r) for r in args.rates.split(",")), args.seconds, budget_s=args.budget
        )
    section["tree"] = str(ROOT)
    section["load_average"] = {"before": load_before, "after": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    section["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section["table"] = table(section)
    print("\n".join(section["table"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(section, indent=2, default=str) + "\n")
        print(f"written to {args.json}")


if __name__ == "__main__":
    main()
