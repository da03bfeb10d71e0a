"""Who may do what over HTTP: the roles an API key carries and the actions each role allows.

Pure (no FastAPI import): the CLI's ``apikey create`` and the API's role checks share it.
viewer reads; planner edits, submits, creates versions and launches runs; approver approves,
rejects and supersedes; admin may do everything, and alone manages keys.
"""
from __future__ import annotations

from plan_pipeline.store.rules import API_KEY_ROLES

ROLES = API_KEY_ROLES

#: Every action an endpoint checks, with the roles allowed to do it (admin may do all).
ACTION_ROLES: dict[str, tuple[str, ...]] = {
    "read": ("viewer", "planner", "approver", "admin"),
    "edit": ("planner", "admin"),  # PSI edits, locks, resets
    "submit": ("planner", "admin"),
    "create": ("planner", "admin"),  # POST /plans
    "run": ("planner", "admin"),  # POST /plans/{v}/runs
    "approve": ("approver", "admin"),
    "reject": ("approver", "admin"),
    "supersede": ("approver", "admin"),
    "manage_keys": ("admin",),
}
ACTIONS = tuple(ACTION_ROLES)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def allowed(role: str, action: str) -> bool:
    """Whether a key of ``role`` may do ``action`` (an unknown action is a programming error)."""
    if action not in ACTION_ROLES:
        raise KeyError(f"unknown API action {action!r}")
    return role in ACTION_ROLES[action]


def roles_allowed(action: str) -> tuple[str, ...]:
    return ACTION_ROLES[action]
