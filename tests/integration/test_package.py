"""functions/api/Makefile, which sam build runs for the API's functions: the package carries
its bytecode, and Lambda's Python uses it without looking at the sources (/var/task is read-only,
so bytecode it compiled itself would be lost at every cold start)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

API_CODE = ROOT / "functions" / "api"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("package")
    # For this machine's platform: Lambda's arm64 wheels would not load here.
    variables = [f"TARGET={target}", f"PYTHON={sys.executable}", "LAMBDA_PLATFORM="]
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(API_CODE), "package", *variables],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return target


def test_our_modules_and_the_libraries_ship_compiled(package: Path) -> None:
    compiled = {path.name.split(".")[0] for path in (package / "__pycache__").glob("*.cpython-312.pyc")}
    assert {"app", "run_status", "token_app", "authorizer"} <= compiled
    ours = {path.stem for path in (package / "workflow_api").glob("*.py")}
    assert ours == {path.name.split(".")[0] for path in (package / "workflow_api" / "__pycache__").glob("*.pyc")}
    assert list((package / "botocore" / "__pycache__").glob("client.cpython-312.pyc"))


def test_the_handler_is_imported_from_the_bytecode_without_reading_the_sources(package: Path) -> None:
    # Break a source after compiling: only bytecode that is used unchecked still imports.
    source = package / "workflow_api" / "status.py"
    source.write_text(source.read_text() + "\nthis is not python\n")
    done = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            "import app, run_status, token_app, authorizer; print(app.lambda_handler.__name__)",
        ],
        cwd=package,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "IDEMPOTENCY_TABLE_NAME": "t",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "lambda_handler"
