"""template.yaml's rights inside the table, and what keeps a run's end from being lost.

Inside the table (docs/SECURITY.md, "Inside the table"): each function's statements are evaluated
as IAM evaluates them for a request on one item (its action, the table's ARN, the item's key as
``dynamodb:LeadingKeys``), for each kind of item. What they must allow is read from the code: the
DynamoDB calls each adapter makes, so a new call cannot go ungranted unseen (moto enforces no IAM).

Nothing silently lost (docs/OPERATIONS.md): the end-of-run rule's dead-letter queue, Lambda's
on-failure destination into the same queue, and the alarms, each a parameter away from SNS.
"""

import ast
import json
import os
import re
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from local_mode import limits
from local_mode import template as cfn

ROOT = cfn.ROOT
TEMPLATE = cfn.load()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {lid: r for lid, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
ALARMS = {lid: r for lid, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
TABLE = {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
TABLE_ARN = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${IdempotencyTable}"
QUEUE = "RunEndsDeadLetterQueue"
ADAPTERS = ROOT / "functions" / "api" / "workflow_api" / "adapters"

# The table's kinds of item, by the prefix of their key ("other#": a key of no kind).
PREFIXES = ("key#", "run#", "status#", "apikey#", "other#")
ACTIONS = (
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "ConditionCheckItem",
    "BatchGetItem",
    "BatchWriteItem",
    "Query",
    "Scan",
    "PartiQLSelect",
    "PartiQLInsert",
    "PartiQLUpdate",
    "PartiQLDelete",
)
# Each adapter's kind of item...
PREFIX_OF = {"idempotency_store": "key#", "run_records": "run#", "run_signals": "status#", "api_keys": "apikey#"}
# ...and who makes each of its DynamoDB calls. Empty: scripts/conductor_keys.py, with the
# operator's own credentials. A call the code adds fails test_the_grants_follow_the_codes_calls
# until it is written here, and granted in template.yaml to just the function that makes it.
CALLERS: dict[tuple[str, str], set[str]] = {
    ("idempotency_store", "PutItem"): {"ApiFunction"},  # conditional; the winner comes back (ALL_OLD)
    ("run_records", "PutItem"): {"ApiFunction"},
    ("run_records", "GetItem"): {"ApiFunction"},
    ("run_records", "Query"): {"ApiFunction"},  # the correlated index, not the table
    ("run_signals", "PutItem"): {"RunStatusFunction"},  # RunSignals.record, run_status.py
    ("run_signals", "GetItem"): {"ApiFunction"},  # RunSignals.ended, run_wait.py
    ("api_keys", "GetItem"): {"TokenFunction", "AuthorizerFunction"},
    ("api_keys", "PutItem"): set(),
    ("api_keys", "UpdateItem"): set(),
    ("api_keys", "Scan"): set(),
}


def statements(logical_id: str) -> list[dict[str, Any]]:
    """A function's inline statements; SAM policy templates are refused on the table (this test
    could not evaluate them)."""
    found = []
    for policy in FUNCTIONS[logical_id]["Properties"].get("Policies", []):
        if "Statement" not in policy:
            assert not [name for name in policy if name.startswith("DynamoDB")], (logical_id, policy)
            continue
        found.extend(policy["Statement"])
    return found


def on_table(resource: Any) -> bool:
    """Whether a statement's resource covers the table itself (not its index)."""
    if resource == "*" or resource == TABLE:
        return True
    text = resource.get("Fn::Sub") if isinstance(resource, dict) else None
    return isinstance(text, str) and fnmatchcase(TABLE_ARN, text)


def condition_holds(condition: dict[str, Any] | None, keys: list[str]) -> bool:
    """IAM's answer for the one condition these statements use. ForAllValues holds for a request
    with no leading key at all (a Scan): why no such action may sit under it."""
    if not condition:
        return True
    assert set(condition) == {"ForAllValues:StringLike"}, f"a condition this test cannot evaluate: {condition}"
    (key, patterns), *rest = condition["ForAllValues:StringLike"].items()
    assert key == "dynamodb:LeadingKeys" and not rest, condition
    return all(any(fnmatchcase(value, pattern) for pattern in patterns) for value in keys)


def allowed(logical_id: str, action: str, pk: str | None) -> bool:
    """May ``logical_id`` make ``dynamodb:<action>`` on the table for the item keyed ``pk``
    (None: a request naming no key)?"""
    for statement in statements(logical_id):
        assert statement["Effect"] == "Allow", "a Deny would need evaluating too"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if not any(fnmatchcase(f"dynamodb:{action}", a) for a in actions):
            continue
        if any(on_table(r) for r in resources) and condition_holds(
            statement.get("Condition"), [] if pk is None else [pk]
        ):
            return True
    return False


def granted(logical_id: str) -> set[tuple[str, str]]:
    return {(prefix, action) for prefix in PREFIXES for action in ACTIONS if allowed(logical_id, action, prefix + "x")}


def code_calls(module: str) -> set[str]:
    """The DynamoDB operations an adapter calls on its client (``self._client.put_item(...)``,
    ``self._client.get_paginator("scan")``)."""
    found = set()
    for node in ast.walk(ast.parse((ADAPTERS / f"{module}.py").read_text())):
        func = node.func if isinstance(node, ast.Call) else None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute) and func.value.attr == "_client":
            name = func.attr
            if name == "get_paginator":
                assert isinstance(node, ast.Call)
                name = str(ast.literal_eval(node.args[0]))
            found.add("".join(part.title() for part in name.split("_")))
    return found


def test_every_adapter_of_the_table_is_known_with_its_kind_of_item() -> None:
    table_modules = {
        path.stem
        for path in ADAPTERS.glob("*.py")
        if re.search(r"\bTableItems\b|\bdynamodb_client\b", path.read_text()) and path.stem not in ("table", "aws")
    }
    assert table_modules == set(PREFIX_OF)
    for module, prefix in PREFIX_OF.items():
        text = (ADAPTERS / f"{module}.py").read_text() + (ADAPTERS.parent / "keys.py").read_text() * (
            module == "api_keys"
        )
        assert f'"{prefix}' in text or f'f"{prefix}' in text, f"{module} keys its items {prefix}..."


def test_the_grants_follow_the_codes_calls() -> None:
    for module in PREFIX_OF:
        assert code_calls(module) == {op for m, op in CALLERS if m == module}, f"{module}: update CALLERS"
    for logical_id in FUNCTIONS:
        needed = {(PREFIX_OF[m], op) for (m, op), callers in CALLERS.items() if logical_id in callers and op != "Query"}
        assert granted(logical_id) == needed, f"{logical_id} may do exactly what its code does, on its items only"


def test_the_api_function_cannot_forge_a_runs_end_nor_touch_api_keys() -> None:
    for action in ACTIONS:
        if action != "GetItem":
            assert not allowed("ApiFunction", action, "status#arn:aws:states:us-east-1:1:execution:m:conductor-r")
        assert not allowed("ApiFunction", action, "apikey#7d9f0f1e")
    assert allowed("ApiFunction", "GetItem", "status#arn:aws:states:us-east-1:1:execution:m:conductor-r")
    assert allowed("ApiFunction", "PutItem", "key#hello_world#order-1")


def test_the_end_of_run_function_cannot_touch_idempotency_records() -> None:
    for action in ACTIONS:
        assert not allowed("RunStatusFunction", action, "key#hello_world#order-1")
        assert not allowed("RunStatusFunction", action, "run#hello_world.1.abc")
    assert allowed("RunStatusFunction", "PutItem", "status#arn:aws:states:us-east-1:1:execution:m:conductor-r")


def test_no_function_may_make_a_request_that_names_no_key_on_the_table() -> None:
    """ForAllValues holds for an empty set: a Scan under a LeadingKeys condition reads every item."""
    for logical_id in FUNCTIONS:
        for action in ("Scan", "Query", "BatchGetItem", "BatchWriteItem", "PartiQLSelect"):
            assert not allowed(logical_id, action, None), (logical_id, action)


def test_the_index_query_cannot_be_held_to_a_prefix_and_shows_only_keys() -> None:
    """The correlated index's partition key is correlationId, so LeadingKeys cannot name run#
    there; KEYS_ONLY and sparse (only run records carry its keys) keep it to the runs' keys."""
    (index,) = RESOURCES["IdempotencyTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert index["KeySchema"][0]["AttributeName"] == "correlationId"
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    on_index = [s for s in statements("ApiFunction") if "dynamodb:Query" in s["Action"]]
    assert [s["Action"] for s in on_index] == [["dynamodb:Query"]]
    assert on_index[0]["Resource"]["Fn::Sub"] == TABLE_ARN + "/index/correlated"
    writers = {p.stem for p in ADAPTERS.glob("*.py") if '"correlationId"' in p.read_text()}
    assert writers == {"run_records"}


# --- nothing silently lost -------------------------------------------------------------------------


def test_the_end_of_run_rule_keeps_what_it_could_not_deliver_for_14_days_encrypted() -> None:
    queue = RESOURCES[QUEUE]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"] == {"MessageRetentionPeriod": 14 * 86400, "SqsManagedSseEnabled": True}
    rule = FUNCTIONS["RunStatusFunction"]["Properties"]["Events"]["RunEnded"]
    assert rule["Type"] == "EventBridgeRule"
    assert rule["Properties"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [QUEUE, "Arn"]}}
    assert set(rule["Properties"]["RetryPolicy"]) == {"MaximumRetryAttempts", "MaximumEventAgeInSeconds"}


def test_only_that_rule_and_run_status_may_send_to_the_queue() -> None:
    policy = RESOURCES[f"{QUEUE}Policy"]
    assert policy["Properties"]["Queues"] == [{"Ref": QUEUE}]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sqs:SendMessage"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Resource"] == {"Fn::GetAtt": [QUEUE, "Arn"]}
    # SAM names the rule it makes for an event <function><event> (checked by the transform below).
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["RunStatusFunctionRunEnded", "Arn"]}}
    }
    senders = {
        (lid, action)
        for lid in FUNCTIONS
        for s in statements(lid)
        if QUEUE in json.dumps(s["Resource"])
        for action in s["Action"]
    }
    assert senders == {("RunStatusFunction", "sqs:SendMessage")}


def test_what_lambda_gives_up_on_goes_to_the_same_queue_after_lambdas_retries() -> None:
    (config,) = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert config["FunctionName"] == {"Ref": "RunStatusFunction"} and config["Qualifier"] == "$LATEST"
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [QUEUE, "Arn"]}}}
    # Lambda's own defaults, which local mode plays (limits.ASYNC_*): 2 retries, 6 hours.
    assert config["MaximumRetryAttempts"] == len(limits.ASYNC_ERROR_WAITS_S) == 2
    assert config["MaximumEventAgeInSeconds"] == limits.ASYNC_RETRY_FOR_S == 6 * 3600


def alarm_actions(logical_id: str, topic: str) -> tuple[Any, Any]:
    refs = {**cfn.parameter_defaults(TEMPLATE), "AlarmTopicArn": topic, "AWS::NoValue": None}
    properties = cfn.Resolver(TEMPLATE, refs, {}).resolve(
        {key: ALARMS[logical_id]["Properties"][key] for key in ("AlarmActions", "OKActions")}
    )
    return properties["AlarmActions"], properties["OKActions"]


@pytest.mark.parametrize("logical_id", sorted(ALARMS))
def test_each_alarm_notifies_the_topic_if_one_is_given(logical_id: str) -> None:
    topic = "arn:aws:sns:us-east-1:111111111111:workflow-sync-alarms"
    assert alarm_actions(logical_id, topic) == ([topic], [topic])
    assert alarm_actions(logical_id, "") == (None, None)
    properties = ALARMS[logical_id]["Properties"]
    assert (properties["ComparisonOperator"], properties["Threshold"]) == ("GreaterThanThreshold", 0)
    assert properties["TreatMissingData"] == "notBreaching"  # an idle stack is not an alarm
    assert "docs/OPERATIONS.md" in properties["AlarmDescription"]
    assert logical_id in (ROOT / "docs" / "OPERATIONS.md").read_text()


def test_the_topic_parameter_is_optional_and_takes_only_an_sns_topic() -> None:
    parameter = TEMPLATE["Parameters"]["AlarmTopicArn"]
    assert parameter["Default"] == ""
    assert TEMPLATE["Conditions"]["NotifyAlarms"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("arn:aws:sns:eu-west-1:123456789012:ops-alarms")
    assert not pattern.fullmatch("arn:aws:sqs:eu-west-1:123456789012:ops-alarms")


def test_the_alarms_watch_the_dead_letters_the_api_function_and_step_functions_throttling() -> None:
    def metric(logical_id: str) -> tuple[str, str, list[dict[str, Any]]]:
        p = ALARMS[logical_id]["Properties"]
        return p["Namespace"], p["MetricName"], p["Dimensions"]

    assert metric("RunEndsDeadLetterAlarm") == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": [QUEUE, "QueueName"]}}],
    )
    api = [{"Name": "FunctionName", "Value": {"Ref": "ApiFunction"}}]
    assert metric("ApiErrorsAlarm") == ("AWS/Lambda", "Errors", api)
    assert metric("ApiThrottlesAlarm") == ("AWS/Lambda", "Throttles", api)


def test_the_step_functions_alarm_sums_throttling_of_every_action_the_api_function_may_call() -> None:
    metrics = ALARMS["StepFunctionsThrottlesAlarm"]["Properties"]["Metrics"]
    (total,) = [m for m in metrics if m.get("ReturnData", True)]
    assert total["Expression"] == "SUM(FILL(METRICS(), 0))"
    watched = set()
    for m in metrics:
        if m is total:
            continue
        stat = m["MetricStat"]
        assert (stat["Metric"]["Namespace"], stat["Metric"]["MetricName"], stat["Stat"]) == (
            "AWS/States",
            "ThrottledEvents",
            "Sum",
        )
        ((dimension,),) = [stat["Metric"]["Dimensions"]]
        assert dimension["Name"] == "APIName"
        watched.add(dimension["Value"])
    may_call = {
        action.removeprefix("states:")
        for s in statements("ApiFunction")
        for action in s["Action"]
        if action.startswith("states:")
    }
    assert may_call and watched == may_call
    assert len(metrics) <= 10  # CloudWatch's most metrics in one alarm


SAM_PYTHON = Path(os.environ.get("SAM_PYTHON", ROOT / ".venv-sam" / "bin" / "python"))
TRANSFORM = """
import json, sys
from samcli.lib.cfn_language_extensions.sam_integration import expand_language_extensions
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
class Policies:
    def load(self): return {}
template = yaml_parse(open(sys.argv[1]).read())
values = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
template = expand_language_extensions(template, values, enabled=True).expanded_template
template["Transform"] = "AWS::Serverless-2016-10-31"
for resource in template["Resources"].values():
    for key in ("CodeUri", "DefinitionUri"):
        if isinstance(resource.get("Properties", {}).get(key), str):
            resource["Properties"][key] = "s3://bucket/" + resource["Properties"][key]
print(json.dumps(transform(template, {}, Policies())["Resources"]))
"""


@pytest.mark.skipif(not SAM_PYTHON.is_file(), reason="no SAM CLI environment (make validate creates .venv-sam)")
def test_sam_makes_the_rule_the_queue_policy_names_with_the_dead_letter_queue_and_no_queue_of_its_own() -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    out = subprocess.run(
        [str(SAM_PYTHON), "-c", TRANSFORM, str(cfn.TEMPLATE)], capture_output=True, text=True, env=env, check=True
    )
    resources = json.loads(out.stdout.strip().splitlines()[-1])
    (target,) = resources["RunStatusFunctionRunEnded"]["Properties"]["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [QUEUE, "Arn"]}}
    queues = sorted(lid for lid, r in resources.items() if r["Type"].startswith("AWS::SQS::"))
    assert queues == [QUEUE, f"{QUEUE}Policy"]
