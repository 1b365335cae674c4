"""Property-based API tests: schemathesis generates requests from the OpenAPI schema (valid and
invalid bodies, queries, paths) and sends them to a real server; no request may end in a 5xx,
and responses, status codes and headers must match the schema.

Two checks are left out, "schema-violating request accepted" and "schema-valid request
rejected": a submission is validated beyond its JSON Schema in both directions. Search specs
validate in pydantic's lax mode (``false`` passes for a number), and rules no JSON Schema holds
refuse schema-valid bodies: cross-field checks (a transformer's heads must divide its width),
the data root, the trial cap, a taken name.

The schema is built from the app at collection (schemathesis' lazy fixture loader does not run
on pytest 9); a test checks it is exactly what the server serves at ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from harness import TOKEN, Api, Service, service_env
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from service.app import create_app
from service.config import Settings

pytestmark = pytest.mark.slow

OPENAPI = create_app(Settings(storage="sqlite://")).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, float_cache: Path) -> Iterator[Api]:
    """An API with no workers: submitted searches stay queued, the fuzzing stays fast."""
    workdir = tmp_path_factory.mktemp("fuzz")
    storage = f"sqlite:///{workdir / 'autoq.db'}"
    service = Service(storage, service_env(workdir, storage, float_cache), workdir)
    try:
        yield service.api(workers=0)
    finally:
        service.close()


def test_fuzzed_schema_is_the_served_one(server: Api) -> None:
    assert httpx.get(f"{server.url}/openapi.json").json() == OPENAPI


@schema.parametrize()
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_fuzzed_requests_get_no_5xx_and_answers_match_the_schema(case: schemathesis.Case,
                                                                  server: Api) -> None:
    case.call_and_validate(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"},
                           excluded_checks=[negative_data_rejection, positive_data_acceptance])
