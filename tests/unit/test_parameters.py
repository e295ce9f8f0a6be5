"""read_run_options: the call's parameters as headers or query parameters, validated."""

import uuid

import pytest

from workflow_api.errors import InvalidRequest
from workflow_api.parameters import DEFAULT_WAIT_SECONDS, read_run_options


def _refused(headers=None, query=None, **kwargs) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        read_run_options(headers, query, **kwargs)
    assert caught.value.errors, "a 400 must say which parameter is wrong"
    return caught.value


def _paths(error: InvalidRequest) -> list[str]:
    return [e.path for e in error.errors]


# Defaults ----------------------------------------------------------------------------------------


def test_defaults_when_nothing_is_given():
    options = read_run_options(None, None)

    assert options.wait_for_seconds == DEFAULT_WAIT_SECONDS == 10
    assert options.version is None
    assert options.wait_until_task_refs == frozenset()
    assert options.idempotency_key is None
    assert options.on_conflict is None
    assert uuid.UUID(options.request_id)  # generated when absent


def test_each_call_gets_its_own_generated_request_id():
    assert read_run_options({}, {}).request_id != read_run_options({}, {}).request_id


def test_unrelated_headers_are_ignored():
    options = read_run_options({"Content-Type": "application/json", "User-Agent": "curl/8"}, {"foo": "bar"})

    assert options.wait_for_seconds == 10


# Headers and query parameters, any case -----------------------------------------------------------


@pytest.mark.parametrize("name", ["waitForSeconds", "waitforseconds", "WAITFORSECONDS", "WaitForSeconds"])
def test_header_names_match_case_insensitively(name):
    assert read_run_options({name: "3"}, None).wait_for_seconds == 3


def test_every_parameter_as_headers_the_seeds_form():
    options = read_run_options(
        {
            "version": "2",
            "requestId": "req-1",
            "waitUntilTaskRef": "start_step",
            "waitForSeconds": "5",
            "X-Idempotency-key": "order-42",
            "X-on-conflict": "RETURN_EXISTING",
            "consistency": "SYNCHRONOUS",
            "returnStrategy": "TARGET_WORKFLOW",
        },
        None,
    )

    assert options.version == 2
    assert options.request_id == "req-1"
    assert options.wait_until_task_refs == {"start_step"}
    assert options.wait_for_seconds == 5
    assert options.idempotency_key == "order-42"
    assert options.on_conflict == "RETURN_EXISTING"
    assert options.consistency == "SYNCHRONOUS"
    assert options.return_strategy == "TARGET_WORKFLOW"


def test_every_parameter_as_query_the_conductor_servers_form():
    options = read_run_options(
        None,
        {
            "version": "1",
            "requestId": "req-2",
            "waitUntilTaskRef": "final_step",
            "waitForSeconds": "0",
            "x-idempotency-key": "k",
            "x-on-conflict": "FAIL",
        },
    )

    assert options.version == 1
    assert options.request_id == "req-2"
    assert options.wait_until_task_refs == {"final_step"}
    assert options.wait_for_seconds == 0
    assert options.idempotency_key == "k"
    assert options.on_conflict == "FAIL"


def test_multi_value_headers_as_api_gateway_sends_them():
    options = read_run_options({"WaitForSeconds": ["7"], "X-Request-Id": ["ignored"]}, {"version": ["2"]})

    assert options.wait_for_seconds == 7
    assert options.version == 2


# Conflicts --------------------------------------------------------------------------------------


def test_header_and_query_that_agree_are_fine():
    assert read_run_options({"waitForSeconds": "5"}, {"waitForSeconds": "5"}).wait_for_seconds == 5


def test_header_and_query_that_disagree_are_refused():
    error = _refused({"waitForSeconds": "5"}, {"waitForSeconds": "7"})

    assert error.status == 400
    assert _paths(error) == ["waitForSeconds"]


def test_header_and_query_disagreeing_in_different_case_are_refused():
    error = _refused({"x-idempotency-key": "a"}, {"X-Idempotency-Key": "b", "X-on-conflict": "FAIL"})

    assert _paths(error) == ["X-Idempotency-key"]


def test_a_header_repeated_with_different_values_is_refused():
    error = _refused({"X-Idempotency-key": ["a", "b"], "X-on-conflict": ["FAIL"]}, None)

    assert _paths(error) == ["X-Idempotency-key"]


def test_every_conflict_is_reported_not_just_the_first():
    error = _refused({"waitForSeconds": "5", "version": "1"}, {"waitForSeconds": "6", "version": "2"})

    assert sorted(_paths(error)) == ["version", "waitForSeconds"]


def test_path_or_body_value_agreeing_with_the_query_is_fine():
    options = read_run_options(None, {"version": "2"}, extra={"version": 2})

    assert options.version == 2


def test_path_or_body_value_disagreeing_with_the_query_is_refused():
    error = _refused(None, {"version": "1"}, extra={"version": 2})

    assert _paths(error) == ["version"]


def test_body_idempotency_fields_are_the_same_as_the_headers():
    options = read_run_options(None, None, extra={"idempotency_key": "k", "on_conflict": "FAIL_ON_RUNNING"})

    assert (options.idempotency_key, options.on_conflict) == ("k", "FAIL_ON_RUNNING")


def test_body_idempotency_key_disagreeing_with_the_header_is_refused():
    error = _refused(
        {"X-Idempotency-key": "from-header", "X-on-conflict": "FAIL"}, None, extra={"idempotency_key": "from-body"}
    )

    assert _paths(error) == ["X-Idempotency-key"]


def test_absent_body_values_do_not_conflict():
    options = read_run_options(
        {"X-Idempotency-key": "k", "X-on-conflict": "FAIL"}, None, extra={"idempotency_key": None}
    )

    assert options.idempotency_key == "k"


# waitUntilTaskRef -----------------------------------------------------------------------------


def test_wait_until_task_ref_takes_a_comma_list():
    options = read_run_options({"waitUntilTaskRef": "start_step, pause ,final_step"}, None)

    assert options.wait_until_task_refs == {"start_step", "pause", "final_step"}


def test_wait_until_task_ref_drops_empty_items_and_repeats():
    options = read_run_options({"waitUntilTaskRef": "pause,,pause,"}, None)

    assert options.wait_until_task_ref == ("pause",)


@pytest.mark.parametrize("value", [" ", ",", " , ,"])
def test_wait_until_task_ref_without_any_name_is_refused(value):
    error = _refused({"waitUntilTaskRef": value}, None)

    assert _paths(error) == ["waitUntilTaskRef"]


def test_too_many_task_refs_are_refused():
    error = _refused({"waitUntilTaskRef": ",".join(f"t{i}" for i in range(101))}, None)

    assert _paths(error) == ["waitUntilTaskRef"]


# waitForSeconds --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "1", "25", "3600"])
def test_wait_for_seconds_accepts_non_negative_integers_even_above_the_maximum(value):
    assert read_run_options({"waitForSeconds": value}, None).wait_for_seconds == int(value)


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", " ", "NONE", "nil"])
def test_wait_for_seconds_refuses_other_values(value):
    error = _refused({"waitForSeconds": value}, None)

    assert _paths(error) == ["waitForSeconds"]
    assert error.errors[0].invalid_value == value


# version ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "two", "1.0x"])
def test_version_refuses_non_integers_and_negatives(value):
    error = _refused(None, {"version": value})

    assert _paths(error) == ["version"]


# Idempotency key and strategy -------------------------------------------------------------------


def test_idempotency_key_of_256_printable_characters_is_accepted():
    key = ("a-Z_0 9~!" * 30)[:256]

    assert read_run_options({"X-Idempotency-key": key, "X-on-conflict": "FAIL"}, None).idempotency_key == key


def test_idempotency_key_of_257_characters_is_refused():
    error = _refused({"X-Idempotency-key": "k" * 257, "X-on-conflict": "FAIL"}, None)

    assert _paths(error) == ["X-Idempotency-key"]


@pytest.mark.parametrize("key", ["tab\there", "new\nline", "bell\x07", "nul\x00"])
def test_idempotency_key_with_control_characters_is_refused(key):
    error = _refused({"X-Idempotency-key": key, "X-on-conflict": "FAIL"}, None)

    assert _paths(error) == ["X-Idempotency-key"]


def test_idempotency_key_without_strategy_is_refused_naming_the_strategy_header():
    error = _refused({"X-Idempotency-key": "order-42"}, None)

    described = " ".join(f"{e.path} {e.message}" for e in error.errors)
    assert "X-on-conflict" in described
    assert "RETURN_EXISTING" in described


@pytest.mark.parametrize("strategy", ["RETURN_EXISTING", "FAIL", "FAIL_ON_RUNNING"])
def test_each_strategy_is_accepted(strategy):
    options = read_run_options({"X-Idempotency-key": "k", "X-on-conflict": strategy}, None)

    assert options.on_conflict == strategy


@pytest.mark.parametrize("strategy", ["return_existing", "IGNORE", ""])
def test_unknown_strategy_is_refused(strategy):
    error = _refused({"X-Idempotency-key": "k", "X-on-conflict": strategy}, None)

    assert "X-on-conflict" in _paths(error)


# consistency and returnStrategy --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["SYNCHRONOUS", "DURABLE", "REGION_DURABLE"])
def test_every_consistency_is_accepted(value):
    assert read_run_options(None, {"consistency": value}).consistency == value


def test_unknown_consistency_is_refused():
    error = _refused(None, {"consistency": "EVENTUAL"})

    assert _paths(error) == ["consistency"]


def test_return_strategy_target_workflow_is_accepted():
    assert read_run_options(None, {"returnStrategy": "TARGET_WORKFLOW"}).return_strategy == "TARGET_WORKFLOW"


@pytest.mark.parametrize("value", ["BLOCKING_WORKFLOW", "BLOCKING_TASK", "BLOCKING_TASK_INPUT"])
def test_other_return_strategies_are_refused_naming_the_supported_one(value):
    error = _refused(None, {"returnStrategy": value})

    assert _paths(error) == ["returnStrategy"]
    assert "TARGET_WORKFLOW" in error.errors[0].message


# requestId -------------------------------------------------------------------------------------


def test_request_id_is_echoed():
    assert read_run_options({"requestId": "abc-123"}, None).request_id == "abc-123"


@pytest.mark.parametrize("value", ["x" * 129, "line\nbreak"])
def test_request_id_too_long_or_not_printable_is_refused(value):
    error = _refused({"requestId": value}, None)

    assert _paths(error) == ["requestId"]


def test_several_bad_values_are_all_reported():
    error = _refused({"waitForSeconds": "-5", "version": "x", "consistency": "NOPE"}, None)

    assert sorted(_paths(error)) == ["consistency", "version", "waitForSeconds"]


def test_a_huge_bad_value_is_echoed_shortened():
    error = _refused({"requestId": "y" * 10_000}, None)

    assert len(str(error.errors[0].invalid_value)) < 300


# Absent values: what Conductor's SDKs send for an argument they were not given ------------------

ABSENT = ["", "None", "null"]


@pytest.mark.parametrize("value", ABSENT)
@pytest.mark.parametrize(
    "name",
    ["version", "requestId", "waitForSeconds", "X-Idempotency-key", "X-on-conflict", "consistency", "returnStrategy"],
)
@pytest.mark.parametrize("where", ["header", "query"])
def test_an_empty_none_or_null_parameter_is_absent(where, name, value):
    given = {name: value}
    options = read_run_options(given if where == "header" else None, given if where == "query" else None)

    defaults = read_run_options(None, None)
    assert options.model_dump(exclude={"request_id", "task_ref_if_a_state"}) == defaults.model_dump(
        exclude={"request_id", "task_ref_if_a_state"}
    )
    assert uuid.UUID(options.request_id)  # requestId=None: one is generated, "None" is never echoed


def test_the_python_sdks_execute_query_is_accepted():
    """conductor-python 2.0.0's execute_workflow_with_return_strategy, as it reaches the server."""
    options = read_run_options(
        None,
        {
            "requestId": ["None"],
            "waitUntilTaskRef": ["None"],
            "waitForSeconds": ["30"],
            "consistency": ["DURABLE"],
            "returnStrategy": ["TARGET_WORKFLOW"],
        },
    )

    assert uuid.UUID(options.request_id)
    assert options.wait_until_task_refs == frozenset()
    assert options.wait_for_seconds == 30


def test_the_javascript_sdks_empty_task_ref_is_absent():
    options = read_run_options(None, {"requestId": "r-1", "waitUntilTaskRef": "", "waitForSeconds": "10"})

    assert options.wait_until_task_refs == frozenset()
    assert options.task_ref_if_a_state is None


@pytest.mark.parametrize("value", ["None", "null"])
def test_a_none_or_null_task_ref_is_kept_for_a_state_of_that_name(value):
    options = read_run_options(None, {"waitUntilTaskRef": value})

    assert options.wait_until_task_refs == frozenset()  # absent unless the workflow has that state
    assert options.task_ref_if_a_state == value


def test_a_real_task_ref_wins_over_a_none_one():
    options = read_run_options({"waitUntilTaskRef": "greet"}, {"waitUntilTaskRef": "None"})

    assert options.wait_until_task_refs == {"greet"}
    assert options.task_ref_if_a_state is None


@pytest.mark.parametrize("value", ["none", "NULL", "Null", "undefined"])
def test_other_spellings_are_real_values(value):
    """Only the SDKs' exact spellings are absent: anything else is validated as given."""
    error = _refused(None, {"waitForSeconds": value})

    assert error.errors[0].invalid_value == value


def test_an_absent_value_does_not_conflict_with_a_real_one():
    options = read_run_options({"waitForSeconds": "5", "version": "None"}, {"waitForSeconds": "None", "version": "2"})

    assert (options.wait_for_seconds, options.version) == (5, 2)


def test_a_repeated_parameter_with_one_absent_value_takes_the_real_one():
    options = read_run_options(None, {"waitForSeconds": ["None", "7", ""]})

    assert options.wait_for_seconds == 7


def test_a_repeated_or_conflicting_real_value_is_still_refused():
    assert _paths(_refused(None, {"waitForSeconds": ["None", "5", "7"]})) == ["waitForSeconds"]
    assert _paths(_refused({"requestId": "a"}, {"requestId": ["None", "b"]})) == ["requestId"]


def test_an_empty_idempotency_key_is_no_key():
    options = read_run_options({"X-Idempotency-key": "", "X-on-conflict": "FAIL"}, None)

    assert options.idempotency_key is None


def test_an_empty_body_idempotency_key_is_no_key():
    options = read_run_options(None, None, extra={"idempotency_key": "", "on_conflict": "FAIL"})

    assert options.idempotency_key is None


def test_an_absent_strategy_with_a_real_key_is_still_refused():
    error = _refused({"X-Idempotency-key": "k", "X-on-conflict": "None"}, None)

    assert _paths(error) == ["X-on-conflict"]


@pytest.mark.parametrize(("value", "expected"), [("None", True), ("null", True), ("", True), ("false", False)])
def test_include_tasks_flag_reads_absent_values_as_its_default(value, expected):
    from pydantic import TypeAdapter

    from workflow_api.parameters import FlagTrueByDefault

    assert TypeAdapter(FlagTrueByDefault).validate_python(value) is expected
