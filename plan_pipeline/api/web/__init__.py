"""The planner web view under ``/web``: server-rendered Jinja2 pages over the same store calls as
the JSON API (docs/web_view.md). ``pages`` has the routes and form handlers, ``psi_grid`` shapes
one family's detail plan for the PSI grid, ``templates/`` the HTML (plain HTML + inline CSS: no
build step, no network)."""
from __future__ import annotations

from plan_pipeline.api.web.pages import router

__all__ = ["router"]
