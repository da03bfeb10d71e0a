"""Named crash and pause points for the reliability tests (``plan_pipeline_tests/reliability``).

Code that must survive a crash at a precise moment (between a delete and an archive being
published, between staging a level and publishing a plan, ...) calls :func:`crash_point` with
a stable name. Normally this does nothing (one environment lookup). When the environment
variable ``PLAN_PIPELINE_CRASH_AT`` names that point (a comma-separated list is allowed), the
process kills itself with SIGKILL at that moment, exactly as an OOM kill or ``kill -9`` would:
no ``finally`` blocks, no rollback, no cleanup. Tests run the command in a subprocess with the
variable set, then check that the next command recovers and that nothing was lost.

:func:`pause_point` works the same way with ``PLAN_PIPELINE_PAUSE_AT``: the process writes
``<name>.paused`` into ``$PLAN_PIPELINE_PAUSE_DIR`` and waits (at most 300 s) until
``<name>.release`` appears there, so a test can act while a run is provably in progress
(approve, delete or restore during a run). Names with ``:`` are written with ``_``.

Never set these variables outside tests.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

CRASH_ENV = "PLAN_PIPELINE_CRASH_AT"
PAUSE_ENV = "PLAN_PIPELINE_PAUSE_AT"
PAUSE_DIR_ENV = "PLAN_PIPELINE_PAUSE_DIR"
PAUSE_LIMIT_SECONDS = 300.0


def _named(env: str, name: str) -> bool:
    wanted = os.environ.get(env)
    return bool(wanted) and name in {part.strip() for part in (wanted or "").split(",")}


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if ``$PLAN_PIPELINE_CRASH_AT`` names ``name``."""
    if not _named(CRASH_ENV, name):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def pause_file(name: str, suffix: str) -> Path:
    folder = Path(os.environ.get(PAUSE_DIR_ENV) or ".")
    return folder / f"{name.replace(':', '_')}.{suffix}"


def pause_point(name: str) -> None:
    """Wait here (at most 300 s) if ``$PLAN_PIPELINE_PAUSE_AT`` names ``name``, until released."""
    if not _named(PAUSE_ENV, name):
        return
    pause_file(name, "paused").write_text(str(os.getpid()))
    deadline = time.monotonic() + PAUSE_LIMIT_SECONDS
    while not pause_file(name, "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
