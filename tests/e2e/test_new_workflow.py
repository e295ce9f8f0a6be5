"""`make new-workflow NAME=...` in a copy of the repo: the workflow it scaffolds is served by
`make run`'s server at once, over real HTTP, and the template it leaves passes cfn-lint."""

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, running_local_server


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """What the scaffold reads and writes: the Makefile, the template, its ASL and its code."""
    for name in ("Makefile", "template.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("scripts", "statemachine", "functions"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    return tmp_path


def make_new_workflow(repo: Path, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(repo), "new-workflow", f"NAME={name}", f"PYTHON={sys.executable}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def post(url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_a_scaffolded_workflow_runs_under_make_run_at_once(repo_copy: Path) -> None:
    made = make_new_workflow(repo_copy, "order_review")
    assert made.returncode == 0, made.stderr
    assert (repo_copy / "statemachine" / "order_review.v1.asl.json").is_file()
    assert (repo_copy / "functions" / "order_review" / "app.py").is_file()

    with running_local_server({"LOCAL_CONDUCTOR_KEYS": ""}, "--template", str(repo_copy / "template.yaml")) as server:
        status, body = post(f"{server.api}/workflow/execute/order_review", {"orderId": 42})
        assert (status, body["status"]) == (200, "COMPLETED")
        assert body["output"] == {"workflow": "order_review", "received": {"orderId": 42}}
        assert str(body["workflowId"]).startswith("order_review.1.conductor-")
        # The demo workflows are untouched.
        status, body = post(f"{server.api}/workflow/execute/hello_world", {"name": "Ada"})
        assert (status, body["output"]) == (200, {"greeting": "Hello, Ada!", "version": 2})

    lint = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(repo_copy / "template.yaml")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("name", ["hello_world", "Order", "order-review", "9lives", ""])
def test_a_taken_or_invalid_name_is_refused_and_nothing_is_written(repo_copy: Path, name: str) -> None:
    before = {p: p.read_bytes() for p in repo_copy.rglob("*") if p.is_file()}

    made = make_new_workflow(repo_copy, name)

    assert made.returncode != 0
    assert (name or "usage") in made.stdout + made.stderr
    assert {p: p.read_bytes() for p in repo_copy.rglob("*") if p.is_file()} == before


def test_scaffolding_twice_is_refused(repo_copy: Path) -> None:
    assert make_new_workflow(repo_copy, "order_review").returncode == 0
    template = (repo_copy / "template.yaml").read_text()

    again = make_new_workflow(repo_copy, "order_review")

    assert again.returncode != 0 and "exists already" in again.stderr
    assert (repo_copy / "template.yaml").read_text() == template
