"""What the ``plan-pipeline`` command prints: results on stdout, progress on stderr."""
from __future__ import annotations

import os
import sys


def out(message: str = "") -> None:
    """A result line (stdout)."""
    print(message, flush=True)


def progress(message: str) -> None:
    """A progress line (stderr), so stdout stays the command's result."""
    print(f"[plan-pipeline] {message}", file=sys.stderr, flush=True)


def abandon(message: str, exit_code: int) -> None:
    """End the process now, after a run was given up: its steps may still be executing in a
    worker thread that cannot be stopped cleanly; the run is already closed in the instance,
    and nothing it staged is published."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(exit_code)
