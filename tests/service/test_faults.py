"""The fault suite on PostgreSQL, with real service processes: a database outage across a
trial's end (through a TCP proxy the test cuts, so the shared server stays up), a worker killed
while the other worker is busy, the API alone (``--workers 0``) taking back a killed worker's
job, and a SIGTERM followed by a SIGKILL."""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna
import pytest
from harness import Api, Proc, Service, tiny_spec, wait_for
from optuna.trial import FrozenTrial, TrialState
from tcp_proxy import TcpProxy

from autoq.search.records import ORPHAN_ATTR

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

OUTAGE_SECONDS = 60
HEARTBEAT_TIMEOUT = 4
SWEEP_SECONDS = 1  # the harness's AUTOQ_JOB_HEARTBEAT_SECONDS: the sweepers' period too
FINAL = {"succeeded", "failed", "cancelled"}


def _trials(pg_url: str, name: str) -> list[FrozenTrial]:
    """A study's trials as PostgreSQL holds them, read past the service (and the proxy)."""
    try:
        return optuna.load_study(study_name=name, storage=pg_url).get_trials()
    except KeyError:
        return []


def _states(trials: list[FrozenTrial]) -> dict[int, tuple[str, list[float] | None]]:
    return {t.number: (t.state.name, t.values) for t in trials}


def _mid_trial(pg_url: str, name: str, *, complete: int = 1) -> Callable[[], bool]:
    def check() -> bool:
        states = [t.state for t in _trials(pg_url, name)]
        return (states.count(TrialState.COMPLETE) >= complete
                and states.count(TrialState.RUNNING) == 1)

    return check


def _logs(procs: list[Proc]) -> str:
    return "\n".join(proc.output() for proc in procs)


def test_a_database_outage_across_a_trials_end_loses_no_result(
    pg_url: str, service_on: Callable[..., Service]
) -> None:
    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        proxied = pg_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
        service = service_on(proxied, job_heartbeat_timeout="10")
        api = service.api(workers=0)
        job = api.submit(spec=tiny_spec("outage", trials=4))
        workers = [service.worker(), service.worker()]  # one runs the job, one stays idle
        wait_for(_mid_trial(pg_url, job["name"]), timeout=600,
                 what="a complete trial and one in flight")
        before = _states(_trials(pg_url, job["name"]))
        (cut_off,) = [n for n, (state, _) in before.items() if state == "RUNNING"]

        proxy.cut()
        cut_at = time.monotonic()
        # The trial in flight ends during the outage: its result's writes wait for the database.
        wait_for(lambda: "retrying user_attr" in _logs(workers), timeout=OUTAGE_SECONDS - 5,
                 what="the trial in flight to end during the outage")
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
        assert [proc.alive() for proc in [api.proc, *workers]] == [True] * 3, _logs(workers)
        proxy.restore()

        done = api.wait_status(job["id"], FINAL)
        after = _states(_trials(pg_url, job["name"]))
        print(f"outage: before {before}\nafter {after}")
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 1  # nobody took the outage for a dead worker
        assert {n: after[n] for n in before if before[n][0] == "COMPLETE"} == {
            n: v for n, v in before.items() if v[0] == "COMPLETE"}
        assert after[cut_off][0] == "COMPLETE" and after[cut_off][1] is not None
        assert [state for state, _ in after.values()] == ["COMPLETE"] * 4
        assert all(proc.alive() for proc in workers)


def _requeue_time(api: Api, job_id: str, killed_at: float) -> float:
    api.wait_status(job_id, {"queued"}, timeout=HEARTBEAT_TIMEOUT + SWEEP_SECONDS + 60)
    return time.monotonic() - killed_at


def _assert_cut_off_trial_failed(pg_url: str, name: str) -> None:
    trials = _trials(pg_url, name)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    orphans = [t for t in trials if ORPHAN_ATTR in t.user_attrs]
    assert len(orphans) == 1 and orphans[0].state == TrialState.FAIL
    assert "stopped responding" in orphans[0].user_attrs[ORPHAN_ATTR]


def test_a_killed_workers_job_is_requeued_while_the_other_worker_is_busy(
    pg_url: str, service_on: Callable[..., Service]
) -> None:
    service = service_on(pg_url, job_heartbeat_timeout=str(HEARTBEAT_TIMEOUT))
    api = service.api(workers=0)
    workers = [service.worker(), service.worker()]
    killed = api.submit(spec=tiny_spec("killed", trials=3))
    busy = api.submit(spec=tiny_spec("busy", trials=12))
    wait_for(_mid_trial(pg_url, killed["name"]), timeout=600,
             what="a complete trial and one in flight")
    wait_for(lambda: api.search(busy["id"])["trials"]["running"] == 1, timeout=120,
             what="the other worker to be busy with the other job")
    (doomed,) = [w for w in workers if f"runs job {killed['id']}" in w.output()]
    doomed.kill()
    seconds = _requeue_time(api, killed["id"], time.monotonic())
    print(f"re-queued {seconds:.1f} s after the kill")
    assert api.search(busy["id"])["status"] == "running"  # not freed by the other job's end
    _assert_cut_off_trial_failed(pg_url, killed["name"])

    done = api.wait_status(killed["id"], FINAL, timeout=600)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2 and done["trials"]["complete"] == 3
    assert api.wait_status(busy["id"], FINAL, timeout=600)["status"] == "succeeded"


def test_the_api_alone_takes_back_a_killed_workers_job(
    pg_url: str, service_on: Callable[..., Service]
) -> None:
    service = service_on(pg_url, job_heartbeat_timeout=str(HEARTBEAT_TIMEOUT))
    api = service.api(workers=0)  # the only sweeper once the worker is dead
    job = api.submit(spec=tiny_spec("api-sweeps", trials=3))
    worker = service.worker()
    wait_for(_mid_trial(pg_url, job["name"]), timeout=600,
             what="a complete trial and one in flight")
    worker.kill()
    seconds = _requeue_time(api, job["id"], time.monotonic())
    print(f"re-queued by the API {seconds:.1f} s after the kill")
    _assert_cut_off_trial_failed(pg_url, job["name"])
    assert api.search(job["id"])["trials"]["running"] == 0


def test_a_sigterm_then_a_sigkill_leave_the_job_to_succeed(
    pg_url: str, service_on: Callable[..., Service]
) -> None:
    # Two crashes fail a job; a graceful stop is not one.
    service = service_on(pg_url, job_heartbeat_timeout=str(HEARTBEAT_TIMEOUT), max_attempts="2")
    api = service.api(workers=0)
    job = api.submit(spec=tiny_spec("term-kill", trials=4))
    first = service.worker()
    wait_for(_mid_trial(pg_url, job["name"]), timeout=600,
             what="a complete trial and one in flight")
    assert first.terminate() == 130
    released = api.search(job["id"])
    assert (released["status"], released["attempts"]) == ("queued", 0)
    assert released["trials"]["running"] == 0

    second = service.worker()
    wait_for(lambda: api.search(job["id"])["trials"]["running"] == 1
             and api.search(job["id"])["attempts"] == 1, timeout=120,
             what="the second worker in a trial")
    second.kill()
    service.worker()
    done = api.wait_status(job["id"], FINAL, timeout=600)
    print(f"SIGTERM then SIGKILL: {_states(_trials(pg_url, job['name']))}")
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2 and done["trials"]["complete"] == 4
    assert done["trials"]["running"] == 0
