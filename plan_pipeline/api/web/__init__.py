"""The planner web view (server-rendered templates; being built, issue 14)."""
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
