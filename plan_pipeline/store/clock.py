"""The store's time convention: timestamps are naive UTC (``TIMESTAMP`` columns, manifests)."""
from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """Now in UTC, without a time zone (how the store writes and compares timestamps)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
