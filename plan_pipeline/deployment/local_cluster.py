"""A local multi-worker setup on one machine (docs/deployment.md, "Locally"): PostgreSQL (the
Dagster instance's storage) and Redis (the Celery broker) on loopback, the Dagster daemon (run
queue, sensors, schedules), optionally the webserver, and Celery workers executing plan steps.

Every process is started in a session of its own, so :meth:`LocalCluster.stop` ends it with
everything it spawned (the daemon's code server and run workers, a worker's pool processes) and
can prove that nothing of it is left (:meth:`LocalCluster.leftover_pids`). The plan store stays
what the environment names (a DuckDB file in the project home by default).
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from plan_pipeline.deployment.celery_worker import worker_command
from plan_pipeline.deployment.local_services import (
    LocalPostgres,
    LocalRedis,
    LocalServiceError,
    free_port,
    port_in_use,
    start_postgres,
    start_redis,
)
from plan_pipeline.orchestration.code_location import workspace_yaml
from plan_pipeline.orchestration.executor import CELERY_BROKER_ENV
from plan_pipeline.orchestration.instance import DAGSTER_STORAGE_URL_ENV, prepare_dagster_home
from plan_pipeline.store.rules import STORE_URL_ENV

log = logging.getLogger("plan_pipeline.deployment")

DAGSTER_DATABASE = "dagster"
STOP_TIMEOUT_SECONDS = 30.0


def cluster_environment(home: Path, *, dagster_storage_url: str, broker_url: str,
                        base: Mapping[str, str] | None = None, plan_store_url: str | None = None) -> dict[str, str]:
    """The environment every process of the setup gets: project home (plan store, ``$DAGSTER_HOME``),
    Dagster storage on PostgreSQL, the Celery broker (which makes the plan jobs use Celery);
    ``plan_store_url``: the plan store on PostgreSQL (``$PLAN_STORE_URL``) instead of the home's DuckDB file."""
    env = dict(os.environ if base is None else base)
    env.pop(STORE_URL_ENV, None)
    if plan_store_url:
        env[STORE_URL_ENV] = plan_store_url
    env.update({
        "PLAN_PIPELINE_HOME": str(home),
        "PLAN_PIPELINE_DB": str(home / "plan_store.duckdb"),
        "DAGSTER_HOME": str(home / "dagster_home"),
        DAGSTER_STORAGE_URL_ENV: dagster_storage_url,
        CELERY_BROKER_ENV: broker_url,
    })
    return env


def _program(name: str) -> str:
    """A console script of this environment (``dagster-daemon``, ``dagster-webserver``)."""
    return str(Path(sys.executable).parent / name)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_in_use(port):
        if process.poll() is not None:
            raise LocalServiceError(f"{what} exited ({process.returncode}) while starting")
        if time.monotonic() > deadline:
            raise LocalServiceError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")
        time.sleep(0.2)


def _session_pids(sessions: set[int]) -> list[int]:
    """Live processes whose session is one of ``sessions`` (a started process and all it spawned)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state, ppid, pgrp, session
        if fields[0] != "Z" and int(fields[3]) in sessions:
            found.append(int(entry.name))
    return sorted(found)


def _end_session(process: subprocess.Popen[bytes], what: str, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM the process's session (it leads it), wait, then SIGKILL whatever is left of it."""
    session = process.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(session, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process.poll()
            if not _session_pids({session}):
                process.wait(timeout=timeout)
                return
            time.sleep(0.1)
        if sig == signal.SIGTERM:
            log.warning("%s (session %d) did not stop within %.0f s; killing it", what, session, timeout)
    process.wait(timeout=timeout)


@dataclass
class LocalCluster:
    """The started setup; :meth:`stop` (or the ``with`` block) ends every process of it."""

    home: Path
    env: dict[str, str]
    postgres: LocalPostgres
    redis: LocalRedis
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    webserver_url: str | None = None
    log_dir: Path | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        assert self.log_dir is not None
        with (self.log_dir / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(command, env=self.env, cwd=self.home, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        log.info("%s started (pid %d): %s", name, process.pid, " ".join(command))
        return process

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        """One more Celery worker (``name@host``) on the broker."""
        return self._spawn(f"worker-{name}", worker_command(name, environ=self.env))

    def stop_process(self, name: str, *, kill: bool = False) -> None:
        """End one process of the setup (``kill``: SIGKILL its session at once, like a crash)."""
        process = self.processes.pop(name)
        if kill:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        _end_session(process, name)

    def leftover_pids(self) -> list[int]:
        """Live processes of the setup (its servers, and every process its processes spawned)."""
        sessions = {p.pid for p in self.processes.values()}
        pids = _session_pids(sessions) if sessions else []
        for pid in (self.postgres.pid, self.redis.pid):
            if pid is not None and Path(f"/proc/{pid}").exists():
                with suppress(OSError):
                    if (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z":
                        pids.append(pid)
        return pids

    def stop(self) -> None:
        """Workers, daemon and webserver first (each with everything it spawned), then the servers."""
        for name in sorted(self.processes, key=lambda n: (not n.startswith("worker-"), n)):
            try:
                self.stop_process(name)
            except Exception as exc:  # keep stopping the others
                log.warning("stopping %s failed: %s", name, exc)
        self.redis.stop()
        self.postgres.stop()


def start_local_cluster(home: Path, *, workers: tuple[str, ...] = ("w1", "w2"), daemon: bool = True,
                        webserver: bool = False, plan_store_on_postgres: bool = False,
                        settings: Mapping[str, str] | None = None) -> LocalCluster:
    """Start PostgreSQL and Redis on loopback (temporary folders), prepare ``home`` (the project home:
    plan store, ``dagster_home`` rendered for Dagster storage on PostgreSQL), then the daemon, the
    webserver if asked (127.0.0.1, a free port) and the workers. ``plan_store_on_postgres``: the plan
    store is the server's own database (``local_services.DEFAULT_DATABASE``, ``$PLAN_STORE_URL``).
    ``settings``: more environment for every process (e.g. ``$PLAN_PIPELINE_CELERY_VISIBILITY_TIMEOUT``).
    Stopped with :meth:`LocalCluster.stop`."""
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    postgres = start_postgres()
    try:
        redis = start_redis()
    except BaseException:
        postgres.stop()
        raise
    cluster = LocalCluster(home=home, env={}, postgres=postgres, redis=redis, log_dir=home / "logs")
    try:
        cluster.log_dir.mkdir(exist_ok=True)  # type: ignore[union-attr]
        store_url = postgres.url if plan_store_on_postgres else None  # the server's own (empty) database
        cluster.env = cluster_environment(home, dagster_storage_url=postgres.create_database(DAGSTER_DATABASE),
                                          broker_url=redis.url, plan_store_url=store_url)
        cluster.env.update(settings or {})
        dagster_home = prepare_dagster_home(Path(cluster.env["DAGSTER_HOME"]), environ=cluster.env)
        workspace = dagster_home / "workspace.yaml"
        workspace.write_text(workspace_yaml())
        if daemon:
            cluster._spawn("daemon", [_program("dagster-daemon"), "run", "-w", str(workspace)])
        if webserver:
            port = free_port()
            process = cluster._spawn("webserver", [_program("dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
                                                   "-w", str(workspace)])
            _wait_for_port(port, process, "Dagster webserver")
            cluster.webserver_url = f"http://127.0.0.1:{port}"
        for name in workers:
            cluster.start_worker(name)
    except BaseException:
        cluster.stop()
        raise
    return cluster
