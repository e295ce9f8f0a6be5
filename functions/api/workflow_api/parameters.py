"""The call's parameters: each may come as an HTTP header (the user's document) or as a query
parameter (the Conductor server's form), names matched case-insensitively.

Tolerant where Conductor's clients are sloppy: an optional parameter whose value is empty, ``None``
or ``null`` is absent (the Python SDK urlencodes ``None``, the JavaScript SDK sends an empty
``waitUntilTaskRef``). Strict where it matters: a real value given twice and differently is a 400.

Pure: plain mappings in, a validated ``RunOptions`` out, or ``InvalidRequest`` naming every problem.
"""

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import FieldError, InvalidRequest
from .models import Strategy

PRINTABLE = re.compile(r"^[\x20-\x7e]+$")
# Header/query name -> RunOptions field.
PARAMETERS = {
    "version": "version",
    "requestid": "request_id",
    "waituntiltaskref": "wait_until_task_ref",
    "waitforseconds": "wait_for_seconds",
    "x-idempotency-key": "idempotency_key",
    "x-on-conflict": "on_conflict",
    "consistency": "consistency",
    "returnstrategy": "return_strategy",
}
WIRE_NAMES = {
    "version": "version",
    "request_id": "requestId",
    "wait_until_task_ref": "waitUntilTaskRef",
    "wait_for_seconds": "waitForSeconds",
    "idempotency_key": "X-Idempotency-key",
    "on_conflict": "X-on-conflict",
    "consistency": "consistency",
    "return_strategy": "returnStrategy",
}
DEFAULT_WAIT_SECONDS = 10
MAX_TASK_REFS = 100
# What Conductor's SDKs send for an argument they were not given: conductor-python's str(None),
# conductor-javascript's default "", and JSON's null as text.
ABSENT_VALUES = frozenset({"", "None", "null"})


def is_absent(value: Any) -> bool:
    """True for a value a client sent in place of nothing."""
    return isinstance(value, str) and value in ABSENT_VALUES


def _absent_is_true(value: Any) -> Any:
    return True if is_absent(value) else value


# A boolean query parameter that defaults to true (``includeTasks``): an SDK's ``None``/``null``/
# empty reads as not given. Validated by powertools before the route runs; its schema stays boolean.
FlagTrueByDefault = Annotated[bool, BeforeValidator(_absent_is_true)]


def _printable(value: str) -> str:
    if not PRINTABLE.match(value):
        raise ValueError("must be printable ASCII without control characters")
    return value


def _task_refs(value: str) -> tuple[str, ...]:
    refs = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not refs:
        raise ValueError("must name at least one task reference")
    if len(refs) > MAX_TASK_REFS:
        raise ValueError(f"at most {MAX_TASK_REFS} task references")
    return refs


NonNegativeInt = Annotated[int, Field(ge=0, strict=False)]


class RunOptions(BaseModel):
    """How one synchronous call starts and waits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    request_id: Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_printable)] = Field(
        default_factory=lambda: str(uuid.uuid4())
    )
    wait_until_task_ref: Annotated[tuple[str, ...], Field()] = ()
    # waitUntilTaskRef=None or =null (an SDK's "no task"): a task to wait on only if the workflow
    # has a state of that very name; the service decides, as it knows the states.
    task_ref_if_a_state: str | None = None
    # No upper bound: above MaxWaitSeconds a wait is clamped, never refused (SPEC).
    wait_for_seconds: Annotated[int, Field(ge=0)] = DEFAULT_WAIT_SECONDS
    idempotency_key: Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_printable)] | None = None
    on_conflict: Strategy | None = None
    consistency: Literal["SYNCHRONOUS", "DURABLE", "REGION_DURABLE"] | None = None
    return_strategy: Literal["TARGET_WORKFLOW"] | None = None

    @property
    def wait_until_task_refs(self) -> frozenset[str]:
        return frozenset(self.wait_until_task_ref)


def _values(mapping: Mapping[str, Any] | None) -> Iterable[tuple[str, str]]:
    for name, value in (mapping or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                yield name, str(item)


def collect(
    headers: Mapping[str, Any] | None, query: Mapping[str, Any] | None
) -> tuple[dict[str, str], list[FieldError]]:
    """Gather the known parameters; a name given twice with different values is an error.
    An absent-looking value (empty, ``None``, ``null``) is left out; see ``absent_task_ref``."""
    found: dict[str, str] = {}
    problems: list[FieldError] = []
    for source in (headers, query):
        for name, value in _values(source):
            field = PARAMETERS.get(name.lower())
            if field is None or is_absent(value):
                continue
            if field in found and found[field] != value:
                problems.append(FieldError(WIRE_NAMES[field], "given more than once with different values", value))
                continue
            found[field] = value
    return found, problems


def absent_task_ref(headers: Mapping[str, Any] | None, query: Mapping[str, Any] | None) -> str | None:
    """The first ``waitUntilTaskRef`` of ``None`` or ``null``: a state may bear that name."""
    for source in (headers, query):
        for name, value in _values(source):
            if name.lower() == "waituntiltaskref" and value and is_absent(value):
                return value
    return None


def read_run_options(
    headers: Mapping[str, Any] | None,
    query: Mapping[str, Any] | None,
    *,
    extra: Mapping[str, Any] | None = None,
) -> RunOptions:
    """Validate the call's parameters; ``extra`` holds values from the path or the body that must
    agree with a header or query parameter of the same meaning when both are given."""
    found, problems = collect(headers, query)
    raw: dict[str, Any] = dict(found)
    if "wait_until_task_ref" not in raw:
        raw["task_ref_if_a_state"] = absent_task_ref(headers, query)
    for field, value in (extra or {}).items():
        if value is None or value == "":  # a body's empty idempotencyKey is no key
            continue
        if field in raw and str(raw[field]) != str(value):
            problems.append(
                FieldError(WIRE_NAMES[field], "disagrees with the same parameter given elsewhere", raw[field])
            )
        raw[field] = value
    if "wait_until_task_ref" in raw and isinstance(raw["wait_until_task_ref"], str):
        try:
            raw["wait_until_task_ref"] = _task_refs(raw["wait_until_task_ref"])
        except ValueError as exc:
            problems.append(FieldError("waitUntilTaskRef", str(exc), raw.pop("wait_until_task_ref")))
    if raw.get("idempotency_key") is not None and raw.get("on_conflict") is None:
        problems.append(
            FieldError("X-on-conflict", "required with X-Idempotency-key: RETURN_EXISTING, FAIL or FAIL_ON_RUNNING")
        )
    if problems:
        raise InvalidRequest("invalid request parameters", problems)
    try:
        return RunOptions.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest("invalid request parameters", field_errors(exc, WIRE_NAMES)) from None


def field_errors(exc: ValidationError, names: Mapping[str, str] | None = None) -> list[FieldError]:
    return field_errors_from_dicts(exc.errors(include_url=False), names)


def field_errors_from_dicts(
    details: Iterable[Mapping[str, Any]], names: Mapping[str, str] | None = None
) -> list[FieldError]:
    """Pydantic's errors as Conductor's ``validationErrors``, named as the caller wrote them."""
    errors = []
    for error in details:
        # A JSON syntax error's location ends in a character offset: the body is what is wrong.
        loc = [str(part) for part in error["loc"] if error.get("type") != "json_invalid" or isinstance(part, str)]
        head = (names or {}).get(loc[0], loc[0]) if loc else ""
        path = ".".join([head, *loc[1:]]) if loc else ""
        errors.append(FieldError(path, error["msg"], _plain(error.get("input"))))
    return errors


def _plain(value: Any) -> Any:
    """Echo simple values back; summarise anything big or odd so an error never grows huge."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if not isinstance(value, str):
        return None  # an object or a list: the path already says where
    return value if len(value) <= 200 else value[:200] + "..."
