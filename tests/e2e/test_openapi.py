"""The OpenAPI document local mode serves is true: it has exactly template.yaml's routes, the
parameters the code reads, and the answers real calls get (status codes and body shapes)."""

import re
import uuid
from typing import Any

import pytest

from local_mode import template as cfn
from tests.e2e.http_client import Answer, call
from workflow_api.parameters import WIRE_NAMES

pytestmark = pytest.mark.e2e

EXECUTE = ("post", "/api/workflow/execute/{name}")
EXECUTE_VERSION = ("post", "/api/workflow/execute/{name}/{version}")
GET_RUN = ("get", "/api/workflow/{workflowId}")


@pytest.fixture(scope="module")
def document(local_server: Any) -> dict[str, Any]:
    answer = call(local_server.url, "GET", "/api/openapi.json")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.body
    return body


def template_routes() -> set[tuple[str, str]]:
    resources = cfn.load()["Resources"].values()
    return {
        (event["Properties"]["Method"].lower(), event["Properties"]["Path"])
        for resource in resources
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "Api"
    }


def test_the_document_has_exactly_the_routes_of_the_template(document: dict[str, Any]) -> None:
    documented = {(method, path) for path, operations in document["paths"].items() for method in operations}
    assert documented == template_routes()
    assert document["openapi"].startswith("3.1")


def test_the_call_parameters_are_documented_as_header_and_query(document: dict[str, Any]) -> None:
    for method, path in (EXECUTE, EXECUTE_VERSION):
        parameters = document["paths"][path][method]["parameters"]
        assert {p["name"] for p in parameters if p["in"] == "header"} == set(WIRE_NAMES.values()), path
        # includeTasks is a query parameter only, as on Conductor's GET of a run.
        assert {p["name"] for p in parameters if p["in"] == "query"} == {*WIRE_NAMES.values(), "includeTasks"}, path
        assert all(not p["required"] for p in parameters if p["in"] != "path")
        (include_tasks,) = [p for p in parameters if p["name"] == "includeTasks"]
        assert include_tasks["schema"]["type"] == "boolean" and include_tasks["schema"]["default"] is True
        assert "tasks" in include_tasks["description"]
    get_parameters = {(p["name"], p["in"]) for p in document["paths"][GET_RUN[1]]["get"]["parameters"]}
    assert get_parameters == {
        ("workflowId", "path"),
        ("includeTasks", "query"),
        ("requestId", "header"),
        ("requestId", "query"),
    }


# The lifecycle routes' successful answer's media type, by operation (workflow_api/lifecycle.py).
LIFECYCLE_ANSWERS = {
    "startWorkflow": "text/plain",
    "startWorkflowByName": "text/plain",
    "terminate": "text/plain",
    "retry": "text/plain",
    "getWorkflowStatusSummary": "application/json",
    "getRunningWorkflow": "application/json",
    "getWorkflowsByCorrelationId": "application/json",
    "getWorkflowsByCorrelationIds": "application/json",
}


# The routes that take an idempotency key: their 422 is a key reused for another request.
KEYED = {"executeWorkflow", "executeWorkflowVersion", "startWorkflow", "startWorkflowByName"}


def test_failures_are_documented_as_conductor_errors_never_powertools_422(document: dict[str, Any]) -> None:
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            assert ("422" in responses) is (operation["operationId"] in KEYED), operation["operationId"]
            for code, response in responses.items():
                if code == "200" and operation["operationId"] in LIFECYCLE_ANSWERS:
                    # The lifecycle routes answer as Conductor's do: text, a list, WorkflowStatus, no body.
                    assert set(response["content"]) == {LIFECYCLE_ANSWERS[operation["operationId"]]}
                    continue
                success = "TokenAnswer" if operation["operationId"] == "generateToken" else "WorkflowRun"
                expected = success if code in {"200", "206"} else "ErrorBody"
                assert response["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{expected}"}
    assert {"200", "206", "400", "404", "409", "413", "422", "503"} == set(
        document["paths"][EXECUTE[1]]["post"]["responses"]
    )
    schemas = document["components"]["schemas"]
    assert set(schemas["ErrorBody"]["required"]) == {"status", "message", "instance", "retryable"}
    assert not {"HTTPValidationError", "ValidationError", "ResponseValidationError"} & set(schemas)


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def assert_matches(document: dict[str, Any], operation: tuple[str, str], answer: Answer) -> None:
    """The answer's status is one the operation documents, and its body has the documented shape:
    every required field, no undocumented one, each of the documented JSON type."""
    method, path = operation
    responses = document["paths"][path][method]["responses"]
    assert str(answer.status) in responses, f"{answer.status} is not documented for {method} {path}"
    schema = resolve(document, responses[str(answer.status)]["content"]["application/json"]["schema"])
    body = answer.body
    assert set(schema["required"]) <= set(body), set(schema["required"]) - set(body)
    assert set(body) <= set(schema["properties"]), set(body) - set(schema["properties"])
    python_types = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list, "null": type(None)}
    for name, value in body.items():
        declared = schema["properties"][name]
        options = declared.get("anyOf", [declared])
        types = tuple(python_types[option["type"]] for option in options if "type" in option)
        if types:
            assert isinstance(value, types), (name, value, declared)


def execute(server: Any, path: str = "/api/workflow/execute/hello_world", **kwargs: Any) -> Answer:
    return call(server.url, "POST", path, **kwargs)


def test_real_answers_match_the_document(local_server: Any, document: dict[str, Any]) -> None:
    key = f"openapi-{uuid.uuid4()}"
    calls: list[tuple[tuple[str, str], Answer]] = [
        (EXECUTE, execute(local_server, json_body={"name": "Ada"})),
        (
            EXECUTE,
            execute(local_server, "/api/workflow/execute/slow_steps", json_body={}, query={"waitForSeconds": "0"}),
        ),
        (EXECUTE, execute(local_server, "/api/workflow/execute/always_fails", json_body={})),
        (EXECUTE, execute(local_server, json_body={}, headers={"waitForSeconds": "soon"})),
        (EXECUTE, execute(local_server, "/api/workflow/execute/no_such_workflow", json_body={})),
        (EXECUTE, execute(local_server, json_body={"blob": "x" * 300_000})),
        (EXECUTE_VERSION, execute(local_server, "/api/workflow/execute/hello_world/1", json_body={"input": {}})),
        (
            EXECUTE_VERSION,
            execute(
                local_server,
                "/api/workflow/execute/hello_world/1",
                json_body={"input": {}},
                query={"includeTasks": "false"},
            ),
        ),
        (EXECUTE, execute(local_server, json_body={}, query={"includeTasks": "banana"})),
        (EXECUTE_VERSION, execute(local_server, "/api/workflow/execute/hello_world/two", json_body={})),
        (EXECUTE, execute(local_server, json_body={}, headers={"X-Idempotency-key": key, "X-on-conflict": "FAIL"})),
        (EXECUTE, execute(local_server, json_body={}, headers={"X-Idempotency-key": key, "X-on-conflict": "FAIL"})),
        (
            EXECUTE,
            execute(local_server, json_body={}, headers={"X-Idempotency-key": key, "X-on-conflict": "RETURN_EXISTING"}),
        ),
        (GET_RUN, call(local_server.url, "GET", "/api/workflow/hello_world.2.nope")),
    ]
    finished = calls[0][1].body["workflowId"]
    calls.append((GET_RUN, call(local_server.url, "GET", f"/api/workflow/{finished}")))
    calls.append(
        (GET_RUN, call(local_server.url, "GET", f"/api/workflow/{finished}", query={"includeTasks": "no way"}))
    )
    assert [answer.status for _, answer in calls] == [
        200,
        206,
        200,
        400,
        404,
        413,
        200,
        200,
        400,
        400,
        200,
        409,
        200,
        404,
        200,
        400,
    ]
    for operation, answer in calls:
        assert_matches(document, operation, answer)
    assert calls[-4][1].headers["x-idempotent-replayed"] == "true"


def test_swagger_ui_is_served_from_this_machine(local_server: Any) -> None:
    page = call(local_server.url, "GET", "/api/docs")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.raw.decode()
    assert 'id="swagger-ui"' in html
    assert '"/api/workflow/execute/{name}"' in html  # the document is embedded in the page
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)
    assert sorted(assets) == ["/api/docs/swagger-ui-bundle.min.js", "/api/docs/swagger-ui.min.css"]
    for asset in assets:
        answer = call(local_server.url, "GET", asset)
        assert answer.status == 200
        assert len(answer.raw) > 100_000
    assert call(local_server.url, "GET", "/api/docs", query={"format": "json"}).body["paths"]
