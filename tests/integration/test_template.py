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

ROOT = cfn.ROOT
TEMPLATE = cfn.load()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
POOL = "arn:aws:cognito-idp:us-east-1:111111111111:userpool/us-east-1_Example1"


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


def test_the_api_function_may_touch_only_this_stacks_state_machines_and_table() -> None:
    allowed = set(STATE_MACHINES) | set(TABLES)
    started: set[str] = set()
    read: set[str] = set()
    for policy in FUNCTIONS["ApiFunction"]["Properties"]["Policies"]:
        if "StepFunctionsExecutionPolicy" in policy:
            name = policy["StepFunctionsExecutionPolicy"]["StateMachineName"]
            assert name.get("Fn::GetAtt", [None, None])[1] == "Name", name
            started |= referenced(name)
            continue
        assert set(policy) == {"Statement"}, f"an unexpected policy: {policy}"
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            assert all("*" not in action for action in statement["Action"])
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                assert isinstance(resource, dict), f"a literal resource: {resource!r}"
                assert referenced(resource) and referenced(resource) <= allowed, resource
                if "Fn::Sub" in resource:
                    arn = resource["Fn::Sub"]
                    assert "${AWS::AccountId}" in arn and "${AWS::Region}" in arn, arn
                    # The one wildcard: the executions of one named state machine.
                    assert "*" not in arn.removesuffix(".Name}:*"), arn
                read |= referenced(resource)
    assert started == set(STATE_MACHINES)
    assert read == allowed


def test_the_other_functions_get_no_permissions_and_each_machine_invokes_only_its_own() -> None:
    for logical_id, function in FUNCTIONS.items():
        if logical_id not in ("ApiFunction", "RunStatusFunction", "TokenFunction", "AuthorizerFunction"):
            assert "Policies" not in function["Properties"], logical_id
    for logical_id, machine in STATE_MACHINES.items():
        properties = machine["Properties"]
        invoked = {policy["LambdaInvokePolicy"]["FunctionName"]["Ref"] for policy in properties["Policies"]}
        assert len(invoked) == len(properties["Policies"]), f"{logical_id}: only LambdaInvokePolicy"
        assert invoked == referenced(properties["DefinitionSubstitutions"]), logical_id


def test_run_status_may_only_put_runs_items_and_hears_only_ends_of_this_stacks_machines() -> None:
    properties = FUNCTIONS["RunStatusFunction"]["Properties"]
    assert all(set(policy) == {"Statement"} for policy in properties["Policies"]), "no SAM policy template"
    granted = statements("RunStatusFunction")
    assert set(granted) == {"RecordRunEnds"}
    assert granted["RecordRunEnds"]["Effect"] == "Allow"
    assert granted["RecordRunEnds"]["Action"] == ["dynamodb:PutItem"]
    assert granted["RecordRunEnds"]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["status#*"]}}
    assert granted["RecordRunEnds"]["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    # No Step Functions or SQS permission: the event carries the end, and nobody is woken.
    actions = [action for statement in granted.values() for action in statement["Action"]]
    assert not [action for action in actions if action.split(":")[0] in ("states", "sqs")], actions
    assert set(properties["Environment"]["Variables"]) == {"IDEMPOTENCY_TABLE_NAME", "IDEMPOTENCY_RETENTION_DAYS"}
    (rule,) = properties["Events"].values()
    pattern = rule["Properties"]["Pattern"]
    assert set(pattern["detail"]["status"]) == {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
    assert {ref["Ref"] for ref in pattern["detail"]["stateMachineArn"]} == set(STATE_MACHINES)


def test_nothing_of_the_wakeup_queues_is_left() -> None:
    """No queue, no sweeper, no queue variable or permission: waiting calls poll the run's item."""
    assert "QueueSweeperFunction" not in RESOURCES and "QueueSweeperLogs" not in RESOURCES
    assert not [lid for lid, resource in RESOURCES.items() if resource["Type"].startswith("AWS::SQS::")]
    for logical_id, function in FUNCTIONS.items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert not [name for name in variables if "QUEUE" in name or "WAKEUP" in name], logical_id
        for policy in function["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []):
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


def test_the_api_function_knows_every_state_machine() -> None:
    variables = FUNCTIONS["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert referenced(variables["WORKFLOW_STATE_MACHINES"]) == set(STATE_MACHINES)
    assert referenced(variables["IDEMPOTENCY_TABLE_NAME"]) == set(TABLES)


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


def test_the_api_function_may_stop_redrive_and_list_only_this_stacks_runs_and_query_only_the_index() -> None:
    """The lifecycle routes' rights (workflow_api/lifecycle.py), each on the least it needs."""
    found = statements("ApiFunction")
    change, listing, query = found["ChangeWorkflowRuns"], found["ListWorkflowRuns"], found["CorrelatedRuns"]
    assert change["Action"] == ["states:StopExecution", "states:RedriveExecution"]
    # Executions of this stack's machines only: the same resources the history reads have.
    assert change["Resource"] == found["ReadWorkflowRuns"]["Resource"]
    assert listing["Action"] == ["states:ListExecutions"]
    assert {referenced(r).pop() for r in listing["Resource"]} == set(STATE_MACHINES)
    assert all(set(r) == {"Ref"} for r in listing["Resource"]), "ListExecutions is on the state machine ARN"
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
