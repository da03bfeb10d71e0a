"""PostgreSQL and Redis servers on loopback for a local multi-process setup and its tests.

The servers are Debian's packages (``postgresql``, ``redis-server``), started from their
binaries with the data in a fresh temporary folder, listening on 127.0.0.1 only on a free
port, and stopped with no process left (``stop()``, or the ``with`` block). Nothing here is
for production: authentication is ``trust`` on loopback, and nothing is durable (PostgreSQL runs
with ``fsync=off``, Redis saves nothing). docs/deployment.md describes the real topology.

PostgreSQL refuses to run as root: a root caller runs its programs as the ``postgres`` system
user (which Debian's package creates), in a data folder that user owns.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

log = logging.getLogger("plan_pipeline.deployment")

POSTGRES_PACKAGE = "postgresql"
REDIS_PACKAGE = "redis-server"
#: Where Debian's postgresql-N package puts the server programs (the newest N wins).
POSTGRES_BIN_ROOT = Path("/usr/lib/postgresql")
POSTGRES_SYSTEM_USER = "postgres"
DEFAULT_DATABASE = "plan_store"
DEFAULT_ROLE = "plan"
START_TIMEOUT_SECONDS = 60.0


class LocalServiceError(RuntimeError):
    """A local server could not be found, started or stopped (the message says which and why)."""


def postgres_bin_dir() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (``initdb``, ``pg_ctl``), if installed."""
    if POSTGRES_BIN_ROOT.is_dir():
        versions = sorted((p for p in POSTGRES_BIN_ROOT.iterdir() if (p / "bin" / "pg_ctl").is_file()),
                          key=lambda p: int(p.name) if p.name.isdigit() else -1, reverse=True)
        if versions:
            return versions[0] / "bin"
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def redis_server_binary() -> Path | None:
    found = shutil.which("redis-server")
    return Path(found) if found else None


def missing_servers(*names: str) -> list[str]:
    """What is missing to start the named servers (``postgresql``, ``redis``): one line each,
    saying which Debian package installs it. Empty when everything is there."""
    missing = []
    if "postgresql" in names and postgres_bin_dir() is None:
        missing.append(f"PostgreSQL server programs (Debian package {POSTGRES_PACKAGE}: apt-get install {POSTGRES_PACKAGE})")
    if "postgresql" in names and os.geteuid() == 0 and not _system_user_exists(POSTGRES_SYSTEM_USER):
        missing.append(f"system user {POSTGRES_SYSTEM_USER!r} to run PostgreSQL as (created by Debian's {POSTGRES_PACKAGE} package)")
    if "redis" in names and redis_server_binary() is None:
        missing.append(f"Redis server (Debian package {REDIS_PACKAGE}: apt-get install {REDIS_PACKAGE})")
    return missing


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _require_free(port: int, what: str) -> int:
    # a server that cannot bind exits, but another program on the port would answer for it
    if port_in_use(port):
        raise LocalServiceError(f"cannot start {what}: 127.0.0.1:{port} is already in use")
    return port


def _system_user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _wait_for_port(port: int, timeout: float, what: str, alive: Callable[[], bool] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise LocalServiceError(f"{what} exited while starting")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise LocalServiceError(f"{what} did not accept connections on 127.0.0.1:{port} within {timeout:.0f} s")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as gone
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


class _Service:
    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass
class LocalPostgres(_Service):
    """A PostgreSQL server of this process on 127.0.0.1:``port`` (``url`` connects as ``role``)."""

    base_dir: Path
    port: int
    bin_dir: Path
    database: str = DEFAULT_DATABASE
    role: str = DEFAULT_ROLE
    pid: int | None = None
    _own_base_dir: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.role}@127.0.0.1:{self.port}/{database}"

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one of the server's programs (as the ``postgres`` user when this process is root)."""
        return _run_as_postgres([str(self.bin_dir / program), *args])

    def create_database(self, name: str) -> str:
        """A new empty database on this server; returns its URL."""
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.role, name)
        return self.url_for(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown, waits) and remove its data, leaving no process."""
        if self.data_dir.exists() and (self.data_dir / "postmaster.pid").exists():
            result = _run_as_postgres([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                                       "-t", "60", "stop"], check=False)
            if result.returncode != 0:
                log.warning("pg_ctl stop failed: %s", result.stderr.strip())
        if self.pid is not None:
            _kill_and_wait(self.pid, "PostgreSQL")
        if self._own_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _run_as_postgres(command: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        command = ["runuser", "-u", POSTGRES_SYSTEM_USER, "--", *command]
    result = subprocess.run(command, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            cwd="/", timeout=START_TIMEOUT_SECONDS)
    if check and result.returncode != 0:
        raise LocalServiceError(f"{' '.join(command)} failed ({result.returncode}): "
                                f"{(result.stderr or result.stdout).strip()[-2000:]}")
    return result


def _kill_and_wait(pid: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    sent_kill = False
    while _pid_alive(pid):
        if time.monotonic() > deadline and not sent_kill:
            log.warning("%s (pid %d) did not stop; killing it", what, pid)
            with suppress(ProcessLookupError):
                os.kill(pid, 9)
            sent_kill = True
            deadline = time.monotonic() + timeout
        elif time.monotonic() > deadline:
            raise LocalServiceError(f"{what} (pid {pid}) is still running after SIGKILL")
        time.sleep(0.05)


def _private_base_dir(prefix: str, owner: str | None) -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    if owner is not None:
        shutil.chown(base, user=owner, group=owner)
    return base


def start_postgres(base_dir: Path | None = None, *, port: int | None = None, database: str = DEFAULT_DATABASE,
                   role: str = DEFAULT_ROLE) -> LocalPostgres:
    """Initialise a cluster in ``base_dir`` (default: a new temporary folder, removed on stop),
    start it on 127.0.0.1, create ``database`` owned by superuser ``role``, and return it.

    A root caller's server runs as the ``postgres`` user, so ``base_dir`` must be a folder that user
    can reach; the default (a new folder in the system temp folder, owned by that user) is.
    """
    missing = missing_servers("postgresql")
    if missing:  # checked before anything is created
        raise LocalServiceError("cannot start PostgreSQL: missing " + "; ".join(missing))
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None
    owner = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None
    port = _require_free(port or free_port(), "PostgreSQL")
    own = base_dir is None
    base = _private_base_dir("plan-pipeline-postgres-", owner) if base_dir is None else Path(base_dir)
    base.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        shutil.chown(base, user=owner, group=owner)
    server = LocalPostgres(base_dir=base, port=port, bin_dir=bin_dir, database=database,
                           role=role, _own_base_dir=own)
    try:
        _run_as_postgres([str(bin_dir / "initdb"), "-D", str(server.data_dir), "-U", role, "--auth=trust",
                          "-E", "UTF8", "--no-sync", "--no-instructions"])
        options = (f"-p {server.port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        _run_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(server.data_dir), "-l", str(base / "postgres.log"),
                          "-o", options, "-w", "-t", str(int(START_TIMEOUT_SECONDS)), "start"])
        server.pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])
        _wait_for_port(server.port, START_TIMEOUT_SECONDS, "PostgreSQL")
        server.create_database(database)
    except BaseException:
        server.stop()
        raise
    log.info("PostgreSQL %s (pid %s, data %s)", server.url, server.pid, server.data_dir)
    return server


@dataclass
class LocalRedis(_Service):
    """A Redis server of this process on 127.0.0.1:``port`` (nothing saved to disk)."""

    base_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    _own_base_dir: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        if self._own_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def start_redis(base_dir: Path | None = None, *, port: int | None = None) -> LocalRedis:
    """Start ``redis-server`` on 127.0.0.1 (no persistence; working folder ``base_dir``, default a
    new temporary folder removed on stop) and return it once it accepts connections."""
    binary = redis_server_binary()
    if binary is None:
        raise LocalServiceError("cannot start Redis: missing " + "; ".join(missing_servers("redis")))
    port = _require_free(port or free_port(), "Redis")
    own = base_dir is None
    base = _private_base_dir("plan-pipeline-redis-", None) if base_dir is None else Path(base_dir)
    base.mkdir(parents=True, exist_ok=True)
    server = LocalRedis(base_dir=base, port=port, _own_base_dir=own)
    log_file = (base / "redis.log").open("ab")
    try:
        server.process = subprocess.Popen(
            [str(binary), "--port", str(server.port), "--bind", "127.0.0.1", "--dir", str(base),
             "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=base)
        process = server.process
        _wait_for_port(server.port, START_TIMEOUT_SECONDS, "Redis", alive=lambda: process.poll() is None)
    except BaseException:
        server.stop()
        raise
    finally:
        log_file.close()
    log.info("Redis %s (pid %s)", server.url, server.pid)
    return server


def pid_is_running(pid: int) -> bool:
    """Whether a process with this id still runs (tests use it to prove nothing was left)."""
    return _pid_alive(pid)
