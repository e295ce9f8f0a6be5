"""WorkflowCatalog: names and versions, workflow ids, and each version's task refs."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow_api.catalog import WorkflowCatalog, WorkflowVersion
from workflow_api.errors import RunNotFound, WorkflowNotFound

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
    return WorkflowCatalog(MACHINES, loader)


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
    catalog = WorkflowCatalog({"empty": {}, "hello_world": MACHINES["hello_world"]}, lambda arn: frozenset())

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
    catalog = WorkflowCatalog(MACHINES, REFS.__getitem__)
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
    catalog = WorkflowCatalog(MACHINES, refs.__getitem__)

    assert catalog.task_refs(catalog.resolve("hello_world", 1)) == {"greet"}
    assert catalog.task_refs(catalog.resolve("hello_world", 2)) == {"hi"}


def test_a_failed_load_is_not_cached(loader):
    attempts = []

    def flaky(arn: str) -> frozenset[str]:
        attempts.append(arn)
        if len(attempts) == 1:
            raise WorkflowNotFound("state machine not visible yet")
        return frozenset({"greet"})

    catalog = WorkflowCatalog(MACHINES, flaky)
    workflow = catalog.resolve("hello_world", 1)

    with pytest.raises(WorkflowNotFound):
        catalog.task_refs(workflow)
    assert catalog.task_refs(workflow) == {"greet"}
    assert len(attempts) == 2
