"""How the API finds its workflows: two ways of reading the tagged state machines, in AWS calls and
time per reading of the catalog, with many state machines in the account and a few tagged.

- ``tagging``: the Resource Groups Tagging API's GetResources, filtered on the state machine type and
  the ``workflow:name`` key (``workflow_api/adapters/workflow_tags.py``, what the API does);
- ``list+tags``: Step Functions' ListStateMachines, then ListTagsForResource for each state machine.

Run by ``make bench`` (section "catalog"), or alone: ``.venv/bin/python bench/catalog.py``.
Counts are exact; times are medians on moto, which answers at once: AWS adds a round trip a call.
"""

import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
PASS = json.dumps({"StartAt": "done", "States": {"done": {"Type": "Pass", "End": True}}})
ACCOUNT_SIZES = ((50, 5), (500, 20), (2000, 150))  # (state machines in the account, of them tagged)
REPEATS = 9


def _counted(client: Any, calls: Counter[str]) -> Any:
    client.meta.events.register("before-call.*.*", lambda model, **_: calls.update([model.name]))
    return client


def by_tagging_api(calls: Counter[str]) -> dict[str, str]:
    sys.path.insert(0, str(ROOT / "functions" / "api"))
    from workflow_api.adapters.workflow_tags import WorkflowTags

    tagging = _counted(boto3.client("resourcegroupstaggingapi", region_name=REGION), calls)
    return {machine.arn: machine.tags["workflow:name"] for machine in WorkflowTags(tagging).state_machines()}


def by_listing_and_tags(calls: Counter[str]) -> dict[str, str]:
    sfn = _counted(boto3.client("stepfunctions", region_name=REGION), calls)
    found: dict[str, str] = {}
    for page in sfn.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": 1000}):
        for machine in page["stateMachines"]:
            tags = {
                t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=machine["stateMachineArn"])["tags"]
            }
            if "workflow:name" in tags:
                found[machine["stateMachineArn"]] = tags["workflow:name"]
    return found


def measure(total: int, tagged: int) -> dict[str, Any]:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name=REGION)
        for i in range(total):
            tags = [{"key": "workflow:name", "value": f"w{i}"}, {"key": "workflow:version", "value": "1"}]
            sfn.create_state_machine(
                name=f"machine-{i}",
                definition=PASS,
                roleArn="arn:aws:iam::123456789012:role/r",
                tags=tags if i < tagged else [{"key": "team", "value": "other"}],
            )
        row: dict[str, Any] = {"state_machines": total, "tagged": tagged}
        for label, read in (("tagging", by_tagging_api), ("list+tags", by_listing_and_tags)):
            times, calls = [], Counter[str]()
            for _ in range(REPEATS):
                calls.clear()
                began = time.perf_counter()
                found = read(calls)
                times.append(time.perf_counter() - began)
                assert len(found) == tagged, (label, len(found))
            row[label] = {"calls": dict(calls), "median_ms": round(statistics.median(times) * 1000, 1)}
        return row


def catalog_section() -> list[dict[str, Any]]:
    return [measure(total, tagged) for total, tagged in ACCOUNT_SIZES]


def render(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["state machines (tagged) | tagging API: calls, median ms | list+tags: Step Functions calls, median ms"]
    for row in rows:
        tagging, listing = row["tagging"], row["list+tags"]
        lines.append(
            f"{row['state_machines']} ({row['tagged']}) | {sum(tagging['calls'].values())}, {tagging['median_ms']}"
            f" | {sum(listing['calls'].values())}, {listing['median_ms']}"
        )
    return lines


if __name__ == "__main__":
    measured = catalog_section()
    print("\n".join(render(measured)))
    out = ROOT / "bench" / "results" / "catalog.json"
    out.write_text(json.dumps(measured, indent=2) + "\n")
    print(f"\nwritten to {out}")
