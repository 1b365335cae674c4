"""The API while its database is down: a real ``autoq serve`` on PostgreSQL reached through a
TCP proxy that the test cuts (the shared server keeps running for other tests). Every endpoint
that needs the database answers 503 with ``Retry-After`` in the one error shape, and the
service recovers by itself once the database is back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness import Api, Service, tiny_spec, wait_for
from tcp_proxy import TcpProxy

from service.schemas import ErrorBody

pytestmark = pytest.mark.postgres

NO_SEARCH = "00000000-0000-0000-0000-000000000000"


def _needing_the_database(search_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """``(method, path, json)`` of every endpoint that reads or writes the database."""
    search = f"/api/v1/searches/{search_id}"
    return [
        ("GET", "/api/v1/searches", None),
        ("GET", search, None),
        ("POST", "/api/v1/searches", {"spec": tiny_spec("during-outage")}),
        ("GET", f"{search}/trials", None),
        ("GET", f"{search}/pareto", None),
        ("GET", f"{search}/operating-point?max_mse=1", None),
        ("GET", f"{search}/trials/0/artifact", None),
        ("POST", f"{search}/cancel", None),
        ("GET", f"/api/v1/searches/{NO_SEARCH}", None),
        ("GET", "/readyz", None),
        ("GET", "/api/studies", None),  # the dashboard's own API
    ]


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    problem, = ErrorBody.model_validate(response.json()).detail
    assert problem.type == "unavailable" and "database" in problem.msg


def test_every_endpoint_answers_503_while_the_database_is_down_and_recovers(
    pg_url: str, service_on: Callable[..., Service]
) -> None:
    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        api: Api = service_on(pg_url.replace(":5432/", f":{proxy.port}/")).api(workers=0)
        before = api.submit(spec=tiny_spec("before-outage"))
        assert api.client.get("/api/studies").status_code == 200  # the dashboard is built

        proxy.cut()
        for method, path, body in _needing_the_database(before["id"]):
            _assert_unavailable(api.client.request(method, path, json=body))
        assert api.client.get("/healthz").status_code == 200  # alive, only not ready

        proxy.restore()
        wait_for(lambda: api.client.get("/readyz").status_code == 200, timeout=60,
                 what="the API to see the database again")
        listed = api.client.get("/api/v1/searches")
        assert listed.status_code == 200, listed.text
        # The submission refused during the outage left nothing behind.
        assert [job["id"] for job in listed.json()["data"]] == [before["id"]]
        assert api.search(before["id"])["status"] == "queued"
        assert api.client.get("/api/studies").status_code == 200
        after = api.submit(spec=tiny_spec("after-outage"))
        assert api.search(after["id"])["name"] == after["name"]
