"""How the ``plan-pipeline`` command fails: one line ``error: ...`` on stderr and an exit status.

Exit statuses: 0 success, 1 a refused or failed operation, 2 bad usage, 130 interrupted
(Ctrl-C), 141 stdout closed by the reader (``plan-pipeline version list | head -1``).
``PLAN_PIPELINE_DEBUG=1`` also prints the Python traceback of a failure (for developers).
"""
from __future__ import annotations

import os
import sys
import traceback

DEBUG_ENV = "PLAN_PIPELINE_DEBUG"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a tool stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool whose reader went away


class CliError(Exception):
    """A user-facing failure: printed as ``error: <message>``, exit status 1."""

    exit_code = EXIT_FAILED


class UsageError(CliError):
    """The command line asks for something impossible: ``error: <message>``, exit status 2."""

    exit_code = EXIT_USAGE


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _own_error_types() -> tuple[type[BaseException], ...]:
    """Errors whose message is written for the user: printed as they are (several lines allowed)."""
    from plan_pipeline.inputs.validation import InputValidationError
    from plan_pipeline.planning.overrides import OverrideError
    from plan_pipeline.planning.parameters import ParameterError
    from plan_pipeline.store import PlanStoreError

    return CliError, PlanStoreError, ParameterError, OverrideError, InputValidationError


def error_message(exc: BaseException) -> str:
    """The text after ``error: ``: our own errors as written; anything else as
    ``<ExceptionClass>: <message>`` on one line, with the exception it was raised from."""
    if isinstance(exc, _own_error_types()):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is None and str(exc):
        return _one_line(str(exc))  # raised by our code with a message of its own ("input folder X does not exist")
    text = f"{type(exc).__name__}: {_one_line(str(exc))}".rstrip(": ")
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None and not isinstance(cause, (KeyboardInterrupt, SystemExit)):
        text += f" (caused by {type(cause).__name__}: {_one_line(str(cause))})".replace(": )", ")")
    return text


def exit_code(exc: BaseException) -> int:
    return getattr(exc, "exit_code", EXIT_FAILED) if isinstance(exc, CliError) else EXIT_FAILED


def report_failure(message: str, exc: BaseException | None = None) -> None:
    """``error: <message>`` on stderr; the traceback first when ``$PLAN_PIPELINE_DEBUG`` is set."""
    try:
        if exc is not None and debug_enabled():
            traceback.print_exception(exc, file=sys.stderr)
        print(f"error: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr itself is gone: nothing left to tell
        pass


def silence_stdout() -> None:
    """After EPIPE on stdout: point it at /dev/null so the interpreter's last flush stays quiet
    (the recipe of the Python docs, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both OSError and ValueError
        pass  # stdout is not a real file (captured in tests): nothing to silence
