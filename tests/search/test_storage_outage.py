"""The search storage through database outages: PostgreSQL behind a TCP proxy the tests cut.
Writes wait for the database, the trial heartbeat outlives the outage, a result that cannot be
written by the deadline is journaled on disk and written by the next open, and a result whose
trial was failed meanwhile as an orphan becomes a new trial."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.exceptions import StorageInternalError
from optuna.trial import TrialState
from sqlalchemy.exc import OperationalError
from tcp_proxy import TcpProxy

from autoq.search.records import ORPHAN_ATTR, REPLACES_ATTR
from autoq.search.storage import (
    fail_orphan_trials,
    is_transient,
    journal_dir,
    open_storage,
    rdb_storage,
)

DIRECTIONS = ["minimize", "minimize"]
OUTAGE_SECONDS = 3.0


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy(("127.0.0.1", 5432)) as running:
        yield running


def _through(proxy: TcpProxy, url: str) -> str:
    return url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")


def _stored(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials as the database holds them, read past the proxy."""
    return optuna.load_study(study_name=name, storage=rdb_storage(url)).get_trials()


def _restore_after(proxy: TcpProxy, seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, proxy.restore)
    timer.start()
    return timer


@pytest.mark.postgres
def test_a_trial_through_an_outage_keeps_its_result_and_its_heartbeat(
    postgres_url: str, proxy: TcpProxy
) -> None:
    storage = open_storage(_through(proxy, postgres_url), heartbeat=1)
    study = optuna.create_study(study_name="outage", storage=storage, directions=DIRECTIONS)
    beats_after_outage: list[list[int]] = []

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        trial.suggest_categorical("scale", [1.0, 0.5])
        proxy.cut()
        timer = _restore_after(proxy, OUTAGE_SECONDS)
        trial.set_user_attr("timings", {"qat": 1.5})  # waits for the database
        timer.join()
        # Longer than the grace period (2 s): stale unless the heartbeat thread outlived the
        # outage and stamps again.
        time.sleep(3.5)
        plain = rdb_storage(postgres_url, heartbeat_interval=1, grace_period=2)
        beats_after_outage.append(plain._get_stale_trial_ids(plain.get_study_id_from_name(
            "outage")))
        proxy.cut()
        _restore_after(proxy, OUTAGE_SECONDS)
        return 0.25, 1000.0  # told during the second outage

    study.optimize(objective, n_trials=1)
    assert beats_after_outage == [[]]
    (trial,) = _stored(postgres_url, "outage")
    assert trial.state == TrialState.COMPLETE
    assert trial.values == [0.25, 1000.0]
    assert trial.user_attrs == {"timings": {"qat": 1.5}}


@pytest.mark.postgres
def test_a_result_past_the_deadline_is_journaled_and_written_by_the_next_open(
    postgres_url: str, proxy: TcpProxy, float_cache: Path
) -> None:
    url = _through(proxy, postgres_url)
    storage = open_storage(url, heartbeat=1)
    study = optuna.create_study(study_name="late", storage=storage, directions=DIRECTIONS)
    trial = study.ask()
    trial.suggest_categorical("scale", [1.0, 0.5])
    proxy.cut()
    storage.retry_until = time.time() + 1  # the job's time cap, reached during the outage
    trial.set_user_attr("timings", {"qat": 1.5})
    study.tell(trial, [0.25, 1000.0])
    assert [p.name for p in journal_dir(url).iterdir()] == [f"trial-{trial._trial_id}.jsonl"]
    proxy.restore()
    assert [t.state for t in _stored(postgres_url, "late")] == [TrialState.RUNNING]

    open_storage(url, heartbeat=1)  # a restarted worker

    (stored,) = _stored(postgres_url, "late")
    assert stored.state == TrialState.COMPLETE and stored.values == [0.25, 1000.0]
    assert stored.user_attrs == {"timings": {"qat": 1.5}}
    assert not list(journal_dir(url).iterdir())


def test_a_result_whose_trial_was_failed_as_an_orphan_becomes_a_new_trial(
    tmp_path: Path, float_cache: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'orphan.db'}"
    storage = open_storage(url, heartbeat=1)
    study = optuna.create_study(study_name="orphan", storage=storage, directions=DIRECTIONS)
    trial = study.ask()
    trial.suggest_categorical("scale", [1.0, 0.5])
    # Its job was re-queued (its worker taken for dead) while the trial still computed.
    assert fail_orphan_trials(rdb_storage(url, heartbeat_interval=1,
                                          heartbeat_stale_trial_callback=
                                          optuna.storages.RetryHeartbeatStaleTrialCallback(1)),
                              "orphan", reason="its worker stopped responding") == [0]
    trial.set_user_attr("timings", {"qat": 1.5})
    study.tell(trial, [0.25, 1000.0])

    orphan, retry, result = _stored(url, "orphan")
    assert orphan.state == TrialState.FAIL
    assert orphan.user_attrs[ORPHAN_ATTR] == "its worker stopped responding"
    assert retry.state == TrialState.WAITING and ORPHAN_ATTR not in retry.user_attrs
    assert result.state == TrialState.COMPLETE and result.values == [0.25, 1000.0]
    assert result.params == orphan.params
    assert result.user_attrs == {"timings": {"qat": 1.5}}
    assert result.system_attrs[REPLACES_ATTR] == orphan.number
    assert not list(journal_dir(url).iterdir())


def test_fail_orphan_trials_leaves_finished_trials_alone(tmp_path: Path,
                                                         float_cache: Path) -> None:
    url = f"sqlite:///{tmp_path / 'done.db'}"
    study = optuna.create_study(study_name="done", storage=open_storage(url),
                                directions=DIRECTIONS)
    study.optimize(lambda trial: (trial.suggest_float("x", 0, 1), 1.0), n_trials=2)
    assert fail_orphan_trials(rdb_storage(url), "done", reason="gone") == []
    assert fail_orphan_trials(rdb_storage(url), "no-such-study", reason="gone") == []
    assert [t.state for t in _stored(url, "done")] == [TrialState.COMPLETE] * 2


def _raised_from(cause: BaseException) -> StorageInternalError:
    try:
        try:
            raise cause
        except BaseException as e:
            raise StorageInternalError("An exception is raised during the commit.") from e
    except StorageInternalError as wrapped:
        return wrapped


@pytest.mark.parametrize(("error", "transient"), [
    (OperationalError("SELECT 1", {}, Exception("connection refused")), True),
    (_raised_from(OperationalError("COMMIT", {}, Exception("server closed the connection"))),
     True),
    (_raised_from(OperationalError("SELECT", {}, Exception("no such table: trials"))), False),
    (_raised_from(ValueError("value too long")), False),
    (KeyError("no trial"), False),
])
def test_only_an_unreachable_database_is_transient(error: BaseException,
                                                   transient: bool) -> None:
    assert is_transient(error) is transient
