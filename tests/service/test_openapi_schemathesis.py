"""Schemathesis against the server's own OpenAPI spec: generated requests (a bounded
number per operation) never get a 5xx, and every response matches the documented schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from live_server import ADMIN_KEY, Server
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    unsupported_method,
)


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Its own warehouse, and no workers: the generated submissions are accepted and stored
    # as jobs but not run, so the fuzzing stays fast and touches no other test's data.
    folder = tmp_path_factory.mktemp("fuzz")
    server = Server(folder / "fuzz.duckdb", folder / "server.log", CONVOLENS_WORKERS="0")
    server.env["CONVOLENS_PRELOAD"] = "0"
    server.start()
    yield server
    server.stop()


CHECKS_OFF = [
    # These judge how strictly input is validated and auth headers the spec does not
    # declare (keys are checked in code and tested endpoint by endpoint in test_access.py).
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    unsupported_method,
]


def test_no_server_errors_and_responses_match_the_schema(fuzzed_server: Server) -> None:
    # Operations are walked here rather than with schemathesis' pytest plugin, whose
    # collection hook does not yet support pytest 9.
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=fuzzed_server.url,
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                excluded_checks=CHECKS_OFF,
            )

        check()
        tested += 1
    assert tested >= 15
