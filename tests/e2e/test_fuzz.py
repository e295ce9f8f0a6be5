"""Schemathesis against the local server, driven by the document it serves (/api/openapi.json).

In ``make test``: a bounded, deterministic run (about half a minute). ``make fuzz`` runs the same
test deeper: FUZZ_MAX_EXAMPLES cases per operation and phase, FUZZ_PHASES, and FUZZ_SEED for
a random (reproducible) run instead of the deterministic one.

Checks: no 5xx (so no 500 and no 502), Conductor's error body on every error (fuzz_checks.py),
and the document holds: documented status codes, content types, headers and body schemas.
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

ROOT = Path(__file__).resolve().parents[2]
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "conductor_error_body",
]


def schemathesis_command(api: str) -> list[str]:
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{api}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing"),
        "--max-examples",
        os.environ.get("FUZZ_MAX_EXAMPLES", "15"),
        # Every run answers at once (a run started by a fuzzed call goes on in the background);
        # a waitForSeconds in the query that differs is a 400, which is documented.
        "--header",
        "waitForSeconds: 0",
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--warnings",
        "off",
        "--no-color",
    ]
    seed = os.environ.get("FUZZ_SEED")
    return (
        [*command, "--seed", seed, "--generation-database", "none"]
        if seed
        else [*command, "--generation-deterministic"]
    )


def test_fuzz_the_documented_api(local_server: Any, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(ROOT / "tests" / "e2e" / "fuzz_checks.py"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    run = subprocess.run(  # noqa: PLW1510 - the return code is asserted below, with the report
        schemathesis_command(local_server.api),
        cwd=tmp_path,  # schemathesis keeps a cache in .schemathesis/ of its working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=float(os.environ.get("FUZZ_TIMEOUT", "110")),
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-30_000:]
    assert "Fuzzing" in report and "passed" in report, report[-5_000:]
