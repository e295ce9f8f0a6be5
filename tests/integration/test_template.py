"""template.yaml holds together: every file it names exists and is used, every handler can be
imported, every ASL placeholder has a value, each function may touch only this stack's
resources, and the API has an authorizer unless AuthType says otherwise.

The last test runs the real SAM transform when a SAM CLI environment exists (``make validate``
creates .venv-sam; or set SAM_PYTHON to another one's python).
"""

import importlib.util
import json
import re
from typing import Any

import pytest

from local_mode import template as cfn
from workflow_api.catalog import RUN_NAME_PREFIX
from workflow_api.config import Settings

ROOT = cfn.ROOT
TEMPLATE = cfn.load()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
POOL = "arn:aws:cognito-idp:us-east-1:111111111111:userpool/us-east-1_Example1"
DEAD_LETTERS = "RunEndsDeadLetterQueue"  # tests/integration/test_template_operations.py


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {lid: resource for lid, resource in RESOURCES.items() if resource["Type"] == kind}


FUNCTIONS = of_type("AWS::Serverless::Function")
STATE_MACHINES = of_type("AWS::Serverless::StateMachine")
TABLES = of_type("AWS::DynamoDB::Table")


def referenced(value: Any) -> set[str]:
    """Logical ids a (resolved or not) template value refers to; parameters and AWS:: pseudo
    parameters are not resources."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= referenced(item)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref":
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found |= {name.split(".", 1)[0] for name in PLACEHOLDER.findall(text)}
            else:
                found |= referenced(arg)
    return {lid for lid in found if lid in RESOURCES}


def statements(logical_id: str) -> dict[str, dict[str, Any]]:
    """A function's inline policy statements by Sid."""
    policies = FUNCTIONS[logical_id]["Properties"]["Policies"]
    return {statement["Sid"]: statement for policy in policies for statement in policy.get("Statement", [])}


def test_every_asl_file_is_deployed_and_every_definition_exists() -> None:
    used = {(ROOT / m["Properties"]["DefinitionUri"]).resolve() for m in STATE_MACHINES.values()}
    assert all(path.is_file() for path in used)
    assert used == {path.resolve() for path in (ROOT / "statemachine").glob("*.asl.json")}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_handler_exists(logical_id: str) -> None:
    properties = FUNCTIONS[logical_id]["Properties"]
    code = ROOT / properties["CodeUri"]
    assert code.is_dir()
    module_name, _, function_name = properties["Handler"].rpartition(".")
    path = code / (module_name.replace(".", "/") + ".py")
    assert path.is_file(), path
    spec = importlib.util.spec_from_file_location(f"_template_handler_{logical_id}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(getattr(module, function_name, None)), f"{path} has no {function_name}"


@pytest.mark.parametrize("logical_id", sorted(STATE_MACHINES))
def test_every_asl_placeholder_has_a_substitution(logical_id: str) -> None:
    properties = STATE_MACHINES[logical_id]["Properties"]
    text = (ROOT / properties["DefinitionUri"]).read_text()
    json.loads(text)
    placeholders = set(PLACEHOLDER.findall(text))
    assert placeholders, "a demo workflow calls at least one of the stack's functions"
    assert placeholders == set(properties.get("DefinitionSubstitutions", {}))


WORKFLOW_TAG_REQUIRED = {"Null": {"aws:ResourceTag/workflow:name": "false"}}
RUN_ACTIONS = {
    "states:DescribeExecution",
    "states:GetExecutionHistory",
    "states:StopExecution",
    "states:RedriveExecution",
}
MACHINE_ACTIONS = {"states:StartExecution", "states:ListExecutions", "states:DescribeStateMachine"}


def test_the_api_function_may_touch_only_tagged_workflows_and_this_stacks_table() -> None:
    """Step Functions rights by tag (catalog.py finds workflows by tag), never by ARN: a state
    machine of any stack is reachable once tagged workflow:name, and an untagged one never."""
    policies = FUNCTIONS["ApiFunction"]["Properties"]["Policies"]
    assert all(set(policy) == {"Statement"} for policy in policies), "no SAM policy template (they take names)"
    granted: dict[str, set[str]] = {}
    for sid, statement in statements("ApiFunction").items():
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in statement["Action"]), sid
        resource = statement["Resource"]
        states = {action for action in statement["Action"] if action.startswith("states:")}
        if states:
            arn = resource["Fn::Sub"]
            assert arn.startswith("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:"), arn
            assert statement["Condition"] == WORKFLOW_TAG_REQUIRED, sid
            kind = arn.removeprefix("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:")
            granted.setdefault(kind, set()).update(states)
            assert states == set(statement["Action"]), f"{sid}: Step Functions actions only"
        elif statement["Action"] == ["tag:GetResources"]:
            assert resource == "*"  # the Tagging API has no resource-level permissions
        else:
            resources = resource if isinstance(resource, list) else [resource]
            assert all(referenced(r) == set(TABLES) for r in resources), sid
            assert all(action.startswith("dynamodb:") for action in statement["Action"]), sid
    # Every state machine, every run of every state machine: each only if tagged (the Condition).
    assert granted == {"stateMachine:*": MACHINE_ACTIONS, "execution:*:*": RUN_ACTIONS}


def test_no_resource_lists_the_demo_workflows_by_arn_or_name() -> None:
    """Adding a workflow is its ASL file and its state machine: nothing else names one."""
    for logical_id, resource in RESOURCES.items():
        if logical_id not in STATE_MACHINES:
            assert not referenced(resource) & set(STATE_MACHINES), logical_id
    assert not referenced(TEMPLATE.get("Outputs", {})) & set(STATE_MACHINES)
    text = (ROOT / "template.yaml").read_text()
    assert "WORKFLOW_STATE_MACHINES" not in text
    assert "stateMachineArn" not in text


def test_every_state_machine_is_tagged_with_its_own_workflow_name_and_version() -> None:
    claimed = []
    for logical_id, machine in STATE_MACHINES.items():
        tags = machine["Properties"]["Tags"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", tags["workflow:name"]), logical_id
        assert re.fullmatch(r"[1-9][0-9]*", tags["workflow:version"]), logical_id
        asl = machine["Properties"]["DefinitionUri"]
        assert asl == f"statemachine/{tags['workflow:name']}.v{tags['workflow:version']}.asl.json", logical_id
        claimed.append((tags["workflow:name"], tags["workflow:version"]))
    assert len(claimed) == len(set(claimed)), "two state machines claim one name and version"


def test_the_other_functions_get_no_permissions_and_each_machine_invokes_only_its_own() -> None:
    for logical_id, function in FUNCTIONS.items():
        if logical_id not in ("ApiFunction", "RunStatusFunction", "TokenFunction", "AuthorizerFunction"):
            assert "Policies" not in function["Properties"], logical_id
    for logical_id, machine in STATE_MACHINES.items():
        properties = machine["Properties"]
        invoked = {policy["LambdaInvokePolicy"]["FunctionName"]["Ref"] for policy in properties["Policies"]}
        assert len(invoked) == len(properties["Policies"]), f"{logical_id}: only LambdaInvokePolicy"
        assert invoked == referenced(properties["DefinitionSubstitutions"]), logical_id


def test_run_status_may_only_put_runs_items_and_hears_only_ends_of_the_apis_runs() -> None:
    properties = FUNCTIONS["RunStatusFunction"]["Properties"]
    assert all(set(policy) == {"Statement"} for policy in properties["Policies"]), "no SAM policy template"
    granted = statements("RunStatusFunction")
    assert set(granted) == {"RecordRunEnds", "KeepUnrecordedEnds"}  # the second: test_template_operations.py
    assert granted["RecordRunEnds"]["Effect"] == "Allow"
    assert granted["RecordRunEnds"]["Action"] == ["dynamodb:PutItem"]
    assert granted["RecordRunEnds"]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["status#*"]}}
    assert granted["RecordRunEnds"]["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    # No Step Functions or SQS permission but its dead-letter queue's: the event carries the end, nobody is woken.
    actions = [
        action for sid, statement in granted.items() if sid != "KeepUnrecordedEnds" for action in statement["Action"]
    ]
    assert not [action for action in actions if action.split(":")[0] in ("states", "sqs")], actions
    assert set(properties["Environment"]["Variables"]) == {"IDEMPOTENCY_TABLE_NAME", "IDEMPOTENCY_RETENTION_DAYS"}
    (rule,) = properties["Events"].values()
    pattern = rule["Properties"]["Pattern"]
    assert set(pattern["detail"]["status"]) == {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
    # The runs this API started, on any state machine (their names: catalog.RUN_NAME_PREFIX).
    assert pattern["detail"]["name"] == [{"prefix": RUN_NAME_PREFIX}]
    assert "stateMachineArn" not in pattern["detail"]


def test_nothing_of_the_wakeup_queues_is_left() -> None:
    """No queue, no sweeper, no queue variable or permission: waiting calls poll the run's item."""
    assert "QueueSweeperFunction" not in RESOURCES and "QueueSweeperLogs" not in RESOURCES
    queues = [lid for lid, resource in RESOURCES.items() if resource["Type"].startswith("AWS::SQS::")]
    assert set(queues) <= {DEAD_LETTERS, f"{DEAD_LETTERS}Policy"}  # the run ends' dead letters, nobody's wake-up
    for logical_id, function in FUNCTIONS.items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert not [name for name in variables if "QUEUE" in name or "WAKEUP" in name], logical_id
        for policy in function["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []):
                if statement["Resource"] != {"Fn::GetAtt": [DEAD_LETTERS, "Arn"]}:
                    assert not [a for a in statement["Action"] if a.startswith("sqs:")], (logical_id, statement)


def test_the_api_functions_concurrency_is_reserved_only_when_the_parameter_asks() -> None:
    parameter = TEMPLATE["Parameters"]["ApiReservedConcurrency"]
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 0, 0)
    reserved = FUNCTIONS["ApiFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {"Fn::If": ["ReserveApiConcurrency", {"Ref": "ApiReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}
    assert TEMPLATE["Conditions"]["ReserveApiConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ApiReservedConcurrency"}, 0]}]
    }

    def deployed(value: int) -> Any:
        refs = {**cfn.parameter_defaults(TEMPLATE), "ApiReservedConcurrency": value, "AWS::NoValue": None}
        return cfn.Resolver(TEMPLATE, refs, {}).resolve(reserved)

    assert deployed(200) == 200
    # 0 would stop the API altogether (Lambda throttles every call): the default reserves nothing.
    assert deployed(0) is None
    assert deployed(parameter["Default"]) is None
    for logical_id, function in FUNCTIONS.items():
        if logical_id != "ApiFunction":  # the workflows' task functions share what is not reserved
            assert "ReservedConcurrentExecutions" not in function["Properties"], logical_id


def test_the_api_function_knows_its_table_and_how_long_to_keep_its_catalog() -> None:
    variables = FUNCTIONS["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert referenced(variables["IDEMPOTENCY_TABLE_NAME"]) == set(TABLES)
    assert variables["WORKFLOW_CACHE_SECONDS"] == {"Ref": "WorkflowCacheSeconds"}
    assert (
        TEMPLATE["Parameters"]["WorkflowCacheSeconds"]["Default"]
        == Settings.model_fields["workflow_cache_seconds"].default
    )


def resolved_auth(auth_type: str) -> dict[str, Any]:
    """The API's Auth as SAM receives it once AWS::LanguageExtensions has resolved the Fn::If
    (local mode's resolver evaluates Ref, Fn::If and Fn::Equals the same way)."""
    refs = {**cfn.parameter_defaults(TEMPLATE), "AuthType": auth_type, "CognitoUserPoolArn": POOL}
    resolver = cfn.Resolver(
        TEMPLATE, {**refs, "AWS::NoValue": None}, {("AuthorizerFunction", "Arn"): "AuthorizerFunction.Arn"}
    )
    auth = dict(RESOURCES["WorkflowApi"]["Properties"]["Auth"])
    # AWS::LanguageExtensions resolves the Fn::If (CONDUCTOR_KEYS' authorizer is ConductorKeys) and the Ref in it.
    auth["DefaultAuthorizer"] = resolver.resolve(auth["DefaultAuthorizer"])
    authorizers = resolver.resolve(auth.pop("Authorizers"))
    return {**auth, **({"Authorizers": authorizers} if authorizers is not None else {})}


def test_the_api_has_an_authorizer_by_default() -> None:
    parameters = TEMPLATE["Parameters"]
    assert parameters["AuthType"]["Default"] == "AWS_IAM"
    assert set(parameters["AuthType"]["AllowedValues"]) == {"AWS_IAM", "COGNITO", "CONDUCTOR_KEYS", "NONE"}
    assert TEMPLATE["Transform"] == ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]
    auth = RESOURCES["WorkflowApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == {"Fn::If": ["UseConductorKeys", "ConductorKeys", {"Ref": "AuthType"}]}
    assert TEMPLATE["Conditions"]["UseCognito"] == {"Fn::Equals": [{"Ref": "AuthType"}, "COGNITO"]}
    assert resolved_auth("AWS_IAM") == {"DefaultAuthorizer": "AWS_IAM", "InvokeRole": "NONE"}
    assert resolved_auth("NONE") == {"DefaultAuthorizer": "NONE", "InvokeRole": "NONE"}
    assert resolved_auth("COGNITO")["Authorizers"] == {"COGNITO": {"UserPoolArn": POOL}}
    assert resolved_auth("COGNITO")["DefaultAuthorizer"] == "COGNITO"
    assert resolved_auth("CONDUCTOR_KEYS")["DefaultAuthorizer"] == "ConductorKeys"
    assert set(resolved_auth("CONDUCTOR_KEYS")["Authorizers"]) == {"ConductorKeys"}
    rule = TEMPLATE["Rules"]["CognitoNeedsAUserPool"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "AuthType"}, "COGNITO"]}


def test_every_function_logs_to_its_own_group_that_expires() -> None:
    groups = of_type("AWS::Logs::LogGroup")
    used = []
    for logical_id, function in FUNCTIONS.items():
        group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        group = groups[group_id]["Properties"]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical_id
        assert group["LogGroupName"]["Fn::Sub"].endswith(f"/{logical_id}"), logical_id
        used.append(group_id)
    assert sorted(used) == sorted(groups)  # one group per function, none shared or left over
    assert TEMPLATE["Parameters"]["LogRetentionDays"]["Default"] == 30


def test_the_api_function_may_query_only_the_correlation_index() -> None:
    """GET /api/workflow/{name}/correlated/{correlationId}: the run records' index, and only it."""
    found = statements("ApiFunction")
    query = found["CorrelatedRuns"]
    assert query["Action"] == ["dynamodb:Query"]
    assert query["Resource"]["Fn::Sub"].endswith(":table/${IdempotencyTable}/index/correlated")
    # Nothing else may Query: not the table itself, so not the idempotency keys' items.
    assert not any(
        "dynamodb:Query" in statement["Action"] for sid, statement in found.items() if sid != "CorrelatedRuns"
    )
    (table,) = TABLES
    (index,) = RESOURCES[table]["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "correlated"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["correlationId", "workflowName"]
