"""See plan_pipeline/api/__init__.py (being built; issue 14)."""
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
