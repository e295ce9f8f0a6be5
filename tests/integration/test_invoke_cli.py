"""``make invoke``: one event through a function of the template, its response alone on stdout."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local_mode.invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_api_function_by_default() -> None:
    done = invoke("events/execute_hello_world.json")
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["status"] == "COMPLETED"


def test_another_function_by_its_logical_id() -> None:
    done = invoke("events/run_status_change.json", "--function", "RunStatusFunction")
    assert done.returncode == 0, done.stderr
    event = json.loads((ROOT / "events/run_status_change.json").read_text())
    assert json.loads(done.stdout) == {
        "executionArn": event["detail"]["executionArn"],
        "status": "SUCCEEDED",
        "kept": True,
    }


def test_an_unknown_function_is_named_with_the_ones_there_are() -> None:
    done = invoke("events/run_status_change.json", "--function", "Nope")
    assert done.returncode != 0
    assert "no function Nope in template.yaml" in done.stderr
    assert "RunStatusFunction" in done.stderr
