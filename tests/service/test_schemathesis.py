"""Property-based API tests: schemathesis generates requests from the OpenAPI schema (valid and
invalid bodies, queries, paths) and sends them to a real server; no request may end in a 5xx,
responses, status codes and headers must match the schema, and no request that violates the
schema may be accepted (requests are validated strictly: the schema's types are the only ones
taken, and the bundled spaces and the server's limits are in the schema).

One check is left out, "schema-valid request rejected": rules no JSON Schema holds refuse some
schema-valid requests with a 422 naming the field: cross-field checks (a transformer's heads
must divide its width, a pde and a layout must agree, the operating point takes one of max_mse
and max_ratio), the data root, a taken name (409).

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
from schemathesis.specs.openapi.checks import positive_data_acceptance

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
                           excluded_checks=[positive_data_acceptance])
