"""Named crash points for the reliability tests (``plan_pipeline_tests/reliability``).

Code that must survive a crash at a precise moment (between a delete and an archive being
published, between staging a level and publishing a plan, ...) calls :func:`crash_point` with
a stable name. Normally this does nothing (one environment lookup). When the environment
variable ``PLAN_PIPELINE_CRASH_AT`` names that point (a comma-separated list is allowed), the
process kills itself with SIGKILL at that moment, exactly as an OOM kill or ``kill -9`` would:
no ``finally`` blocks, no rollback, no cleanup. Tests run the command in a subprocess with the
variable set, then check that the next command recovers and that nothing was lost.

Never set this variable outside tests.
"""
from __future__ import annotations

import os
import signal
import sys

CRASH_ENV = "PLAN_PIPELINE_CRASH_AT"


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if ``$PLAN_PIPELINE_CRASH_AT`` names ``name``."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted or name not in {part.strip() for part in wanted.split(",")}:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
