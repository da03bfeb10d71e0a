"""The plan store's error types (their own module, so every store module can raise them).

Every refusal is a :class:`PlanStoreError`; the subclasses say *what kind* of refusal it is so
callers that answer over HTTP (``plan_pipeline/api``) map them to a status without reading the
message: an unknown thing (404), a state conflict (409), a store busy past its lock wait (503).
"""


class PlanStoreError(RuntimeError):
    """A store operation was refused or failed; the message says which and why."""


class PlanNotFoundError(PlanStoreError):
    """The version (input set, run, key, ...) the operation names does not exist."""


class PlanConflictError(PlanStoreError):
    """The operation conflicts with the current state: a frozen or read-only version, a lifecycle
    transition that is not allowed, an id already taken, a run in progress."""


class PlanStoreBusyError(PlanStoreError):
    """Another process held the store's lock longer than the caller's bounded wait."""

    def __init__(self, message: str, *, retry_after_seconds: int = 2):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def is_database_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is the database engine failing (not a refusal of the store's rules)."""
    import duckdb

    return isinstance(exc, duckdb.Error)
