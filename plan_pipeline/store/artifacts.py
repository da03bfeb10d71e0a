"""Legacy JSON documents kept beside a version (``plan_artifacts``)."""
from __future__ import annotations

import json
from typing import Any

from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline.timeutil import utc_now as _now


class ArtifactRepository(PlanStoreBase):
    def put_artifact(self, version_id: str, name: str, document: Any, source: str | None = None) -> None:
        with self.write() as con:
            self._require_version(con, version_id)
            con.execute(
                "INSERT INTO plan_artifacts VALUES (?, ?, ?, ?, ?) ON CONFLICT (version_id, name) "
                "DO UPDATE SET json_text = excluded.json_text, source = excluded.source, created_at = excluded.created_at",
                [version_id, name, json.dumps(document, ensure_ascii=False), source, _now()],
            )

    def get_artifact(self, version_id: str, name: str) -> Any | None:
        with self.connect() as con:
            row = con.execute(
                "SELECT json_text FROM plan_artifacts WHERE version_id = ? AND name = ?", [version_id, name]
            ).fetchone()
        return json.loads(row[0]) if row else None
