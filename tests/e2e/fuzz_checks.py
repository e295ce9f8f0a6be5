"""Schemathesis hooks for ``test_fuzz``: the SPEC's error body as a check of its own.

Loaded by schemathesis from the SCHEMATHESIS_HOOKS environment variable, not by pytest.
"""

from typing import Any

import schemathesis

# Twelve digits on their own, not the tail of a UUID or any other token.
# The stack's own account (moto's, in local mode): an answer must never name it. Any other
# 12 digits may be the caller's own input echoed back.
ACCOUNT_ID = "123456789012"  # local_mode.aws.ACCOUNT; schemathesis loads this file without our path


@schemathesis.check
def conductor_error_body(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error answer is Conductor's ErrorResponse (status, message, instance, retryable)
    and carries no stack trace, ARN or account id."""
    if response.status_code < 400 or response.request.method == "HEAD":
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} answer is not JSON: {response.text[:200]!r}") from None
    if not isinstance(body, dict):
        raise AssertionError(f"{response.status_code} answer is not a JSON object: {body!r}")
    problems = []
    if body.get("status") != response.status_code:
        problems.append(f"status {body.get('status')!r} is not the HTTP status")
    if not isinstance(body.get("message"), str) or not body["message"]:
        problems.append("no message")
    if not isinstance(body.get("instance"), str):
        problems.append("no instance")
    if not isinstance(body.get("retryable"), bool):
        problems.append("no retryable flag")
    for leak in ("Traceback", 'File "', "arn:aws"):
        if leak in response.text:
            problems.append(f"leaks {leak!r}")
    if ACCOUNT_ID in response.text:
        problems.append("leaks the account id")
    if problems:
        raise AssertionError(f"{response.status_code} error body: {'; '.join(problems)}")
    return None
