"""The fault cases cover every AWS call the service makes on its request paths: each call an
adapter makes (found in the adapters' source) is a call site of the matrix, or is named here as
off the request paths, with why. A new AWS call cannot go without fault cases unnoticed."""

import ast
import re
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

import workflow_api.adapters
from tests.aws_faults import SITE_NAMES
from tests.faults.matrix import MATRIX, REACHES

pytestmark = pytest.mark.faults

ADAPTERS = Path(workflow_api.adapters.__file__).parent
SERVICES = ("dynamodb", "stepfunctions", "resourcegroupstaggingapi", "secretsmanager")
# Calls of the other routes (the lifecycle's terminate, retry, lists) and of other functions.
OFF_REQUEST_PATHS = {
    ("DescribeExecution", "StepFunctionsGateway.describe"): "terminate, retry, the not-supported routes",
    ("StopExecution", "StepFunctionsGateway.stop"): "terminate",
    ("RedriveExecution", "StepFunctionsGateway.redrive"): "retry",
    ("ListExecutions", "StepFunctionsGateway.running"): "the running list",
    ("Query", "RunRecords.correlated"): "the correlated lists",
    ("GetItem", "ApiKeyStore.get"): "key auth: the token function",
    ("PutItem", "ApiKeyStore.put"): "key auth: make keys",
    ("UpdateItem", "ApiKeyStore.revoke"): "key auth: revoke keys",
    ("Scan", "ApiKeyStore.list"): "key auth: list keys",
    ("GetSecretValue", "signing_secret"): "key auth: the token function",
}


def operations() -> dict[str, str]:
    """botocore's snake_case method name -> operation, for the services the adapters use."""
    session = botocore.session.get_session()
    return {
        xform_name(name): name for service in SERVICES for name in session.get_service_model(service).operation_names
    }


def adapter_calls() -> set[tuple[str, str]]:
    """(operation, the adapter method the service calls to make it): each method that makes a
    call, or, for one only other methods of its class call (``IdempotencyStore._put``), those."""
    names = operations()
    found: set[tuple[str, str]] = set()
    for source in sorted(ADAPTERS.glob("*.py")):
        tree = ast.parse(source.read_text())
        for node in tree.body:
            methods = [n for n in node.body if isinstance(n, ast.FunctionDef)] if isinstance(node, ast.ClassDef) else []
            owner = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
            functions = methods or ([node] if isinstance(node, ast.FunctionDef) else [])
            calls_self = {f.name: {c.func.attr for c in ast.walk(f) if _self_call(c)} for f in functions}
            for function in functions:
                for operation in _botocore_calls(function, names):
                    for entry in _entries(function.name, calls_self):
                        found.add((operation, f"{owner}{entry}"))
    return found


def _self_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "self"
    )


def _botocore_calls(function: ast.FunctionDef, names: dict[str, str]) -> set[str]:
    """The operations ``function`` calls on a client (``self._client.put_item``, ``client.query``,
    ``self._client.get_paginator("scan")``)."""
    found = set()
    for node in ast.walk(function):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = ast.unparse(node.func.value)
        if not re.search(r"client", receiver, re.IGNORECASE):
            continue
        method = node.func.attr
        if method == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
            method = str(node.args[0].value)
        if method in names:
            found.add(names[method])
    return found


def _entries(name: str, calls_self: dict[str, set[str]]) -> set[str]:
    """The methods of the class from outside which ``name`` is reached: ``name`` itself unless only
    the class's own methods call it, then their entries."""
    callers = {caller for caller, called in calls_self.items() if name in called and caller != name}
    if not callers:
        return {name}
    return set().union(*(_entries(caller, calls_self) for caller in callers))


def test_every_aws_call_of_the_request_paths_has_fault_cases() -> None:
    calls = adapter_calls()
    targeted = {fault.site for case in MATRIX for fault in case.faults}
    untested = sorted(
        (operation, entry)
        for operation, entry in calls
        if (operation, entry) not in OFF_REQUEST_PATHS
        and not {SITE_NAMES.get((operation, entry)), f"{SITE_NAMES.get((operation, entry))}-wait"} & targeted
    )
    assert untested == [], f"AWS calls with no fault case (add them to matrix.py, or to OFF_REQUEST_PATHS): {untested}"
    assert set(OFF_REQUEST_PATHS) <= calls, f"no longer made: {sorted(set(OFF_REQUEST_PATHS) - calls)}"


def test_every_call_site_of_the_matrix_is_a_call_the_adapters_make() -> None:
    """A renamed adapter method would leave its fault cases aiming at nothing."""
    made = {SITE_NAMES.get(call) for call in adapter_calls()}
    sites = {fault.site.removesuffix("-wait") for case in MATRIX for fault in case.faults}
    sites |= {site.removesuffix("-wait") for reached in REACHES.values() for site in reached}
    assert sites - made == set()


def test_the_services_the_adapters_build_clients_for_are_the_ones_searched() -> None:
    source = "\n".join(path.read_text() for path in ADAPTERS.glob("*.py"))
    assert set(re.findall(r'_client\(\s*"([a-z0-9-]+)"', source)) <= set(SERVICES)
