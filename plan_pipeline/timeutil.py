"""The clock: one home for "now" (layer-neutral, anything may import it).

Stored timestamps are naive UTC (DuckDB ``TIMESTAMP``); texts for people say ``UTC``.
"""
from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time as a naive UTC datetime (what the plan store keeps)."""
    return datetime.now(UTC).replace(tzinfo=None)


def utc_now_text() -> str:
    """The current time for a person to read: ``YYYY-MM-DD HH:MM:SS UTC``."""
    return utc_now().strftime("%Y-%m-%d %H:%M:%S UTC")
