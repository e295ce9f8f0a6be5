"""Which workflows exist: the state machines tagged ``workflow:name`` and ``workflow:version``,
wherever they were deployed, and each version's task refs.

The catalog is read from AWS (``adapters/workflow_tags.py``) on a container's first call and
again once it is ``cache_seconds`` old, so tagging, retagging or deleting a state machine needs
no redeploy. A name or version it does not know makes it look again at once, but never more
often than every ``refresh_floor_seconds``: callers asking for names that do not exist cannot
make it hammer AWS.
"""

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from threading import Lock

from .adapters.workflow_tags import NAME_TAG, VERSION_TAG, TaggedStateMachine
from .errors import RunNotFound, ServiceUnavailable, WorkflowAmbiguous, WorkflowNotFound
from .observability import logger

# Every run this API starts is named with this prefix: the end-of-run rule (template.yaml) matches
# it, so the runs other teams start on the same state machines cost this stack nothing.
RUN_NAME_PREFIX = "conductor-"

# What a workflowId is made of; a tagged name or version outside this is ignored (and logged).
_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_VERSION = re.compile(r"[1-9][0-9]{0,9}")
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


@dataclass(frozen=True)
class _Listing:
    """One reading of the tags: name -> version -> state machine, and the versions two or more
    state machines claim (never picked from: the caller is told, and the log says which)."""

    versions: dict[str, dict[int, str]] = field(default_factory=dict)
    claimed_twice: dict[tuple[str, int], list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, found: Iterable[TaggedStateMachine]) -> "_Listing":
        claims: dict[tuple[str, int], list[str]] = defaultdict(list)
        for machine in found:
            name, version_text = machine.tags.get(NAME_TAG, ""), machine.tags.get(VERSION_TAG, "")
            if not _NAME.fullmatch(name) or not _VERSION.fullmatch(version_text):
                logger.warning(
                    "state machine ignored: its workflow tags are not a name and a positive version",
                    extra={"state_machine": machine.arn, NAME_TAG: name, VERSION_TAG: version_text},
                )
                continue
            claims[(name, int(version_text))].append(machine.arn)
        listing = cls()
        for (name, version), arns in sorted(claims.items()):
            listing.versions.setdefault(name, {})[version] = arns[0]
            if len(arns) > 1:
                listing.claimed_twice[(name, version)] = sorted(arns)
                logger.error(
                    "one workflow version is tagged on several state machines; it cannot run until one is untagged",
                    extra={"workflow": name, "version": version, "state_machines": sorted(arns)},
                )
        return listing


def tagged(machines: Mapping[str, Mapping[int, str]]) -> Callable[[], list[TaggedStateMachine]]:
    """A fixed set of state machines, as if tagged so (tests, the bench)."""
    found = [
        TaggedStateMachine(arn, {NAME_TAG: name, VERSION_TAG: str(version)})
        for name, versions in machines.items()
        for version, arn in versions.items()
    ]
    return lambda: list(found)


class WorkflowCatalog:
    def __init__(
        self,
        discover: Callable[[], Iterable[TaggedStateMachine]],
        load_task_refs: Callable[[str], frozenset[str]],
        *,
        cache_seconds: float = 60.0,
        refresh_floor_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._discover = discover
        self._load_task_refs = load_task_refs
        self._cache_seconds = cache_seconds
        self._floor = refresh_floor_seconds
        self._clock = clock
        self._listing: _Listing | None = None
        self._read_at = self._tried_at = float("-inf")
        self._task_refs: dict[str, frozenset[str]] = {}
        self._lock = Lock()

    @property
    def names(self) -> dict[str, list[int]]:
        versions = self._current().versions
        return {name: sorted(by_version) for name, by_version in sorted(versions.items())}

    def resolve(self, name: str, version: int | None) -> WorkflowVersion:
        """``version`` None or 0 means the latest, i.e. the highest tagged."""
        listing = self._current()
        if not self._has(listing, name, version):
            listing = self._current(unknown=True)
        versions = listing.versions.get(name)
        if not versions:
            raise WorkflowNotFound(f"No such workflow defined. name={name}")
        chosen = version or max(versions)
        if chosen not in versions:
            raise WorkflowNotFound(
                f"No such workflow defined. name={name}, version={version} (versions: {sorted(versions)})"
            )
        if (name, chosen) in listing.claimed_twice:
            arns = ", ".join(listing.claimed_twice[(name, chosen)])
            raise WorkflowAmbiguous(
                f"Workflow {name} version {chosen} is tagged on more than one state machine ({arns}):"
                f" remove the {NAME_TAG} tag from all but one"
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
        """The state names of a version, read from Step Functions once per catalog reading (a
        definition may be updated in place, under the same ARN)."""
        with self._lock:
            refs = self._task_refs.get(workflow.state_machine_arn)
        if refs is None:
            refs = self._load_task_refs(workflow.state_machine_arn)
            with self._lock:
                self._task_refs[workflow.state_machine_arn] = refs
        return refs

    # --- reading the tags ---------------------------------------------------------------------

    @staticmethod
    def _has(listing: _Listing, name: str, version: int | None) -> bool:
        versions = listing.versions.get(name, {})
        return bool(versions) and (not version or version in versions)

    def _current(self, unknown: bool = False) -> _Listing:
        """The catalog, read again if it is older than ``cache_seconds``, or (``unknown``: a
        caller named what it lacks) older than the floor. A reading that fails keeps the one
        before, if any, and is not tried again before the floor has passed."""
        with self._lock:
            now = self._clock()
            age, since_tried = now - self._read_at, now - self._tried_at
            due = age >= self._cache_seconds or (unknown and age >= self._floor)
            if self._listing is not None and not (due and since_tried >= self._floor):
                return self._listing
            if self._listing is None and since_tried < self._floor:
                raise ServiceUnavailable("The workflow catalog could not be read from AWS; retry", 1)
            self._tried_at = now
            try:
                listing = _Listing.of(self._discover())
            except ServiceUnavailable:
                if self._listing is None:
                    raise
                logger.warning("workflow catalog not refreshed: AWS refused; the last reading stays")
                return self._listing
            self._listing, self._read_at = listing, now
            self._task_refs.clear()
            logger.info("workflow catalog read", extra={"workflows": len(listing.versions)})
            return listing
