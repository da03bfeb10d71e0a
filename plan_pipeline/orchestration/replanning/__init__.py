"""The replanning domain: the draft-version scan and the schedule that re-plans stale drafts.
Its definitions: :mod:`.definitions`."""
