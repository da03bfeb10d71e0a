"""Tests of plan_pipeline/exports (the plan report)."""
