"""The local PostgreSQL and Redis servers really start on loopback, answer, and stop with no
process and no data folder left."""
from __future__ import annotations

import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from plan_pipeline.deployment.local_services import (
    LocalServiceError,
    free_port,
    pid_is_running,
    start_postgres,
    start_redis,
)
from plan_pipeline_tests.conftest import require_servers


def _temp_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("plan-pipeline-*"))


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_postgres_starts_answers_and_stops_leaving_nothing():
    require_servers("postgresql")
    with start_postgres() as server:
        assert server.url == f"postgresql://plan@127.0.0.1:{server.port}/plan_store"
        out = server.run("psql", server.url, "-Atc", "SELECT current_database(), current_setting('listen_addresses')")
        assert out.stdout.strip() == "plan_store|127.0.0.1"
        second = server.create_database("scenario_b")
        out = server.run("psql", second, "-Atc", "SELECT current_database()")
        assert out.stdout.strip() == "scenario_b"
        pid, base = server.pid, server.base_dir
        assert pid is not None and pid_is_running(pid)
    assert not pid_is_running(pid)
    assert not base.exists()
    assert not _listening(server.port)


def test_redis_starts_answers_and_stops_leaving_nothing():
    require_servers("redis")
    with start_redis() as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(64) == b"+PONG\r\n"
        pid, base = server.pid, server.base_dir
        assert pid is not None and pid_is_running(pid)
    assert not pid_is_running(pid)
    assert not base.exists()


def test_a_taken_port_is_a_clear_error_and_nothing_is_left():
    require_servers("redis", "postgresql")
    before = _temp_folders()
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        # another program answers on the port: refused before anything starts
        with pytest.raises(LocalServiceError, match=f"cannot start Redis: 127.0.0.1:{port} is already in use"):
            start_redis(port=port)
        with pytest.raises(LocalServiceError, match=f"cannot start PostgreSQL: 127.0.0.1:{port} is already in use"):
            start_postgres(port=port)
    leftover = subprocess.run(["pgrep", "-f", f"redis-server 127.0.0.1:{port}"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""
    assert _temp_folders() == before  # no data folder was created
