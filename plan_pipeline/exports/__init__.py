"""Exports read from the plan store (the store is the source of truth; files are a view)."""
