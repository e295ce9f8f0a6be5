"""``make bench``: how promptly, how cheaply and how well under load the synchronous API answers.

Local mode (template.yaml's stack on in-process moto) runs in this process and serves real HTTP
on a free 127.0.0.1 port, with its AWS emulation as configured (``LOCAL_SFN_QUOTAS`` and the other
settings of ``local_mode/limits.py``; AWS's figures by default); nothing leaves the machine but
``pip`` sizing the Lambda package (from the machine's own package mirrors).
Prints one table and writes it to bench/results/latest.json. bench/README.md says what each
figure means.
"""

import bisect
import io
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import boto3
import catalog
import load
import sustained
from botocore.handlers import BUILTIN_HANDLERS

ROOT = Path(__file__).resolve().parent.parent
API_CODE = ROOT / "functions" / "api"
RESULTS = ROOT / "bench" / "results" / "latest.json"
# 24 runs a row (48 before the sustained section came, to fit the bench in ~20 minutes): the
# median of 24 baseline lags moves by ~1.2 ms between runs of the same code (single ones spread
# over ~1.5-13 ms), which no longer decides a target: ours now includes EventBridge's delay.
LAG_DELAYS, LAG_RUNS, BASELINE_POLL = (1, 3), 24, 0.01
BASELINE_PHASES = random.Random(0)  # where in its 10 ms the baseline's polling starts (lag_baseline)
CALL_DELAYS, CALL_REPEATS, WAIT = (1, 5, 20), 3, 25
MAP_ITEMS = 500
CONCURRENCY, LOAD_DELAY, LOAD_WAIT = (10, 50, 200), 2, 10
SUSTAINED_BUDGET_S = 840  # section 4's hard limit (its rows at sustained.RATES, 30 s each, and the probes)
IMPORT_RUNS = 7
# What any handler on this stack imports before a line of ours: the event handler with its
# validation (pydantic), the X-Ray SDK, and botocore's client (the X-Ray patch imports it).
LIBRARY_FLOOR = (
    "aws_lambda_powertools.event_handler, aws_lambda_powertools.event_handler.openapi.params, "
    "aws_xray_sdk.core, botocore.client"
)
# Every Step Functions / DynamoDB call of this process: (monotonic time, the calling thread's tag, operation).
CALLS: list[tuple[float, str | None, str]] = []
_tag = threading.local()


# Section 1's answers, step by step after the run's end: EventBridge's event reaches run_status
# (after the modelled delay), which writes the end on the run's item; the waiting call's poll of
# the item reads it; it reads the history once (tasks); the answer is in the caller's hands.
LAG_STAGES = ("end recorded", "end read", "history read")
# (wall time, stage) as each call of those kinds returns, while section 1 runs our calls.
STAGES: list[tuple[float, str]] = []
_recording_stages = threading.Event()


def _count_call(model: Any, **_: Any) -> None:
    """botocore ``before-call`` hook; moto's executor's own calls (to Lambda) are left out."""
    if model.service_model.service_name in ("stepfunctions", "dynamodb"):
        CALLS.append((time.monotonic(), getattr(_tag, "name", None), model.name))


def _stage_done(model: Any, parsed: Any = None, **_: Any) -> None:
    """botocore ``after-call`` hook for LAG_STAGES: run_status's PutItem (on EventBridge's
    delivery thread), a GetItem that brought the end (an item with a stopDate), a history read."""
    if not _recording_stages.is_set():
        return
    if model.name == "PutItem" and threading.current_thread().name == "eventbridge":
        STAGES.append((time.time(), "end recorded"))
    elif model.name == "GetItem" and "stopDate" in ((parsed or {}).get("Item") or {}):
        STAGES.append((time.time(), "end read"))
    elif model.name == "GetExecutionHistory":
        STAGES.append((time.time(), "history read"))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def timed(action: Callable[[], object], runs: int) -> float:
    """Median wall time of ``action``, seconds."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return median(times)


def status_kb(field: str) -> int:
    """VmHWM (peak RSS) or VmRSS of this process, kB."""
    found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(found.group(1)) if found else 0


def execution_arn(machine_arn: str, execution_name: str) -> str:
    return machine_arn.replace(":stateMachine:", ":execution:") + ":" + execution_name


# LocalAws plus LocalApiServer on 127.0.0.1:0 in a thread: one home, sustained.py's, which must
# also run alone in another checkout.
local_api = sustained.local_api


# --- 1. completion lag --------------------------------------------------------------------------


def _lag(sfn: Any, arn: str, took: float, answered_at: float) -> dict[str, float]:
    """(response time - run duration, answered_at - the run's stopDate), seconds."""
    run = sfn.describe_execution(executionArn=arn)
    duration = (run["stopDate"] - run["startDate"]).total_seconds()
    return {"lag": took - duration, "after_end": answered_at - run["stopDate"].timestamp()}


def lag_ours(url: str, sfn: Any, machine: str, delay: int, kept: Any = None) -> dict[str, float] | None:
    """Our lag; with ``stage`` keys (seconds after the run's end) when the answer came from the
    end run_status recorded. ``kept``: the caller's HTTP connection, kept open between its calls."""
    body = json.dumps({"delaySeconds": delay}).encode()
    STAGES.clear()
    _recording_stages.set()
    try:
        result = load.call(f"{url}/api/workflow/execute/slow_steps", body, "10", kept)
        answered_at = time.time()
    finally:
        _recording_stages.clear()
    if result["status"] != 200:
        return None
    lag = _lag(sfn, execution_arn(machine, str(result["workflow_id"]).split(".", 2)[2]), result["latency"], answered_at)
    ended = answered_at - lag["after_end"]
    # The first call of each kind to return after the run's end (moto's stopDate is to the ms).
    returned = {
        stage: next((t for t, kind in list(STAGES) if kind == stage and ended - 0.001 <= t <= answered_at), math.nan)
        for stage in LAG_STAGES
    }
    if returned["end recorded"] <= returned["end read"] <= returned["history read"]:  # False with a nan
        lag |= {f"stage {stage}": returned[stage] - ended for stage in LAG_STAGES}
    return lag


@contextmanager
def quotas_lifted() -> Iterator[None]:
    """Step Functions' quotas off while the baselines poll: a client polling DescribeExecution
    every 10 ms makes ~100 calls a second, against an account's refill of 15 (and a bucket of
    300): under AWS's quotas it could not run for even 4 s. Back on, with full buckets, after."""
    limits = sustained._limits()
    if limits is None:
        yield
        return
    kept = limits.quotas.quotas
    limits.quotas.configure(None)
    try:
        yield
    finally:
        limits.quotas.configure(kept)


def fresh_account() -> None:
    """Full quota buckets and zeroed throttle counts before a section (when local mode emulates them)."""
    limits = sustained._limits()
    if limits is not None:
        limits.reset()


def lag_baseline(sfn: Any, machine: str, delay: int, read_history: bool = False) -> dict[str, float]:
    """A client of Step Functions itself: start, then DescribeExecution every 10 ms; with
    ``read_history``, then the history once, for what our answer also carries (``tasks``).

    The polls start at a random point of their 10 ms (once, before the first): a run's duration
    varies by a few ms only, so polls started in step with the start met its end at much the same
    point of their period run after run. The baseline's median then said where that point fell,
    not how soon a poller sees an end: over 48 runs a row it came out at 5.7 ms for 1 s runs and
    9.2 ms for 3 s runs, its single runs spread over 1.4-15.7 ms in both."""
    began = time.perf_counter()
    started = sfn.start_execution(
        stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps({"delaySeconds": delay})
    )
    time.sleep(BASELINE_PHASES.uniform(0, BASELINE_POLL))
    while sfn.describe_execution(executionArn=started["executionArn"])["status"] == "RUNNING":
        time.sleep(BASELINE_POLL)
    if read_history:
        sfn.get_execution_history(executionArn=started["executionArn"], reverseOrder=True, includeExecutionData=True)
    took, answered_at = time.perf_counter() - began, time.time()
    return _lag(sfn, started["executionArn"], took, answered_at)


def unwatched_copy(sfn: Any, machine: str) -> str:
    """``machine``'s definition as a state machine of its own, outside the template's EventBridge
    rule, for the baselines: a client polling its own state machine has nothing else reacting to
    its runs' ends. On the template's, run_status recorded each of the baselines' ends too, in this
    one process, and a poll that came during that write waited for it (40 runs of 1 s: baseline
    median 7.6 ms with it, 6.7 ms without)."""
    described = sfn.describe_state_machine(stateMachineArn=machine)
    copy: str = sfn.create_state_machine(
        name=f"{described['name']}-baseline", definition=described["definition"], roleArn=described["roleArn"]
    )["stateMachineArn"]
    return copy


def completion_lag(url: str, sfn: Any, machine: str, baseline_machine: str) -> list[dict[str, Any]]:
    rows = []
    # Our caller keeps its connection between calls, as the baseline's boto3 client keeps its own.
    kept = load.connect(url)
    for delay in LAG_DELAYS:
        samples: dict[str, list[dict[str, float]]] = {"ours": [], "baseline": [], "baseline_history": []}
        errors = 0
        for _ in range(LAG_RUNS):  # interleaved, so the clients see the same machine
            ours = lag_ours(url, sfn, machine, delay, kept)
            errors += ours is None
            samples["ours"] += [ours] if ours else []
            with quotas_lifted():
                samples["baseline"].append(lag_baseline(sfn, baseline_machine, delay))
                samples["baseline_history"].append(lag_baseline(sfn, baseline_machine, delay, read_history=True))
        for client, runs in samples.items():
            lags, after_end = [s["lag"] for s in runs], [s["after_end"] for s in runs]
            row: dict[str, Any] = {
                "delay_s": delay,
                "client": client,
                "runs": len(runs),
                "errors": errors if client == "ours" else 0,
                "lag_ms": {"median": ms(median(lags)), "p95": ms(p95(lags))},
                "after_end_ms": {"median": ms(median(after_end)), "p95": ms(p95(after_end))},
            }
            if client == "ours":
                signalled = [s for s in runs if f"stage {LAG_STAGES[-1]}" in s]
                row["signalled"] = len(signalled)
                row["stages_after_end_ms"] = {
                    stage: ms(median([s[f"stage {stage}"] for s in signalled])) for stage in LAG_STAGES
                } | {"answered": ms(median([s["after_end"] for s in signalled]))}
            rows.append(row)
        progress(f"lag, {delay} s runs: done")
    kept.close()
    return rows


# --- 2. AWS calls per request -----------------------------------------------------------------


def long_history_machine(aws: Any) -> str:
    """A Map of MAP_ITEMS Pass iterations, then a Wait of 2 s: ~4 events per item (bench only;
    local mode delivers its ends to run_status as for the template's machines)."""
    definition = {
        "StartAt": "fan_out",
        "States": {
            "fan_out": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "touch",
                    "States": {"touch": {"Type": "Pass", "End": True}},
                },
                "ResultPath": None,
                "Next": "pause",
            },
            "pause": {"Type": "Wait", "Seconds": 2, "End": True},
        },
    }
    tags = {"workflow:name": "bench_long_history", "workflow:version": "1"}  # a workflow of the API's
    return str(aws.add_state_machine("bench-long-history", definition, tags))


def workflow_service() -> Any:
    """As app.workflow_service builds it: its catalog finds the bench's tagged state machine too."""
    from workflow_api.config import settings
    from workflow_api.wiring import build_service

    service = build_service(settings())
    catalog = service.catalog
    for name in catalog.names:  # task refs are read once per catalog reading, not by each request
        catalog.task_refs(catalog.resolve(name, None))
    return service


def one_request(
    service: Any,
    label: str,
    workflow: str,
    workflow_input: dict[str, Any],
    include_tasks: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """One synchronous request through the service, in this thread: its answer and its calls."""
    from workflow_api.parameters import RunOptions
    from workflow_api.service import StartCommand

    _tag.name = f"{label}/{uuid.uuid4().hex}"
    deadline = time.monotonic() + 35  # the API function's Timeout
    command = StartCommand(
        workflow, None, workflow_input, RunOptions(wait_for_seconds=WAIT, **options), include_tasks=include_tasks
    )
    began = time.perf_counter()
    answer = service.execute(command, lambda: deadline - time.monotonic())
    took = time.perf_counter() - began
    run = answer.run
    return {
        "calls": dict(answer.aws_calls),
        "hooked": sum(1 for _, tag, _ in list(CALLS) if tag == _tag.name),
        "status": answer.http_status,
        "took": took,
        "lag": took - (run.update_time - run.create_time) / 1000 if answer.http_status == 200 else None,
    }


def summarize_calls(label: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    def per_api(*names: str) -> float:
        return median([sum(s["calls"].get(n, 0) for n in names) for s in samples])

    totals = [sum(s["calls"].values()) for s in samples]
    reads = [s["calls"].get("DescribeExecution", 0) + s["calls"].get("GetExecutionHistory", 0) for s in samples]
    lags = [s["lag"] for s in samples if s["lag"] is not None]  # of runs that ended
    return {
        "case": label,
        "repeats": len(samples),
        "statuses": sorted({s["status"] for s in samples}),
        "StartExecution": per_api("StartExecution"),
        "DescribeExecution": per_api("DescribeExecution"),
        "GetExecutionHistory": per_api("GetExecutionHistory"),
        "GetItem": per_api("GetItem"),
        "DynamoDB writes": per_api("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"),
        "DynamoDB": per_api("PutItem", "GetItem", "UpdateItem", "DeleteItem", "Query", "TransactWriteItems"),
        "sfn_reads_max": max(reads),
        "total_median": median(totals),
        "total_max": max(totals),
        "calls_per_s": round(median([t / s["took"] for t, s in zip(totals, samples, strict=True)]), 2),
        "hook_agrees": all(t == s["hooked"] for t, s in zip(totals, samples, strict=True)),
        "took_s": round(median([s["took"] for s in samples]), 2),
        "lag_ms": ms(median(lags)) if lags else None,
    }


def calls_per_request(aws: Any) -> tuple[list[dict[str, Any]], str]:
    long_arn = long_history_machine(aws)
    service = workflow_service()
    cases: list[tuple[str, dict[str, Any]]] = []
    for delay in CALL_DELAYS:
        cases.append((f"slow_steps {delay} s", {}))
        cases.append((f"slow_steps {delay} s, includeTasks=false", {"include_tasks": False}))
        cases.append((f"slow_steps {delay} s, waitUntilTaskRef=final_step", {"wait_until_task_ref": ("final_step",)}))
    cases.append(("slow_steps 1 s, X-Idempotency-key", {"on_conflict": "RETURN_EXISTING"}))
    cases.append((f"slow_steps 30 s: waitForSeconds {WAIT} runs out", {}))

    def run(case: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        label, options = case
        delay = int(label.split()[1])
        if "on_conflict" in options:
            options = {**options, "idempotency_key": uuid.uuid4().hex}
        return one_request(service, label, "slow_steps", {"delaySeconds": delay}, **options)

    jobs = [case for case in cases for _ in range(CALL_REPEATS)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:  # concurrently, to fit the time box
        samples = list(pool.map(run, jobs))
    rows = [
        summarize_calls(label, [s for (lbl, _), s in zip(jobs, samples, strict=True) if lbl == label])
        for label, _ in cases
    ]
    progress("calls per request: slow_steps done")
    label = f"Map of {MAP_ITEMS} Pass + Wait 2 s (long history)"
    items = {"items": list(range(MAP_ITEMS))}
    long_samples = [one_request(service, label, "bench_long_history", items) for _ in range(CALL_REPEATS)]
    rows.append(summarize_calls(label, long_samples))
    progress("calls per request: long history done")
    return rows, long_arn


# --- 3. concurrency -----------------------------------------------------------------------------


def concurrency(aws: Any, url: str, callers: int) -> dict[str, Any]:
    """``callers`` simultaneous waiting calls from another process; this process is the server."""
    fresh_account()
    quiet, sys.stdout = sys.stdout, io.StringIO()  # the server prints a line per request: "... in N ms"
    Path("/proc/self/clear_refs").write_text("5")  # restart the peak-RSS (VmHWM) count
    rss_before, cpu_before, first_call = status_kb("VmRSS"), resource.getrusage(resource.RUSAGE_SELF), len(CALLS)
    arguments = [str(callers), json.dumps({"delaySeconds": LOAD_DELAY}), str(LOAD_WAIT)]
    done = subprocess.run(
        [sys.executable, Path(__file__).with_name("load.py"), f"{url}/api/workflow/execute/slow_steps", *arguments],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    server_log, sys.stdout = sys.stdout, quiet
    in_handler = [int(t) / 1000 for t in re.findall(r" -> 200 in (\d+) ms", server_log.getvalue())]
    burst = json.loads(done.stdout)
    results = burst["results"]
    ok = [r for r in results if r["status"] == 200]
    latencies = [r["latency"] for r in ok]
    server_calls = [(at, op) for at, tag, op in CALLS[first_call:] if tag is None]
    reads = sorted(at for at, op in server_calls if op in ("GetExecutionHistory", "DescribeExecution"))
    peak_reads = max((bisect.bisect_left(reads, at + 1) - i for i, at in enumerate(reads)), default=0)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    history_reads = sum(op == "GetExecutionHistory" for _, op in server_calls)
    limits = sustained._limits()
    return {
        "callers": callers,
        "ok_200": len(ok),
        "partial_206": sum(r["status"] == 206 for r in results),
        "errors": sum(r["status"] not in (200, 206) for r in results),
        "error_kinds": dict(
            Counter(str(r.get("error") or r["status"]) for r in results if r["status"] not in (200, 206))
        ),
        "wall_s": round(burst["wall"], 2),
        "throughput_rps": round(len(ok) / burst["wall"], 1),
        "latency_s": {"p50": round(median(latencies), 2), "p95": round(p95(latencies), 2)},
        "in_handler_s_p50": round(median(in_handler), 2),
        "lag_ms_p50": ms(median([r["latency"] - r["duration"] for r in ok if r["duration"] is not None])),
        "peak_rss_mb": round(status_kb("VmHWM") / 1024),
        "rss_growth_mb": round((status_kb("VmRSS") - rss_before) / 1024),
        "server_cpu_s": round(cpu, 1),
        "api_containers": len(aws.api_function._idle),  # module copies of app.py, one per concurrent call
        "aws_calls": dict(Counter(op for _, op in server_calls)),  # Step Functions, DynamoDB
        "sfn_reads_peak_per_s": peak_reads,
        "history_reads": history_reads,
        "describe_calls": sum(op == "DescribeExecution" for _, op in server_calls),
        "throttled": limits.throttled() if limits is not None else {},
    }


def where_time_goes(aws: Any, url: str, sfn: Any, long_arn: str) -> dict[str, float]:
    """Median cost of the operations the numbers above are made of, in this process (ms)."""
    from workflow_api.history import fold

    kept = load.connect(url)

    def unknown_run(connection: Any = None) -> None:
        """GET of a workflowId no run has: HTTP, the handler and its 404, no AWS call."""
        connection = connection or load.connect(url)
        connection.request("GET", "/api/workflow/unknown")
        connection.getresponse().read()
        if connection is not kept:
            connection.close()

    slow_steps = aws.state_machine_arn("slow_steps", 1)
    slow = sfn.list_executions(stateMachineArn=slow_steps, statusFilter="SUCCEEDED")["executions"]
    long = sfn.list_executions(stateMachineArn=long_arn, statusFilter="SUCCEEDED")["executions"]
    slow_arn, long_run = slow[0]["executionArn"], long[0]["executionArn"]

    def whole_history(arn: str) -> list[dict[str, Any]]:
        """As the adapter's first read: newest first, pages of 1,000."""
        request: dict[str, Any] = {"executionArn": arn, "reverseOrder": True, "maxResults": 1000}
        events = []
        while True:
            page = sfn.get_execution_history(**request)
            events += page["events"]
            if "nextToken" not in page:
                return events
            request["nextToken"] = page["nextToken"]

    short_events, long_events = whole_history(slow_arn), whole_history(long_run)
    costs = {
        "DescribeExecution": ms(timed(lambda: sfn.describe_execution(executionArn=slow_arn), 20)),
        f"GetExecutionHistory, {len(short_events)} events": ms(timed(lambda: whole_history(slow_arn), 20)),
        f"GetExecutionHistory, {len(long_events)} events, pages of 1,000": ms(
            timed(lambda: whole_history(long_run), 3)
        ),
        "our fold() of a history, 14 events": ms(timed(lambda: fold(short_events), 20)),
        f"our fold() of a history, {len(long_events)} events": ms(timed(lambda: fold(long_events), 5)),
        "boto3 client per Lambda task (moto's executor)": ms(timed(lambda: boto3.client("lambda"), 20)),
        "new API container (app.py module copy)": ms(timed(aws.api_function._new_container, 5)),
        "HTTP call answered 404 by the handler, new connection": ms(timed(unknown_run, 50)),
        "same, on a kept connection (as section 1's caller)": ms(timed(lambda: unknown_run(kept), 50)),
    }
    kept.close()
    return costs


# --- 4. cold start ------------------------------------------------------------------------------


def build_package(target: Path, platform: str) -> str | None:
    """functions/api/Makefile's package, as sam build makes it (None) or why it could not be built."""
    variables = [f"TARGET={target}", f"PYTHON={sys.executable}", f"LAMBDA_PLATFORM={platform}"]
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(API_CODE), "package", *variables],
        capture_output=True,
        text=True,
        check=False,
    )
    return (done.stderr.strip() or done.stdout.strip()).splitlines()[-1] if done.returncode else None


def handler_import(function_environment: dict[str, str]) -> dict[str, Any]:
    """``import app`` in fresh interpreters with the API function's environment, as in Lambda,
    from the package as it ships (for this machine's platform: Lambda's arm64 wheels do not load
    here) and from the same package without its bytecode (what SAM's own Python builder ships;
    Lambda cannot write bytecode to /var/task, so it compiles every module on every cold start)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        **function_environment,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "local-ApiFunction",  # powertools' Tracer is on in Lambda
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "PYTHONDONTWRITEBYTECODE": "1",  # as on Lambda's read-only /var/task
    }
    with tempfile.TemporaryDirectory() as tmp:
        shipped, plain = Path(tmp) / "shipped", Path(tmp) / "plain"
        failed = build_package(shipped, platform="")
        if failed:
            raise RuntimeError(f"functions/api/Makefile could not build the package: {failed}")
        shutil.copytree(shipped, plain, ignore=shutil.ignore_patterns("__pycache__"))

        def interpreter(package: Path, *args: str) -> subprocess.CompletedProcess[str]:
            # -S: no site-packages, so only the package (the current directory) is importable.
            return subprocess.run(
                [sys.executable, "-S", *args],
                cwd=package,
                env={**env, "LAMBDA_TASK_ROOT": str(package)},
                capture_output=True,
                text=True,
                check=True,
            )

        def timed_import(package: Path, modules: str) -> tuple[float, float]:
            code = f"import time; t = time.perf_counter(); import {modules}; print(time.perf_counter() - t)"
            began = time.perf_counter()
            done = interpreter(package, "-c", code)
            return float(done.stdout.strip().splitlines()[-1]), time.perf_counter() - began

        imports, processes, floors, uncompiled = [], [], [], []
        for _ in range(IMPORT_RUNS):  # interleaved, so all three see the same machine
            imported, process = timed_import(shipped, "app")
            imports.append(imported)
            processes.append(process)
            floors.append(timed_import(shipped, LIBRARY_FLOOR)[0])
            uncompiled.append(timed_import(plain, "app")[0])
        traced = interpreter(shipped, "-X", "importtime", "-c", "import app")
    # "import time: self | cumulative | name": app's direct imports are one level (2 spaces) below it.
    lines = [line.split("|") for line in traced.stderr.splitlines() if line.startswith("import time:")][1:]
    entries = [(int(cumulative), name.rstrip()) for _, cumulative, name in lines]
    app_depth = next(len(name) - len(name.lstrip()) for _, name in entries if name.strip() == "app")
    direct = [(us, name.strip()) for us, name in entries if len(name) - len(name.lstrip()) == app_depth + 2]
    return {
        "import_ms": {"median": ms(median(imports)), "p95": ms(p95(imports)), "min": ms(min(imports))},
        "process_ms_median": ms(median(processes)),
        "libraries_alone_ms_median": ms(median(floors)),
        "without_bytecode_ms_median": ms(median(uncompiled)),
        "heaviest_imports_ms": {name: round(us / 1000, 1) for us, name in sorted(direct, reverse=True)[:5]},
    }


def package_size() -> dict[str, Any]:
    """The API function's deployment package for Lambda (python3.12, arm64), zipped and not."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "package"
        failed = build_package(target, platform="manylinux2014_aarch64")
        if failed:
            return {"error": failed}
        files = [path for path in target.rglob("*") if path.is_file()]
        archive = Path(tmp) / "package.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in files:
                zipped.write(path, path.relative_to(target))
        by_top = Counter({top.name: 0 for top in target.iterdir()})
        for path in files:
            by_top[path.relative_to(target).parts[0]] += path.stat().st_size
        return {
            "unzipped_mb": round(sum(path.stat().st_size for path in files) / 2**20, 1),
            "zipped_mb": round(archive.stat().st_size / 2**20, 1),
            "biggest_mb": {name: round(size / 2**20, 1) for name, size in by_top.most_common(4)},
        }


# --- the table ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    models = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": models[0] if models else platform.processor(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "moto": version("moto"),
        "boto3": version("boto3"),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": " ".join(f"{load:.2f}" for load in os.getloadavg()),
    }


# List prices, us-east-1, arm64 (2026), as the README's "Cost" section counts a call of a 5 s workflow.
PRICES = {
    "lambda_gb_s": 0.0000133334,
    "sfn_transition": 0.025 / 1000,
    "api_gateway_rest_call": 3.50 / 1_000_000,
    "dynamodb_read_unit": 0.125 / 1_000_000,  # on demand; a strongly consistent GetItem of ~1 KB is 1
    "dynamodb_write_unit": 0.625 / 1_000_000,  # an item under 1 KB
    "lambda_request": 0.20 / 1_000_000,
}
API_MEMORY_GB, RUN_STATUS_MEMORY_GB, RUN_STATUS_SECONDS, SLOW_STEPS_TRANSITIONS = 0.5, 0.25, 0.1, 4
COST_BEFORE = 0.140  # $ per 1,000 calls of a 5 s workflow, the wake-up queues' design (README, commit 040a876)


def cost_per_1000(calls: list[dict[str, Any]]) -> dict[str, float]:
    """The README's model with section 2's measured 5 s call (its median time in the handler, its
    GetItems and writes) plus run_status's one PutItem and invocation."""
    five = next(r for r in calls if r["case"] == "slow_steps 5 s")
    parts = {
        "API Lambda (512 MB x time in the handler)": API_MEMORY_GB * five["took_s"] * PRICES["lambda_gb_s"],
        "Step Functions transitions": SLOW_STEPS_TRANSITIONS * PRICES["sfn_transition"],
        "API Gateway REST": PRICES["api_gateway_rest_call"],
        "DynamoDB reads (GetItem)": five["GetItem"] * PRICES["dynamodb_read_unit"],
        "DynamoDB writes (the call's + run_status's)": (five["DynamoDB writes"] + 1) * PRICES["dynamodb_write_unit"],
        "RunStatusFunction": PRICES["lambda_request"]
        + RUN_STATUS_MEMORY_GB * RUN_STATUS_SECONDS * PRICES["lambda_gb_s"],
    }
    return {name: round(value * 1000, 5) for name, value in parts.items()} | {
        "total": round(sum(parts.values()) * 1000, 4)
    }


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    calls = {r["case"]: r for r in result["calls"]}
    rows = result["sustained"]["rows"]
    delay = result["sustained"]["eventbridge_delay_ms"] or 0.0
    ceiling = delay + 200
    short = [f"slow_steps {d} s" for d in CALL_DELAYS if d < 10] + ["slow_steps 1 s, X-Idempotency-key"]
    plain_reads = max(calls[c]["sfn_reads_max"] for c in short)
    # The loads are "5, 20 and 50 calls/s, or the highest 2 cores allow": the rows the
    # machine did not keep up with are printed, not judged (their calls queue for seconds in one
    # Python process, and time out at the caller, before the API function runs).
    kept_up = [r for r in rows if not r["behind"]]
    behind_rows = [r for r in rows if r["behind"]]

    def label(r: dict[str, Any]) -> str:
        return f"{r['rate']:g}/s{'' if r['include_tasks'] else ' no tasks'}"

    def not_judged(figure: Callable[[dict[str, Any]], Any]) -> str:
        listed = ", ".join(f"{label(r)} {figure(r)}" for r in behind_rows)
        return f" (not kept up by this machine, not judged: {listed})" if listed else ""

    sustained_reads = max((r["sfn_reads_per_answer"] or 0) for r in kept_up if r["include_tasks"])
    twenty = calls[f"slow_steps {CALL_DELAYS[-1]} s"]["sfn_reads_max"]
    no_tasks = [f"slow_steps {d} s, includeTasks=false" for d in CALL_DELAYS if d < 10]
    no_tasks_reads = max(calls[c]["sfn_reads_max"] for c in no_tasks)
    no_tasks_sustained = max((r["sfn_reads_per_answer"] or 0) for r in kept_up if not r["include_tasks"])
    no_tasks_twenty = calls[f"slow_steps {CALL_DELAYS[-1]} s, includeTasks=false"]["sfn_reads_max"]
    errors = sum(r["errors"] for r in kept_up)
    ended_206 = sum(r["ended_runs_answered_206"] for r in kept_up)
    medians = [r["after_end_ms"]["p50"] for r in kept_up if r["after_end_ms"]["p50"] is not None]
    single = [r["after_end_ms"]["median"] for r in result["lag"] if r["client"] == "ours"]
    rates = ", ".join(f"{r:g}/s" for r in sorted({r["rate"] for r in kept_up}))
    cost = result["cost_per_1000"]["total"]
    at_200 = next(r for r in result["concurrency"] if r["callers"] == CONCURRENCY[-1])
    imported = result["cold_start"]["import_ms"]["median"]
    checks = [
        (
            "SFN reads per answered call without waitUntilTaskRef <= 1",
            plain_reads <= 1 and sustained_reads <= 1,
            f"{plain_reads} at most (section 2, 1 s and 5 s runs, with a key too); {sustained_reads} per answer"
            " at most (section 4)" + not_judged(lambda r: r["sfn_reads_per_answer"]),
        ),
        (f"SFN reads for a {CALL_DELAYS[-1]} s wait <= 2", twenty <= 2, f"{twenty} at most"),
        (
            "SFN reads with includeTasks=false = 0",
            no_tasks_reads == 0 and no_tasks_sustained == 0,
            f"{no_tasks_reads} at most (section 2, 1 s and 5 s runs); {no_tasks_sustained} per answer (section 4);"
            f" a {CALL_DELAYS[-1]} s wait: {no_tasks_twenty} (its end checks, every END_CHECK_SECONDS)"
            + not_judged(lambda r: r["sfn_reads_per_answer"]),
        ),
        (
            f"0 errors at every load the machine keeps up with ({rates})",
            bool(kept_up) and errors == 0,
            f"{errors} errors in {len(kept_up)} rows" + not_judged(lambda r: f"{r['errors']} errors"),
        ),
        (
            f"0 ended runs answered 206 at every load the machine keeps up with ({rates})",
            bool(kept_up) and ended_206 == 0,
            f"{ended_206}" + not_judged(lambda r: r["ended_runs_answered_206"]),
        ),
        (
            f"median run end -> answer <= EventBridge delay + 200 ms ({ceiling:.0f} ms)",
            bool(medians) and max(medians + single) <= ceiling,
            "section 4, rows kept up: "
            + " / ".join(f"{v:.0f}" for v in medians)
            + " ms; section 1: "
            + " / ".join(f"{v:.0f}" for v in single)
            + " ms"
            + not_judged(lambda r: f"{r['after_end_ms']['p50']} ms"),
        ),
        (
            f"cost per 1,000 calls of a 5 s workflow <= the design before's (${COST_BEFORE:.3f})",
            cost <= COST_BEFORE,
            f"${cost:.4f}",
        ),
        (f"no errors at {CONCURRENCY[-1]} concurrent waits", at_200["errors"] == 0, f"{at_200['errors']} errors"),
        ("handler import < 300 ms", imported < 300, f"{imported:.0f} ms"),
    ]
    return [{"target": name, "pass": ok, "measured": measured} for name, ok, measured in checks]


Column = tuple[str, Callable[[dict[str, Any]], Any]]
LAG_CLIENTS = {
    "ours": "our API over HTTP",
    "baseline": "baseline: SFN direct, 10 ms polls, quotas lifted",
    "baseline_history": "same, then the history (tasks)",
}
LAG_COLUMNS: list[Column] = [
    ("workflow", lambda r: f"slow_steps {r['delay_s']} s"),
    ("client", lambda r: LAG_CLIENTS[r["client"]]),
    ("runs", lambda r: r["runs"]),
    ("errors", lambda r: r["errors"]),
    ("lag p50", lambda r: r["lag_ms"]["median"]),
    ("lag p95", lambda r: r["lag_ms"]["p95"]),
    ("after end p50", lambda r: r["after_end_ms"]["median"]),
    ("after end p95", lambda r: r["after_end_ms"]["p95"]),
]
CALL_COLUMNS: list[Column] = [
    ("case", lambda r: r["case"]),
    ("HTTP", lambda r: "/".join(map(str, r["statuses"]))),
    ("Start", lambda r: r["StartExecution"]),
    ("Describe", lambda r: r["DescribeExecution"]),
    ("History", lambda r: r["GetExecutionHistory"]),
    ("GetItem", lambda r: r["GetItem"]),
    ("DynamoDB", lambda r: r["DynamoDB"]),
    ("SFN reads max", lambda r: r["sfn_reads_max"]),
    ("total", lambda r: r["total_median"]),
    ("max", lambda r: r["total_max"]),
    ("calls/s", lambda r: r["calls_per_s"]),
    ("hook agrees", lambda r: "yes" if r["hook_agrees"] else "NO"),
    ("took s", lambda r: r["took_s"]),
    ("lag ms", lambda r: "-" if r["lag_ms"] is None else r["lag_ms"]),
]
LOAD_COLUMNS: list[Column] = [
    ("callers", lambda r: r["callers"]),
    ("200", lambda r: r["ok_200"]),
    ("206", lambda r: r["partial_206"]),
    ("errors", lambda r: r["errors"]),
    ("wall s", lambda r: r["wall_s"]),
    ("req/s", lambda r: r["throughput_rps"]),
    ("p50 s", lambda r: r["latency_s"]["p50"]),
    ("p95 s", lambda r: r["latency_s"]["p95"]),
    ("in handler p50", lambda r: r["in_handler_s_p50"]),
    ("lag p50 ms", lambda r: r["lag_ms_p50"]),
    ("peak RSS MB", lambda r: r["peak_rss_mb"]),
    ("RSS +MB", lambda r: r["rss_growth_mb"]),
    ("CPU s", lambda r: r["server_cpu_s"]),
    ("containers", lambda r: r["api_containers"]),
    ("AWS calls", lambda r: sum(r["aws_calls"].values())),
    ("History", lambda r: r["history_reads"]),
    ("Describe", lambda r: r["describe_calls"]),
    ("throttled", lambda r: sum(r["throttled"].values())),
    ("reads/s peak", lambda r: r["sfn_reads_peak_per_s"]),
]


def grid(columns: list[Column], rows: list[dict[str, Any]]) -> list[str]:
    cells = [[name for name, _ in columns]] + [[str(cell(row)) for _, cell in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
        for line in cells
    ]


def render(result: dict[str, Any]) -> str:
    m, cold, package = result["machine"], result["cold_start"], result["package"]
    out = [
        "Synchronous workflow API benchmark (local mode: moto in process, HTTP on 127.0.0.1)",
        f"machine: {m['nproc']} CPUs, {m['cpu']}, {m['python']}, moto {m['moto']}, boto3 {m['boto3']}; {m['date']};"
        f" bench took {result['took_s']:.0f} s; load average before {m['load_before']}, after {result['load_after']}",
        f"{result['limits']}",
        "",
        f"1. Completion lag: response time - run duration, ms ({LAG_RUNS} runs a row, interleaved)",
        *grid(LAG_COLUMNS, result["lag"]),
        *[
            f"   ours, {r['delay_s']} s runs, after the run's end (median ms; {r['signalled']} of {r['runs']} answered"
            " from run_status's item): " + ", ".join(f"{stage} {at}" for stage, at in r["stages_after_end_ms"].items())
            for r in result["lag"]
            if r["client"] == "ours"
        ],
        "",
        f"2. AWS calls per synchronous request, service in process (waitForSeconds {WAIT}; median of {CALL_REPEATS})",
        *grid(CALL_COLUMNS, result["calls"]),
        "   cost per 1,000 calls of a 5 s workflow ($, list prices, the 5 s row's calls): "
        + ", ".join(f"{name} {value}" for name, value in result["cost_per_1000"].items()),
        "",
        f"3. Simultaneous waiting calls over HTTP (slow_steps {LOAD_DELAY} s, waitForSeconds {LOAD_WAIT})",
        *grid(LOAD_COLUMNS, result["concurrency"]),
        "   where the time goes (median ms per operation, in this process):",
        *[f"   {name:<48} {cost:>8}" for name, cost in result["costs"].items()],
        "",
        f"4. Sustained load: open-loop arrivals of {sustained.RUN_SECONDS} s slow_steps runs (waitForSeconds"
        f" {sustained.WAIT_SECONDS}), {sustained.SECONDS:g} s a row, from another process; fresh quota buckets"
        " each row",
        *sustained.table(result["sustained"]),
        "",
        "5. Cold start",
        f"   import app from the package as shipped (bytecode included; fresh interpreter, Tracer on, median of"
        f" {IMPORT_RUNS}): {cold['import_ms']['median']} ms (p95 {cold['import_ms']['p95']},"
        f" min {cold['import_ms']['min']}); whole process {cold['process_ms_median']} ms",
        f"   same runs: the libraries alone (event handler + validation, X-Ray SDK, botocore client)"
        f" {cold['libraries_alone_ms_median']} ms; the package without its bytecode (as SAM's own builder"
        f" ships it) {cold['without_bytecode_ms_median']} ms",
        "   heaviest direct imports (ms): " + ", ".join(f"{k} {v}" for k, v in cold["heaviest_imports_ms"].items()),
    ]
    if "error" in package:
        out.append(f"   package: not measured ({package['error']})")
    else:
        biggest = ", ".join(f"{k} {v} MB" for k, v in package["biggest_mb"].items())
        out.append(
            f"   package (manylinux2014_aarch64, cp3.12, + functions/api): {package['unzipped_mb']} MB unzipped,"
            f" {package['zipped_mb']} MB zipped; biggest: {biggest}"
        )
    if "catalog" in result:
        out += ["", f"6. Finding the workflows: one reading of the tags (median of {catalog.REPEATS})"]
        out += [f"   {line}" for line in catalog.render(result["catalog"])]
    lags = {(r["delay_s"], r["client"]): r["lag_ms"]["median"] for r in result["lag"]}
    plain = " / ".join(f"{lags[(d, 'ours')] / lags[(d, 'baseline')]:.1f}x" for d in LAG_DELAYS)
    like_for_like = " / ".join(f"{lags[(d, 'ours')] / lags[(d, 'baseline_history')]:.1f}x" for d in LAG_DELAYS)
    out += [
        "",
        "Targets",
        *[f"   {'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['measured']}" for t in result["targets"]],
        f"   (not a target) median lag / the baseline's (10 ms polls of DescribeExecution, quotas lifted): {plain};"
        f" / the baseline that also reads the history: {like_for_like}",
    ]
    return "\n".join(out)


def main() -> None:
    began = time.monotonic()
    sys.path[:0] = [str(API_CODE), str(ROOT)]
    # Every session built from now on carries the hook (moto swaps boto3's default session out).
    BUILTIN_HANDLERS.append(("before-call", _count_call))
    BUILTIN_HANDLERS.append(("after-call", _stage_done))
    sustained.install_hooks()
    _tag.name = "bench"
    report, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - the server prints a line per request
    result: dict[str, Any] = {"machine": machine()}
    with local_api() as (aws, url):
        progress(f"local API on {url}; {sustained.describe_limits()}")
        result["limits"] = sustained.describe_limits()
        sfn = boto3.client("stepfunctions")
        slow_steps = aws.state_machine_arn("slow_steps", 1)
        baseline_machine = unwatched_copy(sfn, slow_steps)
        lag_ours(url, sfn, slow_steps, 0)  # warm: first Lambda imports, first clients
        lag_baseline(sfn, baseline_machine, 0)
        result["lag"] = completion_lag(url, sfn, slow_steps, baseline_machine)
        fresh_account()
        result["calls"], long_arn = calls_per_request(aws)
        result["cost_per_1000"] = cost_per_1000(result["calls"])
        result["concurrency"] = []
        for callers in CONCURRENCY:
            result["concurrency"].append(concurrency(aws, url, callers))
            progress(f"{callers} concurrent calls: done")
        result["sustained"] = sustained.sustained_section(aws, url, budget_s=SUSTAINED_BUDGET_S, progress=progress)
        fresh_account()
        result["costs"] = where_time_goes(aws, url, sfn, long_arn)
        result["cold_start"] = handler_import(dict(aws.environment))
    result["catalog"] = catalog.catalog_section()  # its own moto, once local mode's has stopped
    progress("handler import, catalog: done; sizing the Lambda package with pip")
    result["package"] = package_size()
    result["took_s"] = time.monotonic() - began
    result["load_after"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    result["targets"] = targets(result)
    sys.stdout = report
    print(render(result))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result["table"] = render(result).splitlines()
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
