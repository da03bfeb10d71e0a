"""Argument types for ``plan-pipeline``: a bad value is a usage error (exit status 2) that names
the flag and the rule, before anything is read or written."""
from __future__ import annotations

import argparse
import unicodedata
from pathlib import Path


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def path_arg(value: str) -> Path:
    """A file or folder path: not empty, no control characters (NUL included)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty path is not allowed")
    if has_control_characters(value):
        raise argparse.ArgumentTypeError(f"{value!r} contains control characters")
    return Path(value)


def whole_number(low: int, high: int):
    """An integer type accepting ``low <= n <= high``."""

    def parse(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{number} is out of range: use {low}..{high}")
        return number

    return parse


PORT = whole_number(1, 65535)


def host_arg(value: str) -> str:
    """A host name or address to listen on: not empty, no spaces or control characters."""
    if not value or any(ch.isspace() for ch in value) or has_control_characters(value) or len(value) > 253:
        raise argparse.ArgumentTypeError(f"{value[:80]!r} is not a host name or address")
    return value

#: The most rows a ``--limit`` may ask for.
MAX_LISTED = 1_000_000_000


def text_arg(max_length: int):
    """Free text (a note, an actor name): no control characters (they would reach terminals and
    the audit trail), at most ``max_length`` characters."""

    def parse(value: str) -> str:
        if has_control_characters(value):
            raise argparse.ArgumentTypeError(f"{value[:80]!r} contains control characters")
        if len(value) > max_length:
            raise argparse.ArgumentTypeError(f"{len(value)} characters is too long: at most {max_length}")
        return value

    return parse


NOTE = text_arg(2000)
ACTOR = text_arg(200)


HOME_HELP = "project data folder (default $PLAN_PIPELINE_HOME or ./.plan_pipeline)"
DB_HELP = "plan store DuckDB file (default $PLAN_PIPELINE_DB or <home>/plan_store.duckdb)"
#: ``--home``/``--db`` on every command too (``plan-pipeline plan ... --db PATH``), not only
#: before it; a command's value wins over the top-level one (argparse.SUPPRESS: unset stays unset).
COMMON_OPTIONS = argparse.ArgumentParser(add_help=False)
COMMON_OPTIONS.add_argument("--home", default=argparse.SUPPRESS, help=HOME_HELP)
COMMON_OPTIONS.add_argument("--db", default=argparse.SUPPRESS, help=DB_HELP)


def add_command(subparsers, name: str, **kwargs) -> argparse.ArgumentParser:
    """A (sub)command parser that also takes the common options."""
    return subparsers.add_parser(name, parents=[COMMON_OPTIONS, *kwargs.pop("parents", [])], **kwargs)
