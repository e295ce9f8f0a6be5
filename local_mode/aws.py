"""The stack of template.yaml on moto, in this process: tables, state machines, functions.

Step Functions executions really run the ASL (moto's ``execute_state_machine``); their Lambda
task states call our handlers in-process through the one seam moto offers for that,
``LambdaSimpleBackend.invoke``. moto sends no EventBridge events, so local mode delivers the one
the template subscribes to ("Step Functions Execution Status Change") itself, from the moment moto
ends a run. Nothing here talks to AWS: moto intercepts every boto3 call.
"""

import functools
import gc
import json
import logging
import os
import secrets
import sys
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from threading import RLock
from typing import Any

import boto3
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.dynamodb.models import DynamoDBBackend
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

from . import execution_history, limits, redrive
from . import template as cfn

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
STACK = "local"
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
# What local mode sets for the API function on top of the template: the function's JSON logs
# only from WARNING (the server prints one line per request; LOG_LEVEL=INFO shows them all), no
# X-Ray daemon to send traces to, no EMF metrics on stdout.
LOCAL_ENVIRONMENT = {
    "POWERTOOLS_LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str  # as in the template, e.g. /api/workflow/execute/{name}
    function: str  # logical id


# The functions moto's Step Functions executor calls, by function name; set by LocalAws.start.
_FUNCTIONS: dict[str, Any] = {}
_DYNAMODB_WRITES = RLock()
# EventBridge rules of the template's functions (Events of Type EventBridgeRule): (pattern, function).
_RULES: list[tuple[dict[str, Any], Any]] = []


def _invoke_in_process(
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: dict[str, str],
) -> bytes:
    """Replaces moto's Lambda invoke: run our handler, answer as the Lambda service would.

    An exception becomes ``x-amz-function-error: Unhandled`` with ``{errorType, errorMessage}``,
    so the state machine's Retry and Catch see what they would see on AWS.
    """
    name = function_name.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
    function = _FUNCTIONS.get(name)
    if function is None:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": "ResourceNotFoundException", "errorMessage": f"no function {name}"}).encode()
    event = json.loads(body) if body else {}
    try:
        result = function.invoke(event)
    except limits.LambdaThrottled as exc:  # Lambda's own refusal, not the handler's failure
        raise limits.TooManyRequestsException(exc.reason) from exc
    except Exception as exc:  # noqa: BLE001 - any handler error is the task's failure
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(
            {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc)[-3:],
            }
        ).encode()
    return json.dumps(result).encode()


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    """moto has no per-table lock: two conditional writes racing in threads can both win.
    DynamoDB never lets that happen, so local mode makes moto's writes take turns."""

    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB_WRITES:
            return method(*args, **kwargs)

    locked.__wrapped_by_local_mode__ = True  # type: ignore[attr-defined]
    return locked


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge's matching: every key of the pattern is in the event, and its value is one of
    the listed options (or, for an object, matches it). An option is an exact value or
    ``{"prefix": "..."}``. Local mode knows no other operators; a template that used one would
    fail here loudly rather than match wrongly."""
    for key, wanted in pattern.items():
        if key not in event:
            return False
        value = event[key]
        if isinstance(wanted, dict):
            if not isinstance(value, dict) or not matches(wanted, value):
                return False
        elif not any(_option_matches(option, value) for option in wanted):
            return False
    return True


def _option_matches(option: Any, value: Any) -> bool:
    if isinstance(option, str | int | float | bool):
        return bool(value == option)
    if isinstance(option, dict) and set(option) == {"prefix"}:
        return isinstance(value, str) and value.startswith(option["prefix"])
    raise NotImplementedError(f"local mode matches exact values and prefixes only, not {option!r}")


def _epoch_millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def status_change_event(execution: Any) -> dict[str, Any]:
    """The event EventBridge delivers when a Standard execution changes status (AWS's shape)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": execution.account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": execution.region_name,
        "resources": [execution.exec_arn],
        "detail": {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": execution.exec_status.value,
            "startDate": _epoch_millis(execution.start_date),
            "stopDate": _epoch_millis(execution.stop_date),
            "input": json.dumps(execution.input_data),
            "output": None if execution.output is None else json.dumps(execution.output),
            "inputDetails": {"included": True},
            "outputDetails": {"included": True},
            # AWS's event carries them as DescribeExecution does: null unless the run failed.
            "error": getattr(execution, "error", None),
            "cause": getattr(execution, "cause", None),
        },
    }


def _deliver(function: Any, event: dict[str, Any]) -> None:
    try:
        function.invoke(event)
    except limits.LambdaThrottled:
        raise  # Lambda's asynchronous queue tries it again (limits.eventbridge)
    except Exception as exc:  # Lambda retries it, then sends it to the on-failure destination (limits.eventbridge)
        print(f"EventBridge target {function.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise limits.TargetFailed(function.name, function.arn, event, exc) from exc


def _publish_status_change(execution: Any) -> None:
    """As EventBridge: each matching rule's target is invoked asynchronously, off the run's thread,
    after EventBridge's delay, or never if the event is lost (limits.eventbridge)."""
    event = status_change_event(execution)
    targets = [
        functools.partial(_deliver, function, event) for pattern, function in list(_RULES) if matches(pattern, event)
    ]
    limits.eventbridge.publish(targets)


def _terminated_then_published(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        method(self)  # moto sets the run's end status, stop date and output
        try:
            _publish_status_change(self.execution)
        except Exception as exc:  # noqa: BLE001 - a lost event, as EventBridge may lose one; the run is unharmed
            print(f"EventBridge event not sent: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    terminated.__wrapped_by_local_mode__ = True  # type: ignore[attr-defined]
    return terminated


def _patch_moto() -> None:
    # moto logs a long dump for every failed task state, even one the ASL retries or catches;
    # the run's history already says what failed.
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
    LambdaSimpleBackend.invoke = _invoke_in_process  # type: ignore[method-assign]
    execution_history.install()
    redrive.install()  # StopExecution's reason and RedriveExecution, as AWS has them
    limits.install()  # after execution_history: its GetExecutionHistory answer is throttled too
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, "__wrapped_by_local_mode__", False):
            setattr(DynamoDBBackend, name, _serialized(method))
    ended = BaseExecutionWorkerCommunication.terminated
    if not getattr(ended, "__wrapped_by_local_mode__", False):
        BaseExecutionWorkerCommunication.terminated = _terminated_then_published(ended)  # type: ignore[method-assign]


class LocalAws:
    """Builds and holds the template's resources in moto; ``start`` then ``stop``."""

    def __init__(self, template_path: Path = cfn.TEMPLATE, parameters: Mapping[str, Any] | None = None) -> None:
        from .lambda_runtime import LocalFunction

        self._function_type = LocalFunction
        self.root = template_path.parent
        self.template = cfn.load(template_path)
        self.parameters = {**cfn.parameter_defaults(self.template), **(parameters or {})}
        self.functions: dict[str, Any] = {}
        self.routes: list[ApiRoute] = []
        self.environment: dict[str, str] = {}
        self._mock = mock_aws(config=MOTO_CONFIG)
        self._saved_environ: dict[str, str | None] = {}

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> "LocalAws":
        self._set_environ(
            {
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_SESSION_TOKEN": "local",
            }
        )
        _patch_moto()
        self._mock.start()
        resolver = self._resolver()
        self._create_tables(resolver)
        self._create_secrets(resolver)
        self._create_functions(resolver)
        self._create_state_machines(resolver)
        self._set_environ({**self.environment, **LOCAL_ENVIRONMENT})
        config = sys.modules.get("workflow_api.config")
        if config is not None:  # settings are read once per cold start; this is a new one
            config.settings.cache_clear()
        # What is built so far (moto, botocore's models, the libraries) lives as long as the
        # process: out of the collector's way, so a full collection stops walking it. One took
        # 195 ms in the bench's process, 2.4 ms after this; a call it landed in waited for it.
        gc.collect()
        gc.freeze()
        return self

    def stop(self) -> None:
        limits.eventbridge.drop_pending()
        self._mock.stop()
        gc.unfreeze()  # what this stack built may now be collected, once the next start freezes anew
        for name in self.functions:
            _FUNCTIONS.pop(self.functions[name].name, None)
            limits.lambdas.forget(self.functions[name].name)
        mine = set(map(id, self.functions.values()))
        _RULES[:] = [(pattern, function) for pattern, function in _RULES if id(function) not in mine]
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ.clear()

    def __enter__(self) -> "LocalAws":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- what the rest of local mode asks -------------------------------------------------------

    @property
    def api_function(self) -> Any:
        return self.functions[self.routes[0].function]

    @property
    def workflows(self) -> dict[str, list[int]]:
        """The workflows the API finds now (the state machines tagged as such), and their versions."""
        return {name: sorted(versions) for name, versions in sorted(self.tagged_state_machines().items())}

    def state_machine_arn(self, workflow: str, version: int) -> str:
        """The state machine tagged as ``workflow`` ``version``."""
        return self.tagged_state_machines()[workflow][version]

    @staticmethod
    def tagged_state_machines() -> dict[str, dict[int, str]]:
        """name -> version -> ARN, as the Tagging API lists them now (the API's own catalog caches it)."""
        found: dict[str, dict[int, str]] = {}
        pages = boto3.client("resourcegroupstaggingapi", region_name=REGION).get_paginator("get_resources")
        for page in pages.paginate(ResourceTypeFilters=["states:stateMachine"], TagFilters=[{"Key": "workflow:name"}]):
            for resource in page["ResourceTagMappingList"]:
                tags = {tag["Key"]: tag["Value"] for tag in resource["Tags"]}
                found.setdefault(tags["workflow:name"], {})[int(tags.get("workflow:version", "0"))] = resource[
                    "ResourceARN"
                ]
        return found

    def invoke_api(self, event: Mapping[str, Any], function: str | None = None) -> dict[str, Any]:
        """The API function, or ``function`` (a route's logical id, e.g. TokenFunction)."""
        target = self.functions[function] if function else self.api_function
        result: dict[str, Any] = target.invoke(dict(event))
        return result

    def add_state_machine(self, name: str, definition: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> str:
        """Create a state machine the template does not have, as another stack would (the bench's
        long-history machine, the tests' runtime workflows); ``tags`` make it a workflow
        (``workflow:name``, ``workflow:version``). Answers its ARN."""
        client = boto3.client("stepfunctions", region_name=REGION)
        arn: str = client.create_state_machine(
            name=name,
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{name}",
            tags=[{"key": key, "value": value} for key, value in (tags or {}).items()],
        )["stateMachineArn"]
        return arn

    # --- building ----------------------------------------------------------------------------------

    def _resources(self, kind: str) -> dict[str, dict[str, Any]]:
        """The template's resources of ``kind`` that these parameters create (their Condition holds)."""
        conditions = cfn.Resolver(self.template, self.parameters, {})
        return {
            lid: r
            for lid, r in self.template["Resources"].items()
            if r["Type"] == kind and ("Condition" not in r or conditions.condition(r["Condition"]))
        }

    def _resolver(self) -> cfn.Resolver:
        refs: dict[str, Any] = {
            **self.parameters,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/{uuid.uuid4()}",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        attributes: dict[tuple[str, str], Any] = {}
        for lid, resource in self.template["Resources"].items():
            props = resource.get("Properties", {})
            kind = resource["Type"]
            if kind == "AWS::Serverless::Function":
                name = props.get("FunctionName", f"{STACK}-{lid}")
                arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
                refs[lid], attributes[(lid, "Arn")] = name, arn
            elif kind == "AWS::Serverless::StateMachine":
                name = props.get("Name", f"{STACK}-{lid}")
                arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
                refs[lid], attributes[(lid, "Arn")], attributes[(lid, "Name")] = arn, arn, name
            elif kind == "AWS::DynamoDB::Table":
                name = props.get("TableName", f"{STACK}-{lid}")
                refs[lid], attributes[(lid, "Arn")] = name, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
            else:
                refs[lid] = f"{STACK}-{lid}"
        return cfn.Resolver(self.template, refs, attributes)

    def _create_tables(self, resolver: cfn.Resolver) -> None:
        client = boto3.client("dynamodb", region_name=REGION)
        for lid, resource in self._resources("AWS::DynamoDB::Table").items():
            props = resolver.resolve(resource["Properties"])
            name = resolver.refs[lid]
            client.create_table(
                TableName=name,
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
                BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
                # The run records' correlation index (moto takes them only at creation).
                **{key: props[key] for key in ("GlobalSecondaryIndexes",) if key in props},
            )
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)

    def _create_secrets(self, resolver: cfn.Resolver) -> None:
        """Secrets Manager secrets (the token signing secret of AuthType CONDUCTOR_KEYS), named as
        their Ref: GetSecretValue takes a name as well as an ARN. GenerateSecretString: random."""
        client = boto3.client("secretsmanager", region_name=REGION)
        for lid in self._resources("AWS::SecretsManager::Secret"):
            client.create_secret(Name=resolver.refs[lid], SecretString=secrets.token_urlsafe(48))

    def _create_functions(self, resolver: cfn.Resolver) -> None:
        defaults = self.template.get("Globals", {}).get("Function", {})
        for lid, resource in self._resources("AWS::Serverless::Function").items():
            props = resource["Properties"]
            variables = {
                **resolver.resolve(defaults.get("Environment", {}).get("Variables", {})),
                **resolver.resolve(props.get("Environment", {}).get("Variables", {})),
            }
            function = self._function_type(
                name=resolver.refs[lid],
                arn=resolver.attributes[(lid, "Arn")],
                code_dir=(self.root / props["CodeUri"]).resolve(),
                handler=props["Handler"],
                timeout_seconds=float(props.get("Timeout", defaults.get("Timeout", 3))),
                memory_mb=int(props.get("MemorySize", defaults.get("MemorySize", 128))),
            )
            self.functions[lid] = function
            _FUNCTIONS[function.name] = function
            reserved = props.get("ReservedConcurrentExecutions", defaults.get("ReservedConcurrentExecutions"))
            limits.lambdas.reserve(function.name, resolver.resolve(reserved))
            for event in props.get("Events", {}).values():
                if event["Type"] == "EventBridgeRule":
                    _RULES.append((resolver.resolve(event["Properties"]["Pattern"]), function))
            api_events = [e for e in props.get("Events", {}).values() if e["Type"] == "Api"]
            for event in api_events:
                self.routes.append(ApiRoute(event["Properties"]["Method"].upper(), event["Properties"]["Path"], lid))
            if api_events:
                # Functions share this process's environment; the API function's is the one that matters.
                # TokenFunction (AuthType CONDUCTOR_KEYS) adds its variables; the API function's win.
                self.environment = {**{k: str(v) for k, v in variables.items()}, **self.environment}

    def _create_state_machines(self, resolver: cfn.Resolver) -> None:
        client = boto3.client("stepfunctions", region_name=REGION)
        for lid, resource in self._resources("AWS::Serverless::StateMachine").items():
            props = resource["Properties"]
            definition = (self.root / props["DefinitionUri"]).read_text()
            for key, value in resolver.resolve(props.get("DefinitionSubstitutions", {})).items():
                definition = definition.replace("${" + key + "}", str(value))
            client.create_state_machine(
                name=resolver.attributes[(lid, "Name")],
                definition=definition,
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{lid}Role",
                type=props.get("Type", "STANDARD"),
                # The workflow:name and workflow:version tags: how the API finds its workflows.
                tags=[{"key": k, "value": str(v)} for k, v in resolver.resolve(props.get("Tags", {})).items()],
            )

    def _set_environ(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            self._saved_environ.setdefault(key, os.environ.get(key))
            os.environ[key] = value
