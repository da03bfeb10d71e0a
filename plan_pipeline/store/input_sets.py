"""Input sets: immutable, content-hashed folders of planning inputs and their typed rows."""
from __future__ import annotations

import json
from typing import Any

from plan_pipeline.planning.types import INPUT_COLUMNS, PlanningInputs
from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.plan_rows import insert_frame
from plan_pipeline.store.rules import check_identifier
from plan_pipeline.store.schema import (
    NUMERIC_INPUT_COLUMNS,
    input_table_name,
)
from plan_pipeline.store.write_log import INPUTS_LEVEL, record_write
from plan_pipeline.timeutil import utc_now as _now


class InputSetRepository(PlanStoreBase):
    def import_input_set(
        self,
        label: str,
        inputs: PlanningInputs,
        content_hash: str,
        source_path: str | None,
        files: dict[str, Any],
        warnings: list[str],
    ) -> str:
        """Store an immutable input set. Returns ``created`` or ``unchanged``.

        The same content under the same label is a no-op; different content under a
        used label is refused.
        """
        check_identifier("input set label", label)
        with self.write() as con:
            row = con.execute("SELECT content_hash FROM input_sets WHERE label = ?", [label]).fetchone()
            if row is not None:
                if row[0] == content_hash:
                    return "unchanged"
                raise PlanStoreError(
                    f"input set label {label!r} is already used by different content "
                    f"(stored {row[0][:12]}, new {content_hash[:12]}); input sets are immutable, "
                    "import under a new label"
                )
            con.execute(
                "INSERT INTO input_sets VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    label,
                    content_hash,
                    source_path,
                    json.dumps(files, sort_keys=True),
                    json.dumps(inputs.calendar) if inputs.calendar is not None else None,
                    json.dumps(warnings, ensure_ascii=False),
                    _now(),
                ],
            )
            rows = 0
            for name, columns in INPUT_COLUMNS.items():
                frame = inputs.table(name)
                if frame is None or len(frame) == 0:
                    continue
                incoming = frame[columns].copy()
                incoming.insert(0, "row_no", range(2, len(incoming) + 2))
                incoming.insert(0, "input_set", label)
                for col in columns:
                    if col not in NUMERIC_INPUT_COLUMNS[name]:
                        incoming[col] = incoming[col].astype(str)
                insert_frame(con, input_table_name(name), incoming)
                rows += len(incoming)
            record_write(con, self.write_source, "import_inputs", None, [(INPUTS_LEVEL, rows)])
        return "created"

    def get_input_set(self, label: str) -> dict[str, Any] | None:
        with self.connect() as con:
            row = con.execute(
                "SELECT label, content_hash, source_path, files_json, warnings_json, imported_at "
                "FROM input_sets WHERE label = ?",
                [label],
            ).fetchone()
        if row is None:
            return None
        return {
            "label": row[0],
            "content_hash": row[1],
            "source_path": row[2],
            "files": json.loads(row[3]),
            "warnings": json.loads(row[4]),
            "imported_at": row[5],
        }

    def list_input_sets(self) -> list[dict[str, Any]]:
        with self.connect() as con:
            rows = con.execute(
                "SELECT label, content_hash, imported_at, source_path FROM input_sets ORDER BY imported_at, label"
            ).fetchall()
        return [dict(zip(["label", "content_hash", "imported_at", "source_path"], r)) for r in rows]

    def load_input_set(self, label: str) -> PlanningInputs:
        """Read an input set back as :class:`PlanningInputs` (file row order kept)."""
        with self.connect() as con:
            head = con.execute("SELECT calendar_json FROM input_sets WHERE label = ?", [label]).fetchone()
            if head is None:
                raise PlanStoreError(f"unknown input set {label!r}")
            tables = {}
            for name, columns in INPUT_COLUMNS.items():
                frame = con.execute(
                    f"SELECT {', '.join(columns)} FROM {input_table_name(name)} "
                    "WHERE input_set = ? ORDER BY row_no",
                    [label],
                ).df()
                for col in columns:
                    if col in NUMERIC_INPUT_COLUMNS[name]:
                        frame[col] = frame[col].astype("float64")
                    else:
                        frame[col] = frame[col].astype(object)
                tables[name] = frame.reset_index(drop=True)
        calendar = json.loads(head[0]) if head[0] is not None else None
        return PlanningInputs(calendar=calendar, **tables)
