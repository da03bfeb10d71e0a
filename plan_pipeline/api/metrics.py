"""Request metrics of the Plans API (being built; issue 14)."""
from __future__ import annotations


def install_request_metrics(app) -> None:
    """Count requests by route and status and time them (filled in by the metrics work)."""
