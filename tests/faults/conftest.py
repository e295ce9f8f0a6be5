"""The fault suite's fixtures: the fault layer on the service's botocore session, the API
function as API Gateway invokes it, and a fresh account (local mode's limits reset) per case.
At the end of the session, one line sums up what the fault cases did."""

from collections.abc import Iterator
from typing import Any

import pytest
from moto.core.models import botocore_stubber

from tests.aws_faults import FaultLayer
from tests.faults.harness import TALLY, Api
from tests.faults.runner import run_case
from tests.integration.conftest import aws_limits  # noqa: F401 - a fixture, used by ``fault_run``
from workflow_api.adapters.aws import botocore_session, forget_clients


@pytest.fixture(scope="session")
def fault_layer(local_aws: Any) -> Iterator[FaultLayer]:
    """Installed once: every client the service builds from now on passes through it."""
    layer = FaultLayer(botocore_session(), botocore_stubber).install()
    forget_clients()
    for function in local_aws.functions.values():
        # Each function's next invocation is a cold start, so the clients it builds (run_status's
        # DynamoDB client) are built through the layer too.
        function._idle.clear()
    yield layer
    layer.uninstall()
    forget_clients()


@pytest.fixture(scope="session")
def fault_api(local_aws: Any) -> Api:
    return Api(local_aws)


@pytest.fixture
def fault_run(fault_layer: FaultLayer, fault_api: Api, aws_limits: Any) -> Any:  # noqa: F811
    """Runs one case on a fresh account: AWS's limits as local mode has them, counters at zero."""
    aws_limits()
    return lambda case, **options: run_case(case, fault_api, fault_layer, **options)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.cases:
        terminalreporter.write_sep("-", "fault suite (tests/faults)")
        terminalreporter.write_line(TALLY.summary())
        terminalreporter.write_line(f"call sites: {', '.join(sorted(TALLY.sites))}")


def pytest_report_header(config: Any) -> str:
    from tests.faults.test_chaos import CASES, SEED

    return f"chaos: {CASES} cases from seed {SEED} (CHAOS_SEED={SEED} CHAOS_CASES={CASES} replays them)"
