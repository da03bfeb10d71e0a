"""The plan store's error type (its own module, so every store module can raise it)."""


class PlanStoreError(RuntimeError):
    """A store operation was refused or failed; the message says which and why."""
