"""Which state machines say they are workflows: the Resource Groups Tagging API's answer.

One GetResources call lists up to 100 tagged state machines with their tags, whichever stack
made them, and none of the account's untagged ones. The other way, ListStateMachines then
ListTagsForResource per state machine, costs 1 + N Step Functions calls for N state machines in
the account and region, from the quota the runs' own reads share (bench/catalog.py counts both).
"""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from .aws import aws_errors, tagging_client

NAME_TAG = "workflow:name"
VERSION_TAG = "workflow:version"
# GetResources' largest page.
PAGE_SIZE = 100


@dataclass(frozen=True)
class TaggedStateMachine:
    arn: str
    tags: dict[str, str]


class WorkflowTags:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client or tagging_client()

    def state_machines(self, calls: Counter[str] | None = None) -> list[TaggedStateMachine]:
        """Every state machine of this account and region that carries the ``workflow:name`` tag."""
        found: list[TaggedStateMachine] = []
        token = ""
        while True:
            if calls is not None:
                calls["GetResources"] += 1
            with aws_errors("The Resource Groups Tagging API"):
                page = self._client.get_resources(
                    ResourceTypeFilters=["states:stateMachine"],
                    TagFilters=[{"Key": NAME_TAG}],
                    ResourcesPerPage=PAGE_SIZE,
                    PaginationToken=token,
                )
            for resource in page.get("ResourceTagMappingList", []):
                tags = {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}
                found.append(TaggedStateMachine(resource["ResourceARN"], tags))
            token = page.get("PaginationToken") or ""
            if not token:
                return found
