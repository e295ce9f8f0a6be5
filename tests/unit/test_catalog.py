"""WorkflowCatalog: names and versions, workflow ids, and each version's task refs."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow_api.adapters.workflow_tags import TaggedStateMachine
from workflow_api.catalog import WorkflowCatalog, WorkflowVersion, tagged
from workflow_api.errors import RunNotFound, ServiceUnavailable, WorkflowAmbiguous, WorkflowNotFound

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:{}"
MACHINES = {
    "hello_world": {1: ARN.format("hello_world-v1"), 2: ARN.format("hello_world-v2")},
    "slow_steps": {1: ARN.format("slow_steps-v1")},
    "sparse": {3: ARN.format("sparse-v3"), 10: ARN.format("sparse-v10"), 7: ARN.format("sparse-v7")},
}
REFS = {
    ARN.format("hello_world-v1"): frozenset({"greet"}),
    ARN.format("hello_world-v2"): frozenset({"greet"}),
    ARN.format("slow_steps-v1"): frozenset({"start_step", "pause", "final_step"}),
}


class CountingLoader:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, arn: str) -> frozenset[str]:
        self.calls.append(arn)
        return REFS[arn]


@pytest.fixture
def loader() -> CountingLoader:
    return CountingLoader()


@pytest.fixture
def catalog(loader) -> WorkflowCatalog:
    return WorkflowCatalog(tagged(MACHINES), loader)


# resolve -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [None, 0])
def test_no_version_or_version_zero_means_the_highest_deployed(catalog, version):
    assert catalog.resolve("hello_world", version) == WorkflowVersion("hello_world", 2, ARN.format("hello_world-v2"))


def test_latest_is_the_highest_number_not_the_last_listed(catalog):
    assert catalog.resolve("sparse", None).version == 10


def test_a_given_version_is_that_version(catalog):
    chosen = catalog.resolve("hello_world", 1)

    assert (chosen.version, chosen.state_machine_arn) == (1, ARN.format("hello_world-v1"))


def test_unknown_name_is_not_found(catalog):
    with pytest.raises(WorkflowNotFound) as caught:
        catalog.resolve("nope", None)

    assert caught.value.status == 404
    assert "nope" in caught.value.message


@pytest.mark.parametrize("version", [3, 99, -1])
def test_unknown_version_is_not_found_and_says_which_exist(catalog, version):
    with pytest.raises(WorkflowNotFound) as caught:
        catalog.resolve("hello_world", version)

    assert "[1, 2]" in caught.value.message


def test_a_name_without_versions_does_not_exist():
    catalog = WorkflowCatalog(tagged({"empty": {}, "hello_world": MACHINES["hello_world"]}), lambda arn: frozenset())

    with pytest.raises(WorkflowNotFound):
        catalog.resolve("empty", None)
    assert catalog.names == {"hello_world": [1, 2]}


def test_names_lists_every_workflow_with_sorted_versions(catalog):
    assert catalog.names == {"hello_world": [1, 2], "slow_steps": [1], "sparse": [3, 7, 10]}


# workflow ids --------------------------------------------------------------------------------


def test_workflow_id_round_trips(catalog):
    workflow = catalog.resolve("hello_world", None)
    workflow_id = workflow.workflow_id("0f8e7d6c5b4a39281706f5e4d3c2b1a0")

    assert catalog.parse_workflow_id(workflow_id) == (workflow, "0f8e7d6c5b4a39281706f5e4d3c2b1a0")


@given(execution_name=st.from_regex(r"[A-Za-z0-9_-]{1,80}", fullmatch=True))
def test_any_execution_name_we_make_round_trips(execution_name):
    catalog = WorkflowCatalog(tagged(MACHINES), REFS.__getitem__)
    workflow = catalog.resolve("slow_steps", 1)

    assert catalog.parse_workflow_id(workflow.workflow_id(execution_name)) == (workflow, execution_name)


def test_workflow_id_is_url_safe(catalog):
    workflow_id = catalog.resolve("hello_world", 2).workflow_id("key-abc_123")

    assert workflow_id == "hello_world.2.key-abc_123"
    assert all(c.isalnum() or c in "._-" for c in workflow_id)


def test_execution_arn_is_in_the_state_machines_account_and_region(catalog):
    workflow = catalog.resolve("hello_world", 1)

    assert workflow.execution_arn("abc") == "arn:aws:states:us-east-1:123456789012:execution:hello_world-v1:abc"


@pytest.mark.parametrize(
    "workflow_id",
    [
        "",
        "hello_world",
        "hello_world.1",
        "hello_world.1.",
        ".1.abc",
        "hello_world..abc",
        "hello_world.0.abc",  # no version 0 in an id: ids carry the resolved version
        "hello_world.01.abc",
        "hello_world.x.abc",
        "hello_world.1.a.b",
        "hello_world.1.a/b",
        "hello_world.1.a b",
        "hello_world.1.../etc/passwd",
        "hello_world.1." + "a" * 81,
        "hello_world.1.abc%0A",
        "arn:aws:states:us-east-1:123456789012:execution:hello_world-v1:abc",
    ],
)
def test_junk_workflow_ids_are_run_not_found(catalog, workflow_id):
    with pytest.raises(RunNotFound) as caught:
        catalog.parse_workflow_id(workflow_id)

    assert caught.value.status == 404


def test_workflow_id_with_a_trailing_newline_is_run_not_found(catalog):
    """``%0A`` at the end of the URL path must not name the same run as the id without it."""
    with pytest.raises(RunNotFound):
        catalog.parse_workflow_id("hello_world.1.abc\n")


@pytest.mark.parametrize("workflow_id", ["nope.1.abc", "hello_world.3.abc", "slow_steps.2.abc"])
def test_ids_of_unknown_workflows_or_versions_are_run_not_found(catalog, workflow_id):
    with pytest.raises(RunNotFound):
        catalog.parse_workflow_id(workflow_id)


# task refs -----------------------------------------------------------------------------------


def test_task_refs_come_from_the_loader(catalog, loader):
    refs = catalog.task_refs(catalog.resolve("slow_steps", 1))

    assert refs == {"start_step", "pause", "final_step"}
    assert loader.calls == [ARN.format("slow_steps-v1")]


def test_task_refs_are_loaded_once_per_version(catalog, loader):
    slow = catalog.resolve("slow_steps", 1)
    for _ in range(5):
        catalog.task_refs(slow)
    catalog.task_refs(catalog.resolve("hello_world", 1))
    catalog.task_refs(catalog.resolve("hello_world", 1))

    assert loader.calls == [ARN.format("slow_steps-v1"), ARN.format("hello_world-v1")]


def test_each_version_has_its_own_task_refs(loader):
    refs = {ARN.format("hello_world-v1"): frozenset({"greet"}), ARN.format("hello_world-v2"): frozenset({"hi"})}
    catalog = WorkflowCatalog(tagged(MACHINES), refs.__getitem__)

    assert catalog.task_refs(catalog.resolve("hello_world", 1)) == {"greet"}
    assert catalog.task_refs(catalog.resolve("hello_world", 2)) == {"hi"}


def test_a_failed_load_is_not_cached(loader):
    attempts = []

    def flaky(arn: str) -> frozenset[str]:
        attempts.append(arn)
        if len(attempts) == 1:
            raise WorkflowNotFound("state machine not visible yet")
        return frozenset({"greet"})

    catalog = WorkflowCatalog(tagged(MACHINES), flaky)
    workflow = catalog.resolve("hello_world", 1)

    with pytest.raises(WorkflowNotFound):
        catalog.task_refs(workflow)
    assert catalog.task_refs(workflow) == {"greet"}
    assert len(attempts) == 2


# reading the tags: when, how often, and what a reading holds ------------------------------------


class Tags:
    """The Tagging API's answer, changeable between readings, counting each reading."""

    def __init__(self, machines: dict[str, dict[int, str]]) -> None:
        self.found = tagged(machines)()
        self.readings = 0
        self.failing = False

    def __call__(self) -> list[TaggedStateMachine]:
        self.readings += 1
        if self.failing:
            raise ServiceUnavailable("throttled")
        return list(self.found)

    def tag(self, arn: str, name: str, version: str) -> None:
        self.found.append(TaggedStateMachine(arn, {"workflow:name": name, "workflow:version": version}))

    def untag(self, arn: str) -> None:
        self.found = [machine for machine in self.found if machine.arn != arn]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reading(tags: Tags, clock: Clock, cache: float = 60, floor: float = 5) -> WorkflowCatalog:
    return WorkflowCatalog(tags, lambda arn: frozenset(), cache_seconds=cache, refresh_floor_seconds=floor, clock=clock)


def test_the_tags_are_read_once_then_again_only_when_the_reading_is_cache_seconds_old():
    tags, clock = Tags(MACHINES), Clock()
    catalog = reading(tags, clock)
    for _ in range(10):
        catalog.resolve("hello_world", None)
    assert tags.readings == 1

    tags.tag(ARN.format("hello_world-v3"), "hello_world", "3")
    clock.now += 59.9
    assert catalog.resolve("hello_world", None).version == 2  # the cached reading still
    clock.now += 0.1
    assert catalog.resolve("hello_world", None).version == 3
    assert tags.readings == 2


def test_an_unknown_name_reads_the_tags_at_once_but_never_more_often_than_the_floor():
    tags, clock = Tags(MACHINES), Clock()
    catalog = reading(tags, clock)
    catalog.resolve("hello_world", 1)
    clock.now += 5

    tags.tag(ARN.format("new-v1"), "new_workflow", "1")
    assert catalog.resolve("new_workflow", None).state_machine_arn == ARN.format("new-v1")
    assert tags.readings == 2

    for _ in range(100):  # a caller naming what does not exist, over and over
        with pytest.raises(WorkflowNotFound):
            catalog.resolve("no_such_workflow", None)
        clock.now += 0.01
    assert tags.readings == 2  # within the floor: no reading
    clock.now += 5
    with pytest.raises(WorkflowNotFound):
        catalog.resolve("no_such_workflow", None)
    assert tags.readings == 3


def test_an_unknown_version_of_a_known_name_reads_the_tags_again_too():
    tags, clock = Tags(MACHINES), Clock()
    catalog = reading(tags, clock)
    catalog.resolve("hello_world", 1)
    clock.now += 5
    tags.tag(ARN.format("hello_world-v3"), "hello_world", "3")

    assert catalog.resolve("hello_world", 3).state_machine_arn == ARN.format("hello_world-v3")


def test_an_untagged_state_machine_is_gone_after_the_cache_time_and_its_runs_with_it():
    tags, clock = Tags(MACHINES), Clock()
    catalog = reading(tags, clock)
    workflow_id = catalog.resolve("slow_steps", 1).workflow_id("conductor-abc")
    tags.untag(ARN.format("slow_steps-v1"))

    assert catalog.parse_workflow_id(workflow_id)[1] == "conductor-abc"  # within the cache time
    clock.now += 60
    with pytest.raises(WorkflowNotFound):
        catalog.resolve("slow_steps", 1)
    with pytest.raises(RunNotFound):
        catalog.parse_workflow_id(workflow_id)


def test_a_version_tagged_on_two_state_machines_is_refused_and_never_picked():
    tags, clock = Tags(MACHINES), Clock()
    tags.tag(ARN.format("impostor"), "hello_world", "2")
    catalog = reading(tags, clock)

    for version in (2, None):  # latest is 2: refused too, never a random pick
        with pytest.raises(WorkflowAmbiguous) as caught:
            catalog.resolve("hello_world", version)
        assert caught.value.status == 409
        assert ARN.format("hello_world-v2") in caught.value.message and ARN.format("impostor") in caught.value.message
    assert catalog.resolve("hello_world", 1).state_machine_arn == ARN.format("hello_world-v1")


@pytest.mark.parametrize(
    "tags",
    [
        {"workflow:name": "bad name", "workflow:version": "1"},
        {"workflow:name": "ok", "workflow:version": "0"},
        {"workflow:name": "ok", "workflow:version": "v2"},
        {"workflow:name": "ok", "workflow:version": "-1"},
        {"workflow:name": "ok"},
        {"workflow:name": "has.dot", "workflow:version": "1"},
    ],
)
def test_a_state_machine_whose_tags_are_not_a_name_and_version_is_ignored(tags):
    found = [*tagged(MACHINES)(), TaggedStateMachine(ARN.format("odd"), tags)]
    catalog = WorkflowCatalog(lambda: found, lambda arn: frozenset())

    assert catalog.names == {"hello_world": [1, 2], "slow_steps": [1], "sparse": [3, 7, 10]}


def test_a_failed_reading_keeps_the_last_one_and_waits_the_floor_before_trying_again():
    tags, clock = Tags(MACHINES), Clock()
    catalog = reading(tags, clock)
    catalog.resolve("hello_world", 1)
    tags.failing = True
    clock.now += 60

    assert catalog.resolve("hello_world", 1).version == 1  # stale, but an answer
    assert catalog.resolve("hello_world", 1).version == 1
    assert tags.readings == 2
    clock.now += 5
    tags.failing = False
    catalog.resolve("hello_world", 1)
    assert tags.readings == 3


def test_without_any_reading_a_refusal_is_a_503_and_is_not_retried_within_the_floor():
    tags, clock = Tags(MACHINES), Clock()
    tags.failing = True
    catalog = reading(tags, clock)

    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            catalog.resolve("hello_world", 1)
    assert tags.readings == 1
    clock.now += 5
    tags.failing = False
    assert catalog.resolve("hello_world", 1).version == 1


def test_task_refs_are_read_again_after_a_new_reading_of_the_tags():
    """A definition may be updated in place, under the same ARN."""
    tags, clock, loaded = Tags(MACHINES), Clock(), []
    catalog = WorkflowCatalog(tags, lambda arn: loaded.append(arn) or frozenset(), clock=clock)
    workflow = catalog.resolve("slow_steps", 1)
    catalog.task_refs(workflow)
    catalog.task_refs(workflow)
    clock.now += 60
    catalog.task_refs(catalog.resolve("slow_steps", 1))

    assert loaded == [ARN.format("slow_steps-v1")] * 2
