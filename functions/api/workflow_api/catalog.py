"""Which workflows exist: names, versions and their state machines, and each one's task refs."""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from threading import Lock

from .errors import RunNotFound, WorkflowNotFound

# Every run this API starts is named with this prefix: the end-of-run rule (template.yaml) matches
# it, so the runs other teams start on the same state machines cost this stack nothing.
RUN_NAME_PREFIX = "conductor-"

# An execution name is ours (uuid hex, or derived from an idempotency key): letters, digits, - and _.
_WORKFLOW_ID = re.compile(
    r"^(?P<name>[A-Za-z0-9_-]{1,80})\.(?P<version>[1-9][0-9]{0,9})\.(?P<run>[A-Za-z0-9_-]{1,80})$"
)


@dataclass(frozen=True)
class WorkflowVersion:
    name: str
    version: int
    state_machine_arn: str

    def workflow_id(self, execution_name: str) -> str:
        """Opaque to callers, URL-safe, and enough to find the execution again without a lookup."""
        return f"{self.name}.{self.version}.{execution_name}"

    def execution_arn(self, execution_name: str) -> str:
        prefix, _, machine = self.state_machine_arn.partition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{execution_name}"


class WorkflowCatalog:
    def __init__(
        self,
        state_machines: Mapping[str, Mapping[int, str]],
        load_task_refs: Callable[[str], frozenset[str]],
    ) -> None:
        self._machines = {name: dict(versions) for name, versions in state_machines.items() if versions}
        self._load_task_refs = load_task_refs
        self._task_refs: dict[str, frozenset[str]] = {}
        self._lock = Lock()

    @property
    def names(self) -> dict[str, list[int]]:
        return {name: sorted(versions) for name, versions in sorted(self._machines.items())}

    def resolve(self, name: str, version: int | None) -> WorkflowVersion:
        """``version`` None or 0 means the latest, i.e. the highest deployed."""
        versions = self._machines.get(name)
        if not versions:
            raise WorkflowNotFound(f"No such workflow defined. name={name}")
        chosen = version or max(versions)
        if chosen not in versions:
            raise WorkflowNotFound(
                f"No such workflow defined. name={name}, version={version} (versions: {sorted(versions)})"
            )
        return WorkflowVersion(name, chosen, versions[chosen])

    def parse_workflow_id(self, workflow_id: str) -> tuple[WorkflowVersion, str]:
        """The workflow version and execution name a workflowId stands for."""
        match = _WORKFLOW_ID.fullmatch(workflow_id)
        if match is None:
            raise RunNotFound(f"No such workflow run: {workflow_id}")
        try:
            workflow = self.resolve(match["name"], int(match["version"]))
        except WorkflowNotFound:
            raise RunNotFound(f"No such workflow run: {workflow_id}") from None
        return workflow, match["run"]

    def task_refs(self, workflow: WorkflowVersion) -> frozenset[str]:
        """The state names of a version, read from Step Functions once per cold start."""
        with self._lock:
            refs = self._task_refs.get(workflow.state_machine_arn)
        if refs is None:
            refs = self._load_task_refs(workflow.state_machine_arn)
            with self._lock:
                self._task_refs[workflow.state_machine_arn] = refs
        return refs
