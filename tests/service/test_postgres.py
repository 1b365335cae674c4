"""The service on PostgreSQL: a search end to end, two worker processes sharing a queue, and a
worker killed mid-trial whose job another worker finishes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import pytest
from harness import Service, tiny_spec, verify_results, wait_for

pytestmark = pytest.mark.postgres


def test_search_succeeds_on_postgres(pg_url: str, service_on: Callable[..., Service]) -> None:
    api = service_on(pg_url).api(workers=1)
    created = api.submit(spec=tiny_spec("tiny-pg"))
    job = api.wait_status(created["id"], {"succeeded", "failed", "cancelled"})
    assert job["status"] == "succeeded", job["error"]
    verify_results(api, created["id"], trials=3)


def test_two_workers_run_every_job_exactly_once(pg_url: str,
                                                service_on: Callable[..., Service]) -> None:
    service = service_on(pg_url, threads="1")
    api = service.api(workers=0)
    submitted = [api.submit(spec=tiny_spec(f"queue-{i}", trials=1))["id"] for i in range(4)]
    workers = [service.worker(), service.worker()]
    finished = [api.wait_status(job_id, {"succeeded", "failed", "cancelled"})
                for job_id in submitted]
    assert [job["status"] for job in finished] == ["succeeded"] * 4
    assert all(job["attempts"] == 1 for job in finished)
    for job in finished:
        trials = api.client.get(f"/api/v1/searches/{job['id']}/trials").json()["data"]
        assert [t["state"] for t in trials] == ["COMPLETE"]
    runs = [re.findall(r"runs job ([0-9a-f-]{36})", worker.output()) for worker in workers]
    assert Counter(job for ran in runs for job in ran) == Counter(submitted)
    assert all(runs), "each worker should have taken a job"


def test_job_of_a_killed_worker_resumes_without_losing_or_repeating_trials(
    pg_url: str, service_on: Callable[..., Service]
) -> None:
    service = service_on(pg_url, job_heartbeat_timeout="4")
    api = service.api(workers=0)
    job_id = api.submit(spec=tiny_spec("killed", trials=4))["id"]
    first = service.worker()

    def mid_trial() -> bool:
        counts = api.search(job_id)["trials"]
        return counts["complete"] >= 1 and counts["running"] == 1

    wait_for(mid_trial, timeout=240, what="a complete trial and one in flight")
    first.kill()
    trials_url = f"/api/v1/searches/{job_id}/trials"
    before = {t["number"]: t for t in api.client.get(trials_url).json()["data"]
              if t["state"] == "COMPLETE"}
    assert api.search(job_id)["status"] == "running"

    service.worker()
    job = api.wait_status(job_id, {"succeeded", "failed", "cancelled"})
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 2
    after = [t for t in api.client.get(trials_url).json()["data"] if t["state"] == "COMPLETE"]
    assert len(after) == 4 == job["trials"]["done"]
    assert {t["number"]: t for t in after if t["number"] in before} == before
